"""Complaints (投诉) and supervision notices (督察意见 → 整改): the acts, the boards, the late warnings.

Both aggregates live in the ledger beside the cases (one log, one feed to the province), are
read through their views (projections/complaints.py, projections/notices.py) and are acted on
here. Who may do what:

- complaints: the complaint desk (officer keys; admin for back-filling) receives, accepts or
  refuses, assigns, records the findings and concludes; a department key reads the complaints
  against its own departments (personal data masked), and nothing else (``unknown_complaint``);
- notices: an officer issues, verifies or sends back; the notice's department (its key, or
  admin) reports rectification; a department key reads only its own notices (``unknown_notice``).

Complaint limits: ``ESUP_COMPLAINT_LIMITS`` (JSON, per stage, e.g. ``{"investigate": {"value": 10,
"unit": "working_days"}}``), default ``domain.complaint.DEFAULT_COMPLAINT_LIMITS``.

``check(now)`` records the warnings late stages and overdue rectifications have earned; a serving
process runs it on a timer (``OversightSweeper``, every ``ESUP_OVERSIGHT_SWEEP_SECONDS``, 60).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.access import Role
from domain.calendar import CHINA_TZ
from domain.clock import Clock
from domain.complaint import (
    DEFAULT_COMPLAINT_LIMITS,
    STATUSES,
    Complaint,
    ComplaintLimits,
    complaint_id,
)
from domain.errors import Conflict, InvalidInput, NotFound
from domain.notice import SupervisionNotice, notice_id
from domain.organisation import UnitKind
from domain.steps import parse_instant
from infra.pii import Sealer
from projections import complaints as complaint_view
from projections import notices as notice_view
from projections.store import ViewStore
from services.ingest import Forbidden, Principal
from services.reference import ReferenceService

log = logging.getLogger("esup.oversight")
LIMITS_ENV = "ESUP_COMPLAINT_LIMITS"
COMPLAINANT_FIELDS = ("name", "phone", "id_number", "address")


def limits_from_env(environ: Mapping[str, str] | None = None) -> ComplaintLimits:
    raw = (os.environ if environ is None else environ).get(LIMITS_ENV)
    if not raw:
        return DEFAULT_COMPLAINT_LIMITS
    try:
        return ComplaintLimits.parse(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{LIMITS_ENV} is not valid JSON: {exc}", code="invalid_limit") from None


class ComplaintExists(Conflict):
    code = "complaint_exists"


class NoticeExists(Conflict):
    code = "notice_exists"


class ConcurrentChange(Conflict):
    code = "concurrent_change"


def _by(p: Principal) -> dict[str, Any]:
    return {"role": p.role.value, "key": p.key}


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000 or not 0 <= offset < 2**31:
        raise InvalidInput("limit is 1 to 1000 and offset 0 to 2147483647", code="invalid_query")


def _object(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("send a JSON object", code="invalid_body")
    return raw


class Oversight:
    """The acts on complaints and notices, and their boards."""

    def __init__(self, ledger: Any, reference: ReferenceService, store: ViewStore, runner: Any, sealer: Sealer,
                 clock: Clock, limits: ComplaintLimits | None = None) -> None:
        self.ledger = ledger
        self.reference = reference
        self.store = store
        self.runner = runner
        self.sealer = sealer
        self.clock = clock
        self.limits = limits or limits_from_env()

    # -- shared -----------------------------------------------------------------------------

    def _calendar(self, department: str, window: str | None = None):
        return self.reference.calendar(self.reference.center_of(department, window))

    def _save(self, agg: Any, view: str) -> None:
        try:
            self.ledger.save(agg)
        except IntegrityError:
            raise ConcurrentChange("it was changed meanwhile by another request: read it again and retry") from None
        self.runner.catch_up([view])  # read your writes on the board

    def _department(self, raw: object) -> str:
        if not isinstance(raw, str) or self.reference.unit(UnitKind.DEPARTMENT, raw) is None:
            if raw is None:
                raise InvalidInput("department is required", code="missing_field", missing=["department"])
            raise InvalidInput(f"no department {raw!r}", code="unknown_department")
        return raw

    def _departments(self, p: Principal, department: str | None) -> list[str] | None:
        if p.role is Role.DEPARTMENT:
            if department is not None and department not in p.departments:
                raise Forbidden(f"this key may not read department {department}", code="forbidden_department")
            return [department] if department else sorted(p.departments)
        return [department] if department else None

    def _history(self, agg_id: UUID) -> list[dict[str, Any]]:
        out = []
        for e in self.ledger.events.get(agg_id):
            fields = {k: v for k, v in e.__dict__.items()
                      if k not in ("originator_id", "originator_version", "timestamp", "by", "complainant")}
            out.append({"act": type(e).__name__, "version": e.originator_version, "at": e.timestamp, "by": e.by,
                        **fields})
        return out

    # -- complaints ---------------------------------------------------------------------------

    def receive(self, raw: object, p: Principal) -> Complaint:
        body = _object(raw)
        unknown = sorted(set(body) - {"complaint_no", "channel", "department", "window", "staff", "case_no", "summary",
                                      "complainant", "received_at"})
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(unknown)}", code="unknown_field", fields=unknown)
        missing = [k for k in ("complaint_no", "channel", "department", "summary") if body.get(k) is None]
        if missing:
            raise InvalidInput(f"missing: {', '.join(missing)}", code="missing_field", missing=missing)
        department = self._department(body["department"])
        for kind, key in ((UnitKind.WINDOW, "window"), (UnitKind.STAFF, "staff")):
            if body.get(key) is not None and (not isinstance(body[key], str)
                                              or self.reference.unit(kind, body[key]) is None):
                raise InvalidInput(f"no {key} {body[key]!r}", code=f"unknown_{key}")
        sealed = None
        who = body.get("complainant")
        if who is not None:
            if (not isinstance(who, dict) or set(who) - set(COMPLAINANT_FIELDS)
                    or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in who.values())):
                raise InvalidInput(f"complainant is an object of strings: {', '.join(COMPLAINANT_FIELDS)}",
                                   code="invalid_field")
            sealed = self.sealer.seal(who) if who else None
        now = self.clock.now()
        received_at = parse_instant(body["received_at"], "received_at") if body.get("received_at") is not None else now
        if not 1900 <= received_at.astimezone(CHINA_TZ).year <= 2199:
            raise InvalidInput("received_at must be between 1900 and 2199", code="implausible_timestamp")
        c = Complaint.receive(complaint_no=body["complaint_no"], channel=body["channel"], department=department,
                              window=body.get("window"), staff=body.get("staff"), case_no=body.get("case_no"),
                              summary=body["summary"], complainant=sealed, received_at=received_at, at=now, by=_by(p),
                              calendar=self._calendar(department, body.get("window")), limits=self.limits)
        try:
            self.ledger.repository.get(c.id)
            raise ComplaintExists(f"complaint {c.complaint_no} was already received", complaint_no=c.complaint_no)
        except AggregateNotFoundError:
            pass
        try:
            self.ledger.save(c)
        except IntegrityError:
            raise ComplaintExists(f"complaint {c.complaint_no} was already received", complaint_no=c.complaint_no) from None
        self.runner.catch_up([complaint_view.VIEW])
        return c

    def complaint(self, complaint_no: str, p: Principal) -> Complaint:
        try:
            c = self.ledger.repository.get(complaint_id(complaint_no))
        except AggregateNotFoundError:
            c = None
        if not isinstance(c, Complaint) or not p.may_read(c.department):
            raise NotFound(f"no complaint {complaint_no}", code="unknown_complaint")
        return c

    def complaint_history(self, c: Complaint) -> list[dict[str, Any]]:
        return self._history(c.id)

    def act_on_complaint(self, complaint_no: str, act: str, raw: object, p: Principal) -> Complaint:
        body = _object(raw)
        c = self.complaint(complaint_no, p)
        now = self.clock.now()
        cal = self._calendar(c.department, c.window)
        by = _by(p)
        if act == "accept":
            c.accept(body.get("note"), by, now, cal)
        elif act == "refuse":
            c.refuse(body.get("reason"), by, now)
        elif act == "assign":
            c.assign(body.get("assignee"), by, now, cal)
        elif act == "investigate":
            c.investigate(body.get("findings"), by, now, cal)
        elif act == "conclude":
            c.conclude(body.get("substantiated"), body.get("action"), by, now)
        else:  # pragma: no cover - the routes name the acts
            raise NotFound(f"no act {act}", code="not_found")
        self._save(c, complaint_view.VIEW)
        return c

    def complaint_board(self, p: Principal, *, status: str | None = None, department: str | None = None,
                        late: bool = False, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        _page(limit, offset)
        statuses = None
        if status is not None:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            if not statuses or set(statuses) - set(STATUSES):
                raise InvalidInput(f"status is a comma-separated list of {', '.join(STATUSES)}", code="invalid_query")
        now = self.clock.now()
        with self.store.read() as cur:
            total, rows = complaint_view.rows(cur, departments=self._departments(p, department), statuses=statuses,
                                              late_at=now if late else None, limit=limit, offset=offset)
        for r in rows:
            r["late"] = r["due_at"] is not None and r["due_at"] < now
        return {"total": total, "complaints": rows}

    # -- notices ---------------------------------------------------------------------------------

    def issue(self, raw: object, p: Principal) -> SupervisionNotice:
        body = _object(raw)
        unknown = sorted(set(body) - {"notice_no", "department", "title", "problems", "inspection"})
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(unknown)}", code="unknown_field", fields=unknown)
        missing = [k for k in ("notice_no", "department", "title", "problems") if body.get(k) is None]
        if missing:
            raise InvalidInput(f"missing: {', '.join(missing)}", code="missing_field", missing=missing)
        department = self._department(body["department"])
        n = SupervisionNotice.issue(notice_no=body["notice_no"], department=department, title=body["title"],
                                    problems=body["problems"], inspection=body.get("inspection"), by=_by(p),
                                    at=self.clock.now(), calendar=self._calendar(department))
        try:
            self.ledger.repository.get(n.id)
            raise NoticeExists(f"notice {n.notice_no} was already issued", notice_no=n.notice_no)
        except AggregateNotFoundError:
            pass
        try:
            self.ledger.save(n)
        except IntegrityError:
            raise NoticeExists(f"notice {n.notice_no} was already issued", notice_no=n.notice_no) from None
        self.runner.catch_up([notice_view.VIEW])
        return n

    def notice(self, notice_no: str, p: Principal) -> SupervisionNotice:
        try:
            n = self.ledger.repository.get(notice_id(notice_no))
        except AggregateNotFoundError:
            n = None
        if not isinstance(n, SupervisionNotice) or not p.may_read(n.department):
            raise NotFound(f"no notice {notice_no}", code="unknown_notice")
        return n

    def notice_history(self, n: SupervisionNotice) -> list[dict[str, Any]]:
        return self._history(n.id)

    def act_on_problem(self, notice_no: str, problem_no: int, act: str, raw: object, p: Principal) -> SupervisionNotice:
        body = _object(raw)
        n = self.notice(notice_no, p)
        now = self.clock.now()
        by = _by(p)
        if act == "report":
            if not p.may_report_for(n.department):
                raise Forbidden(f"only department {n.department} reports this notice's rectification",
                                code="forbidden_department")
            n.report(problem_no, body.get("rectification"), by, now)
        elif act == "verify":
            n.verify(problem_no, body.get("note"), by, now)
        elif act == "send_back":
            due = {k: body[k] for k in ("due_date", "within") if body.get(k) is not None} or None
            n.send_back(problem_no, body.get("reason"), by, now, self._calendar(n.department), due=due)
        else:  # pragma: no cover - the routes name the acts
            raise NotFound(f"no act {act}", code="not_found")
        self._save(n, notice_view.VIEW)
        return n

    def notice_board(self, p: Principal, *, status: str | None = None, department: str | None = None,
                     round: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        _page(limit, offset)
        if status is not None and status not in ("open", "closed"):
            raise InvalidInput("status is open or closed", code="invalid_query")
        with self.store.read() as cur:
            total, rows = notice_view.notices(cur, departments=self._departments(p, department), status=status,
                                              round=round, now=self.clock.now(), limit=limit, offset=offset)
        return {"total": total, "notices": rows}

    # -- summary and warnings ------------------------------------------------------------------------

    def summary(self, year: int | None = None) -> dict[str, Any]:
        lo, hi = (f"{year}-01-01", f"{year}-12-31") if year else ("0001-01-01", "9999-12-31")
        now = self.clock.now()
        self.runner.catch_up([complaint_view.VIEW, notice_view.VIEW])
        with self.store.read() as cur:
            return {"year": year, "complaints": complaint_view.summary(cur, lo, hi, now),
                    "notices": notice_view.summary(cur, lo, hi, now)}

    def check(self, now: datetime | None = None) -> dict[str, int]:
        """Record the warnings earned by ``now``: late complaint stages, overdue rectifications."""
        now = now or self.clock.now()
        self.runner.catch_up([complaint_view.VIEW, notice_view.VIEW])
        with self.store.read() as cur:
            late_complaints = complaint_view.overdue(cur, now)
            late_notices = notice_view.overdue(cur, now)
        warned = {"complaints": 0, "problems": 0}
        for cid in late_complaints:
            c: Complaint = self.ledger.repository.get(UUID(cid))
            if c.warn_if_late(now):
                try:
                    self.ledger.save(c)
                    warned["complaints"] += 1
                except IntegrityError:  # acted on meanwhile: the next round looks again
                    pass
        for nid in late_notices:
            n: SupervisionNotice = self.ledger.repository.get(UUID(nid))
            count = n.warn_late(now)
            if count:
                try:
                    self.ledger.save(n)
                    warned["problems"] += count
                except IntegrityError:
                    pass
        if late_complaints or late_notices:
            self.runner.catch_up([complaint_view.VIEW, notice_view.VIEW])
        return warned


class OversightSweeper:
    """Runs ``Oversight.check`` on a timer in a serving process."""

    def __init__(self, oversight: Oversight, seconds: float | None = None) -> None:
        self.oversight = oversight
        self.seconds = seconds if seconds is not None else float(os.environ.get("ESUP_OVERSIGHT_SWEEP_SECONDS", "60"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="esup-oversight-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.oversight.check()
            except Exception:  # keep sweeping; the next round retries
                log.exception("oversight sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def year_of(instant: datetime) -> int:
    return instant.astimezone(CHINA_TZ).year
