"""Issue 6 item 8.4: a source's refusals cannot grow the ledger without bound.

Counts per source and code stay exact; only the last ``refusal_sample`` refusals per source
are kept. Both stores, counting the rows actually stored in the ledger's database.
"""

from __future__ import annotations

import pytest

from services.ingest import BatchRefused
from services.system import Esup
from tests.conftest import define_basics
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

BOUND = 10


@pytest.fixture
def small(store_settings, clock):
    store_settings.refusal_sample = BOUND
    system = Esup.open(store_settings, clock)
    define_basics(system)
    clock.set(at("2008-10-20 12:00"))
    yield system
    system.close()


def ledger_rows(esup: Esup) -> int:
    """Every row the ledger's database holds for refusals: log records and the counter tables."""
    records = len(esup.ledger.recorder.select_notifications(start=0, limit=100_000))
    return records + esup.ingest.refusals.rows()


def test_n_refusals_over_the_bound_grow_the_ledger_by_at_most_the_bound(small):
    esup = small
    esup.ingest.report([submitted()])
    before = ledger_rows(esup)
    n = 5 * BOUND + 3
    for i in range(n):
        with pytest.raises(BatchRefused):
            esup.ingest.report([step(f"X{i}", "accepted", "2008-09-26T09:30:00+08:00", event_id=f"bad-{i}")], batch=False)
    for i in range(7):  # another code, in batches of two
        with pytest.raises(BatchRefused):
            esup.ingest.report([step("C1", "resumed", "2008-09-27T09:30:00+08:00", event_id=f"r-{i}-{j}") for j in range(2)])
    grown = ledger_rows(esup) - before
    # One ring of BOUND rows, one total and one counter per code: never one record per refusal.
    assert grown <= BOUND + 1 + 2, grown
    counts = esup.ingest.refusal_counts()
    assert counts == {"GS": {"unknown_case": n, "not_suspended": 14}}
    recent = esup.ingest.recent_refusals()["GS"]
    assert len(recent) == BOUND
    assert recent[0]["code"] == "not_suspended" and recent[0]["event_id"] == "r-6-1"  # newest first
    assert [r["seq"] for r in recent] == list(range(n + 14, n + 14 - BOUND, -1))


def test_counts_stay_exact_under_concurrent_writers(small):
    from concurrent.futures import ThreadPoolExecutor

    esup = small
    # Two services on the same store, as two serving processes would be: no shared lock.
    other = Esup.open(esup.settings, esup.clock)
    try:
        def refuse(args):
            service, i = args
            with pytest.raises(BatchRefused):
                service.ingest.report([step(f"Y{i}", "accepted", "2008-09-26T09:30:00+08:00", event_id=f"y-{i}")], batch=False)

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(refuse, [((esup, other)[i % 2], i) for i in range(120)]))
        assert esup.ingest.refusal_counts() == {"GS": {"unknown_case": 120}}
        assert len(other.ingest.recent_refusals()["GS"]) == BOUND
    finally:
        other.close()
