"""The relay reads a case step's stored JSON directly instead of decoding the domain event: the
records it makes that way are the mapper's records, byte for byte, on both stores."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import orjson
import pytest

import services.feed as feed
from infra import feed_records as fr
from tests.integration.feed_support import workload


def _records(source, slow: bool):
    out, after = [], 0
    parse = feed._StoredStep.parse
    if slow:
        feed._StoredStep.parse = classmethod(lambda cls, n: None)
    try:
        while True:
            notes = source.notifications(after, 100)
            if not notes:
                return out
            for n in notes:
                made = source.record(n)
                if made is not None:
                    out.append((fr.encode(made[0], source.district, n.id, made[1]), source.day_of(made[2])))
            after = notes[-1].id
    finally:
        feed._StoredStep.parse = parse


@pytest.mark.parametrize("personal", ["omit", "mask"])
def test_records_from_stored_json_equal_the_mappers_records(district, clock, personal):
    workload(district, clock, 40)
    # Warning acts in the log too (they take the mapper's way): a third of the cases stay open.
    clock.set(clock.now() + timedelta(days=90))
    district.runner.catch_up()
    assert district.warnings.check()
    make = lambda: feed.FeedSource(district.ledger, "CDGX", personal, district.sealer)  # noqa: E731
    fast, slow = _records(make(), slow=False), _records(make(), slow=True)
    assert len(fast) == len(slow) > 100
    assert fast == slow
    assert {orjson.loads(value)["schema"] for (_, value, _), _ in fast} == {fr.STEP, fr.WARNING}
    if personal == "mask":
        assert any(b'"applicant":{"id_number":"510101********1234"' in value for (_, value, _), _ in fast)


def test_a_stored_value_the_reader_does_not_know_goes_to_the_mapper():
    def note(data):
        state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2008-01-02T05:47:13+00:00"},
                 "occurred_at": {"_type_": "datetime_iso", "_data_": "2008-01-02T13:37:00+08:00"},
                 "actor": {}, "data": data, "derived": {}, "flags": [], "hash": "h", "prev_hash": "p"}
        return SimpleNamespace(topic="esup.case:Case.FeeCharged", originator_id="x", originator_version=2,
                               state=orjson.dumps(state))

    assert feed._StoredStep.parse(note({"amount": "50.00"})).data == {"amount": "50.00"}
    assert feed._StoredStep.parse(note({"amount": {"_type_": "decimal", "_data_": "50.00"}})) is None
    assert feed._StoredStep.parse(note({"amount": ["50.00"]})) is None
    compressed = note({})
    compressed.state = b"\x78\x9c not json"
    assert feed._StoredStep.parse(compressed) is None
