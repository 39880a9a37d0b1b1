"""Ingest builds its events without the dataclass __init__ (speed): they must be the same events."""

from __future__ import annotations

from datetime import timedelta

from eventsourcing.persistence import JSONTranscoder, Mapper

from domain.case import Case, verify_chain
from domain.ingest import SourceEvent
from infra.transcoder import OrjsonTranscoder
from tests.unit.test_case import CAL, at, new_case, report


def _as_constructed(event):
    """The same event made the library's way, through its dataclass __init__."""
    return type(event)(**vars(event))


def test_recorded_case_events_are_the_events_init_would_make():
    case = new_case(at("2008-09-26 09:00"))
    for name, when, data in (("accepted", "2008-09-26 09:10", {}), ("undertaken", "2008-09-26 10:00", {"opinion": "同意"}),
                             ("suspended", "2008-09-26 11:00", {"procedure": "inspection"}),
                             ("resumed", "2008-10-08 10:00", {}), ("concluded", "2008-10-09 15:00", {"result": "issued"})):
        event = case.record(report(name, at(when), **data), recorded_at=at(when) + timedelta(minutes=2), calendar=CAL)
        made = _as_constructed(event)
        assert list(vars(event).items()) == list(vars(made).items())  # same fields, same order
        assert event == made
        mapper = Mapper(OrjsonTranscoder())
        assert mapper.to_stored_event(event) == mapper.to_stored_event(made)
    events = case.collect_events()
    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5, 6]
    assert case.version == 6 and case.status == "concluded" and case.closed
    assert verify_chain("C1", events) is None  # the chain verifies as the library's events would


def test_a_source_event_admission_is_the_event_admit_makes():
    when = at("2008-09-26 09:00")
    admitted = SourceEvent.admit("GS", "e-1", "C1", 3, when).collect_events()[0]
    fast = SourceEvent.admission("GS", "e-1", "C1", 3, when)
    assert list(vars(fast).items()) == list(vars(admitted).items())
    assert fast == admitted and type(fast) is type(admitted)
    mapper = Mapper(JSONTranscoder())
    from eventsourcing.persistence import DatetimeAsISO, UUIDAsHex
    mapper.transcoder.register(UUIDAsHex())
    mapper.transcoder.register(DatetimeAsISO())
    assert mapper.to_stored_event(fast) == mapper.to_stored_event(admitted)


def test_esup_ids_are_uuid5_in_the_namespace():
    from uuid import uuid5

    from domain.catalogue import NAMESPACE, esup_id

    for name in ("case:CDGX20080000246", "source-event:GH\x1fE-1", "bundle-part:并联-1", "", "x" * 500):
        made, library = esup_id(name), uuid5(NAMESPACE, name)
        assert made == library and hash(made) == hash(library) and str(made) == str(library)
        assert made.version == 5 and made.variant == library.variant and made.is_safe is library.is_safe


def test_a_submission_is_the_case_and_event_create_makes():
    from domain.case import GENESIS_HASH, _hash_body, chain_hash

    when = at("2008-09-26 09:00")
    case = new_case(when)
    (event,) = case.pending_events
    fields = {k: getattr(event, k) for k in ("source_event_id", "occurred_at", "actor", "data", "derived", "flags")}
    made = Case._create(Case.Submitted, case_no=case.case_no, timestamp=event.timestamp, prev_hash=GENESIS_HASH,
                        hash=event.hash, **fields)
    (library,) = made.pending_events
    assert list(vars(event).items()) == list(vars(library).items())  # same fields, same order
    assert event == library and type(event) is type(library)
    assert vars(case) == vars(made)  # the same case state, pending event included
    assert event.hash == chain_hash(GENESIS_HASH, _hash_body(case.case_no, 1, event.STEP, event.timestamp, fields))
    mapper = Mapper(OrjsonTranscoder())
    assert mapper.to_stored_event(event) == mapper.to_stored_event(library)


def test_a_parsed_step_report_is_the_one_its_constructor_makes():
    from dataclasses import replace

    from domain.steps import Actor, StepReport

    raws = [
        {"event_id": "E-1", "case_no": "C1", "step": "submitted", "occurred_at": "2008-01-02T11:46:00+08:00",
         "department": "RS", "window": "S037", "staff": "P052", "item_code": "RS-013",
         "data": {"applicant": {"name": "杜娜", "id_number": "510603197112146914"}, "applicant_kind": "person",
                  "channel": "window"}},
        {"event_id": "E-2", "case_no": "C1", "step": "accepted", "occurred_at": "2008-01-03T09:30:00Z", "department": "RS"},
        {"event_id": "E-3", "case_no": "C1", "step": "concluded", "occurred_at": "2008-01-04T09:30:00+08:00",
         "department": "RS", "window": "S037", "item_code": "RS-013", "data": {"result": "0", "comment": " 好 "}},
    ]
    for raw in raws:
        parsed = StepReport.parse(raw)
        actor = parsed.actor
        assert type(actor) is Actor and list(vars(actor).items()) == list(vars(Actor(**vars(actor))).items())
        made = StepReport(**vars(parsed))
        assert list(vars(parsed).items()) == list(vars(made).items())  # same fields, same order
        assert parsed == made and hash(actor) == hash(Actor(**vars(actor))) and repr(parsed) == repr(made)
        assert replace(parsed, event_id="E-9").event_id == "E-9"  # still a frozen dataclass to the library
        try:
            parsed.case_no = "C2"  # type: ignore[misc]
        except Exception as exc:
            assert type(exc).__name__ == "FrozenInstanceError"
        else:
            raise AssertionError("a parsed report must stay frozen")


def _span(span: timedelta, day: str, hour: str, minute: str) -> str:
    """The rule, read one language at a time (as domain.case once wrote it): days alone from ten
    days on (or on a whole day), else days and hours, else hours and minutes; never seconds."""
    seconds = max(int(span.total_seconds()), 0)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days >= 10 or (days and not hours):
        return f"{days} {day}"
    if days:
        return f"{days} {day} {hours} {hour}"
    return f"{hours} {hour} {minutes} {minute}" if hours else f"{minutes} {minute}"


def test_both_spans_at_once_are_the_two_spans():
    from domain.case import _span_en, _span_zh, _spans

    for seconds in [*range(-5, 200000, 37), *range(0, 40 * 86400, 3593), 6640 * 86400 + 74084, 86400, 10 * 86400]:
        span = timedelta(seconds=seconds, microseconds=671789 if seconds % 2 else 0)
        assert _spans(int(span.total_seconds())) == (_span_zh(span), _span_en(span)), seconds
        assert (_span_zh(span), _span_en(span)) == (_span(span, "天", "小时", "分钟"),
                                                     _span(span, "days", "hours", "minutes")), seconds

