"""Adapters at the edge: stores, transcoder, Kafka, settings."""
