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


# -- esup systems on real stores -------------------------------------------------------------

from datetime import datetime, timezone  # noqa: E402

from domain.clock import ManualClock  # noqa: E402
from domain.organisation import UnitKind  # noqa: E402
from infra.settings import Settings  # noqa: E402
from services.system import Esup  # noqa: E402

START = datetime(2008, 9, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request, tmp_path):
    """Settings for a fresh store of each kind: the same tests run against both."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    server = request.getfixturevalue("pg_server")
    return Settings(data_dir=tmp_path / "data", postgres=server.env(server.create_database()))


@pytest.fixture
def esup(store_settings, clock):
    system = Esup.open(store_settings, clock)
    yield system
    system.close()


def define_basics(esup: Esup) -> None:
    """A department and two items: a licence (20 legal / 5 promised working days, fee 50) and
    an on-the-spot item (即办件, free)."""
    ref = esup.reference
    ref.put_unit(UnitKind.DEPARTMENT, "GS", {"name": "工商局"})
    ref.put_unit(UnitKind.DEPARTMENT, "DS", {"name": "地税局"})
    ref.put_item("GS-001", {"name": "企业设立登记", "department": "GS", "kind": "licence",
                            "legal_limit": {"value": 20, "unit": "working_days"},
                            "promised_limit": {"value": 5, "unit": "working_days"}, "fee": 50})
    ref.put_item("GS-002", {"name": "营业执照补办", "department": "GS", "kind": "non_licence", "on_the_spot": True,
                            "legal_limit": {"value": 5, "unit": "working_days"},
                            "promised_limit": {"value": 0, "unit": "working_days"}, "fee": 0})
    ref.put_item("DS-001", {"name": "税务登记", "department": "DS", "kind": "licence",
                            "legal_limit": {"value": 20, "unit": "working_days"},
                            "promised_limit": {"value": 4, "unit": "working_hours"}})


@pytest.fixture
def district(esup):
    define_basics(esup)
    return esup


@pytest.fixture
def browser():
    """A headless Chromium for one test (closed with it, so no page keeps a live connection to
    a server the test stops); the UI tests mark themselves with
    ``tests.integration.browser_support.needs_chromium``."""
    from playwright.sync_api import sync_playwright

    from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
