"""Shared fixtures. Integration tests use real stores: SQLite files and a real PostgreSQL."""

from __future__ import annotations

import pytest

from infra import pgserver


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the whole run (embedded unless ESUP_TEST_POSTGRES_HOST is set)."""
    handle = pgserver.from_environment()
    started = handle is None
    if started:
        handle = pgserver.start_embedded()
    yield handle
    if started:
        handle.stop()


@pytest.fixture
def pg_env(pg_server):
    """eventsourcing settings for a fresh, empty PostgreSQL database."""
    return pg_server.env(pg_server.create_database())
