"""Developer tools (benchmarks) that are not part of the service itself."""
