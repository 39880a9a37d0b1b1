"""Parallel-approval bundles (并联审批): submitting and accepting a bundle at the channel window,
its parts' closings recorded with the part's own step, and reading a bundle with its parts.

How bundles are fed: the channel window's own acts go to ``POST /api/v1/bundles`` (submitted,
with the parts' case numbers) and ``POST /api/v1/bundles/{bundle_no}/accept``; the parts are
ordinary cases reported step by step by their departments as before. A bundle is an application
with its own number, window, clock and limits, so it is its own aggregate with its own acts;
a part's steps stay exactly what the department reported (nothing about bundles enters a case's
hash chain). When a batch of steps closes a part (concluded, refused, withdrawn), the ingest
service's companion (``part_closings``) records ``PartClosed`` on the bundle, and ``Concluded``
with the last part, **in the same transaction** as the step. A part already closed when the
bundle is submitted is recorded at submission, from the part case's state.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.bundle import CLOSING_STEPS, Bundle, PartOf, PartStep, bundle_id, membership_id, read_part_step
from domain.case import Case
from domain.catalogue import _code
from domain.clock import Clock
from domain.errors import Conflict, DomainError, InvalidInput, NotFound
from domain.steps import parse_instant
from services.ingest import Forbidden, Principal
from services.reference import ReferenceService

SUBMIT_FIELDS = {"event_id", "bundle_no", "channel", "occurred_at", "parts", "window", "staff", "enterprise", "project"}
ACCEPT_FIELDS = {"event_id", "occurred_at", "window", "staff"}


def _fields(raw: Any, allowed: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("send a JSON object", code="invalid_body")
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    missing = [k for k in required if raw.get(k) is None]
    if missing:
        raise InvalidInput(f"required: {', '.join(missing)}", code="missing_field", field=missing[0], missing=missing)
    return raw


def _opt_code(raw: dict[str, Any], key: str) -> str | None:
    return _code(raw[key], key) if raw.get(key) is not None else None


class BundleService:
    def __init__(self, ledger: Any, reference: ReferenceService, cases: Any, clock: Clock) -> None:
        self.ledger = ledger
        self.reference = reference
        self.cases = cases  # services.cases.CaseQueries: the part cases' state
        self.clock = clock

    # -- the channel window's acts ------------------------------------------------------------

    def submit(self, raw: Any, principal: Principal) -> tuple[Bundle, bool]:
        body = _fields(raw, SUBMIT_FIELDS, ("event_id", "bundle_no", "channel", "occurred_at", "parts"))
        channel = self.reference.channel(_code(body["channel"], "channel"))
        if channel is None:
            raise InvalidInput(f"unknown channel {body['channel']}", code="unknown_channel")
        occurred_at = parse_instant(body["occurred_at"])
        terms = channel.version_at(occurred_at)
        if not principal.may_report_for(terms.department):
            raise Forbidden(f"this key may not report for the channel's department {terms.department}",
                            code="forbidden_department")
        now = self.clock.now()
        actor = {"department": terms.department, "window": _opt_code(body, "window"), "staff": _opt_code(body, "staff")}
        existing = self._load(body["bundle_no"]) if isinstance(body["bundle_no"], str) else None
        if existing is not None:
            if body["event_id"] in existing.source_event_ids and existing.source_event_ids[body["event_id"]] == 1 and (
                    existing.parts == body["parts"] and existing.channel.code == terms.code
                    and existing.submitted_at == occurred_at):
                return existing, False  # the same submission again: its original outcome
            if body["event_id"] in existing.source_event_ids:
                raise Conflict(f"event id {body['event_id']} was already used for another act on this bundle",
                               code="event_id_reused")
            raise Conflict(f"bundle {existing.bundle_no} was already submitted", code="bundle_exists")
        if isinstance(body["bundle_no"], str) and self._case(body["bundle_no"]) is not None:
            raise Conflict(f"{body['bundle_no']} is a case number in use", code="case_exists")
        bundle = Bundle.submit(bundle_no=body["bundle_no"], channel=terms, parts=body["parts"], occurred_at=occurred_at,
                               recorded_at=now, event_id=body["event_id"], actor=actor,
                               enterprise=_opt_code(body, "enterprise"), project=_opt_code(body, "project"))
        members = []
        calendar = self.reference.calendar(terms.center)
        for case_no in bundle.parts:
            other = self._member(case_no)
            if other is not None:
                raise Conflict(f"case {case_no} is already a part of bundle {other.bundle_no}", code="part_in_other_bundle",
                               case_no=case_no)
            members.append(PartOf.register(case_no, bundle.bundle_no, now))
            case = self._case(case_no)
            if case is None:
                continue  # the part's department has not reported it yet
            if case.item_code not in terms.items:
                raise InvalidInput(f"case {case_no} is of item {case.item_code}, not a member item of channel "
                                   f"{terms.code}", code="item_not_in_channel", case_no=case_no)
            if case.closed:  # closed before the bundle was submitted: record it now, from the case
                bundle.close_part(PartStep(case_no, case.status, case.version, case.closed_at, case.department,
                                           case.item_code, case.promised_due_at, case.on_time),
                                  promised=case.terms.promised_limit if case.terms else None, recorded_at=now,
                                  calendar=calendar)
        try:
            self.ledger.save(bundle, *members)
        except IntegrityError:
            raise Conflict(f"bundle {bundle.bundle_no} or one of its parts was registered at the same time; retry",
                           code="bundle_exists") from None
        return bundle, True

    def accept(self, bundle_no: str, raw: Any, principal: Principal) -> tuple[Bundle, bool]:
        body = _fields(raw, ACCEPT_FIELDS, ("event_id", "occurred_at"))
        bundle = self.get(bundle_no, principal)
        if not principal.may_report_for(bundle.channel.department):
            raise Forbidden(f"this key may not report for the channel's department {bundle.channel.department}",
                            code="forbidden_department")
        occurred_at = parse_instant(body["occurred_at"])
        if body["event_id"] in bundle.source_event_ids:
            if bundle.accepted_at == occurred_at and bundle.source_event_ids[body["event_id"]] != 1:
                return bundle, False
            raise Conflict(f"event id {body['event_id']} was already used for another act on this bundle",
                           code="event_id_reused")
        actor = {"department": bundle.channel.department, "window": _opt_code(body, "window"),
                 "staff": _opt_code(body, "staff")}
        bundle.accept(occurred_at=occurred_at, recorded_at=self.clock.now(), event_id=_code(body["event_id"], "event_id"),
                      actor=actor, calendar=self.reference.calendar(bundle.channel.center))
        try:
            self.ledger.save(bundle)
        except IntegrityError:
            raise Conflict(f"bundle {bundle_no} changed meanwhile; retry", code="contention") from None
        return bundle, True

    # -- the ingest companion -----------------------------------------------------------------

    def part_closings(self, cases: list[Case]) -> list[Bundle]:
        """For ``IngestService.companions``: the bundles whose parts the batch's new steps closed,
        with ``PartClosed`` (and ``Concluded`` for a last part) pending, saved with the steps."""
        bundles: dict[str, Bundle] = {}
        closing_cases = []
        for case in cases:
            # Only closing steps are read as part steps (most of a batch's events are not).
            closing = [(read_part_step(e, case.case_no), e) for e in case.pending_events
                       if getattr(getattr(e, "STEP", None), "_value_", None) in CLOSING_STEPS]
            if closing:
                closing_cases.append((case, closing))
        if not closing_cases:
            return []
        members = self._members([c.case_no for c, _ in closing_cases])  # one query for the batch
        for case, closing in closing_cases:
            if membership_id(case.case_no) not in members:
                continue  # not a part of any bundle
            member = self._member(case.case_no)
            if member is None:
                continue
            bundle = bundles.get(member.bundle_no) or self._load(member.bundle_no)
            if bundle is None:
                continue
            calendar = self.reference.calendar(bundle.channel.center, refresh=False)
            for part, event in closing:
                if part.case_no in bundle.closed_parts:
                    continue
                bundle.close_part(part, promised=case.terms.promised_limit if case.terms else None,
                                  recorded_at=event.timestamp, calendar=calendar)
            bundles[member.bundle_no] = bundle
        return [b for b in bundles.values() if b.pending_events]

    # -- reading ---------------------------------------------------------------------------------

    def get(self, bundle_no: str, principal: Principal | None = None) -> Bundle:
        bundle = self._load(bundle_no)
        if bundle is None:
            raise NotFound(f"no bundle {bundle_no}", code="unknown_bundle")
        return bundle

    def is_bundle(self, number: str) -> bool:
        return self._load(number) is not None

    def show(self, bundle_no: str, principal: Principal, not_found: str = "unknown_bundle") -> dict[str, Any]:
        """The bundle with each part's state, read from the part cases themselves (a part not
        reported yet is ``not_reported``). Department keys see the bundle if one of its parts or
        its channel is theirs, and the state of their own parts only."""
        bundle = self.get(bundle_no)
        now = self.clock.now()
        parts, past_due = [], []
        coordinator = principal.may_read(bundle.channel.department)  # the channel window sees every part
        visible = coordinator
        for case_no in bundle.parts:
            row: dict[str, Any] = {"case_no": case_no}
            case = self._case(case_no)
            if case is None:
                row["status"] = "not_reported"
            elif coordinator or principal.may_read(case.department):
                visible = True
                s = case.summary()
                row.update({k: s[k] for k in ("item_code", "department", "window", "status", "suspended", "accepted_at",
                                               "promised_due_at", "legal_due_at", "concluded_at", "closed_at", "on_time")})
                if not case.closed and case.promised_due_at is not None and now > case.promised_due_at:
                    past_due.append(case_no)
                    row["overdue"] = True
                else:
                    row["overdue"] = case.on_time is False
            else:
                row["status"] = "hidden"  # another department's part
            closed = bundle.closed_parts.get(case_no)
            row["part_closed"] = closed["step"] if closed else None
            parts.append(row)
        if not visible:  # answered as if there were none (as for cases)
            raise NotFound(f"no bundle {bundle_no}", code=not_found)
        out = bundle.summary()
        out.update(parts=parts, parts_total=len(bundle.parts), parts_closed=len(bundle.closed_parts),
                   late=bundle.late(now, past_due), open_parts_past_due=past_due, kind="bundle")
        return out

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, bundle_no: str) -> Bundle | None:
        try:
            return self.ledger.repository.get(bundle_id(bundle_no))
        except AggregateNotFoundError:
            return None

    def _members(self, case_nos: list[str]) -> set[Any]:
        """The membership ids among these case numbers' (the recorder's one-query ``existing``
        where it has it)."""
        ids = [membership_id(n) for n in case_nos]
        existing = getattr(self.ledger.recorder, "existing", None)
        if existing is not None:
            return set().union(*(existing(ids[k:k + 500]) for k in range(0, len(ids), 500)))
        return {i for i in ids if self.ledger.recorder.select_events(i, limit=1)}

    def _member(self, case_no: str) -> PartOf | None:
        try:
            return self.ledger.repository.get(membership_id(case_no))
        except AggregateNotFoundError:
            return None

    def _case(self, case_no: str) -> Case | None:
        try:
            return self.cases.current(case_no)
        except NotFound:
            return None
        except DomainError:
            return None
