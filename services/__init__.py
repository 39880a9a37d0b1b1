"""The service layer: eventsourcing applications that load aggregates, call the domain, save.

Three applications, each with its own store (SQLite file or PostgreSQL tables) and log:
``ledger`` (cases, idempotency keys, refusals), ``reference`` (catalogue, organisation,
calendar) and ``access`` (API keys).
"""
