"""A supervision notice (督察意见) and the rectification (整改) of each problem it lists.

An officer issues a notice to a department listing the problems found, each from an audit
finding (抽查), an anomaly (异常), a complaint (投诉) or an inspection (检查, including the mutual
inspection rounds 互查互评 across the three tiers), each with its rectification deadline. The
department reports its rectification per problem (整改报告); the officer verifies it and closes
the problem (验收销号), or sends it back (退回重新整改, optionally with a new deadline). The notice
is closed when every problem is. A problem neither reported nor closed when its deadline passes
earns a warning (``Warned``, recorded by the system once per deadline); ``late_problems`` is the
rule.

Deadlines: a problem gives ``due_date`` (the last day, YYYY-MM-DD: the deadline is the end of
that day in China time) or ``within`` (a limit counted by the working calendar from the issue,
e.g. ``{"value": 15, "unit": "working_days"}``); by default ``DEFAULT_RECTIFICATION`` (15
working days, the period such notices commonly give for a written rectification report,
"限期15个工作日内书面报告整改情况"). Each deadline is decided at issue (or at a send-back) and
stored on the event.

A mutual inspection (互查互评) is a notice whose ``inspection`` names the ``round`` (e.g.
``2008-1``) and the inspecting and inspected centers; its problems have the source ``inspection``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.calendar import WorkingCalendar
from domain.catalogue import NAMESPACE
from domain.complaint import code, text
from domain.errors import Conflict, InvalidInput, NotFound
from domain.limits import Limit, Unit

SOURCES = ("audit", "anomaly", "complaint", "inspection")
SOURCE_ZH = {"audit": "抽查发现", "anomaly": "异常", "complaint": "投诉", "inspection": "检查"}
PROBLEM_STATUSES = ("open", "reported", "closed")
PROBLEM_STATUS_ZH = {"open": "待整改", "reported": "已报整改", "closed": "已销号"}
DEFAULT_RECTIFICATION = Limit(15, Unit.WORKING_DAYS)
MAX_PROBLEMS = 100


def notice_id(notice_no: str) -> UUID:
    return uuid5(NAMESPACE, f"notice:{notice_no}")


class UnknownProblem(NotFound):
    code = "unknown_problem"


class ProblemClosed(Conflict):
    code = "problem_closed"


class ProblemNotReported(Conflict):
    code = "problem_not_reported"


class ProblemAlreadyReported(Conflict):
    code = "problem_already_reported"


def due_from(raw: dict[str, Any], start: datetime, calendar: WorkingCalendar, what: str,
             default: Limit | None = DEFAULT_RECTIFICATION) -> datetime:
    """A deadline from ``due_date`` (the end of that day) or ``within`` (a limit from ``start``)."""
    if raw.get("due_date") is not None and raw.get("within") is not None:
        raise InvalidInput(f"{what}: give due_date or within, not both", code="invalid_field")
    if raw.get("due_date") is not None:
        try:
            day = date.fromisoformat(raw["due_date"]) if isinstance(raw["due_date"], str) else None
        except ValueError:
            day = None
        if day is None or len(raw["due_date"]) != 10 or not 1900 <= day.year <= 2199:
            raise InvalidInput(f"{what}: due_date must be a date, YYYY-MM-DD", code="invalid_field")
        due = datetime.combine(day + timedelta(days=1), time(0), tzinfo=calendar.tz)
    elif raw.get("within") is not None:
        due = calendar.deadline(start, Limit.parse(raw["within"]))
    elif default is not None:
        due = calendar.deadline(start, default)
    else:
        raise InvalidInput(f"{what}: give due_date or within", code="missing_field", missing=["due_date"])
    if due <= start:
        raise InvalidInput(f"{what}: the deadline must be after {start.isoformat()}", code="invalid_field")
    return due


def _inspection(raw: object) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput('inspection is {"round": ..., "inspector": ..., "inspected": ...}', code="invalid_field")
    unknown = sorted(set(raw) - {"round", "inspector", "inspected"})
    if unknown:
        raise InvalidInput(f"unknown inspection fields: {', '.join(unknown)}", code="unknown_field")
    return {"round": code(raw.get("round"), "inspection.round"),  # type: ignore[dict-item]
            "inspector": code(raw.get("inspector"), "inspection.inspector"),
            "inspected": code(raw.get("inspected"), "inspection.inspected")}


class SupervisionNotice(Aggregate):
    TOPIC = "esup.notice:SupervisionNotice"

    class Event(Aggregate.Event):
        TOPIC = "esup.notice:SupervisionNotice.Event"
        by: dict[str, Any]

    class Issued(Aggregate.Created, Event):
        TOPIC = "esup.notice:SupervisionNotice.Issued"
        notice_no: str
        department: str
        title: str
        problems: list[dict[str, Any]]  # {"no", "source", "ref", "description", "due_at"}
        inspection: dict[str, str] | None

    Created = Issued

    class Reported(Event):
        TOPIC = "esup.notice:SupervisionNotice.Reported"
        problem_no: int
        rectification: str

        def apply(self, n: SupervisionNotice) -> None:
            p = n.problems[self.problem_no]
            p.update(status="reported", rectification=self.rectification, reported_at=self.timestamp,
                     reported_late=self.timestamp > p["due_at"])

    class Verified(Event):
        TOPIC = "esup.notice:SupervisionNotice.Verified"
        problem_no: int
        note: str | None

        def apply(self, n: SupervisionNotice) -> None:
            n.problems[self.problem_no].update(status="closed", closed_at=self.timestamp, verify_note=self.note)

    class SentBack(Event):
        TOPIC = "esup.notice:SupervisionNotice.SentBack"
        problem_no: int
        reason: str
        due_at: datetime

        def apply(self, n: SupervisionNotice) -> None:
            p = n.problems[self.problem_no]
            p.update(status="open", due_at=self.due_at, returns=p["returns"] + 1, return_reason=self.reason)

    class Warned(Event):
        TOPIC = "esup.notice:SupervisionNotice.Warned"
        problem_no: int
        due_at: datetime

        def apply(self, n: SupervisionNotice) -> None:
            n.problems[self.problem_no]["warned"].append(self.due_at)

    def __init__(self, notice_no: str, department: str, title: str, problems: list[dict[str, Any]],
                 inspection: dict[str, str] | None, by: dict[str, Any]) -> None:
        self.notice_no = notice_no
        self.department = department
        self.title = title
        self.inspection = dict(inspection) if inspection else None
        self.issued_by = dict(by)
        self.problems: dict[int, dict[str, Any]] = {
            p["no"]: {**p, "status": "open", "rectification": None, "reported_at": None, "reported_late": None,
                      "closed_at": None, "verify_note": None, "returns": 0, "return_reason": None, "warned": []}
            for p in problems
        }

    @staticmethod
    def create_id(notice_no: str, **_: Any) -> UUID:
        return notice_id(notice_no)

    @property
    def status(self) -> str:
        return "closed" if all(p["status"] == "closed" for p in self.problems.values()) else "open"

    @property
    def closed_at(self) -> datetime | None:
        return max(p["closed_at"] for p in self.problems.values()) if self.status == "closed" else None

    # -- acts ------------------------------------------------------------------------------

    @classmethod
    def issue(cls, *, notice_no: object, department: object, title: object, problems: object, inspection: object = None,
              by: dict[str, Any], at: datetime, calendar: WorkingCalendar) -> SupervisionNotice:
        no = code(notice_no, "notice_no")
        if not isinstance(problems, list) or not problems:
            raise InvalidInput("problems must be a non-empty list", code="missing_field" if problems is None
                               else "invalid_field", missing=["problems"] if problems is None else [])
        if len(problems) > MAX_PROBLEMS:
            raise InvalidInput(f"a notice lists at most {MAX_PROBLEMS} problems", code="invalid_field")
        checked = []
        for i, raw in enumerate(problems, 1):
            what = f"problems[{i - 1}]"
            if not isinstance(raw, dict):
                raise InvalidInput(f"{what} must be an object", code="invalid_field")
            unknown = sorted(set(raw) - {"source", "ref", "description", "due_date", "within"})
            if unknown:
                raise InvalidInput(f"{what}: unknown fields {', '.join(unknown)}", code="unknown_field")
            if raw.get("source") not in SOURCES:
                raise InvalidInput(f"{what}.source must be one of {', '.join(SOURCES)}",
                                   code="missing_field" if raw.get("source") is None else "invalid_field",
                                   missing=[f"{what}.source"] if raw.get("source") is None else [])
            checked.append({"no": i, "source": raw["source"], "ref": code(raw.get("ref"), f"{what}.ref", required=False),
                            "description": text(raw.get("description"), f"{what}.description"),
                            "due_at": due_from(raw, at, calendar, what)})
        inspected = _inspection(inspection)  # an officer's own inspection has none: no round
        return cls._create(cls.Issued, notice_no=no, department=code(department, "department"),
                           title=text(title, "title", limit=500), problems=checked, inspection=inspected, by=by,
                           timestamp=at)

    def problem(self, problem_no: object) -> dict[str, Any]:
        if isinstance(problem_no, bool) or not isinstance(problem_no, int) or problem_no not in self.problems:
            raise UnknownProblem(f"notice {self.notice_no} has no problem {problem_no!r} (1 to {len(self.problems)})")
        return self.problems[problem_no]

    def _open(self, problem_no: object) -> dict[str, Any]:
        p = self.problem(problem_no)
        if p["status"] == "closed":
            raise ProblemClosed(f"problem {problem_no} of notice {self.notice_no} was verified and closed",
                                state="closed")
        return p

    def report(self, problem_no: object, rectification: object, by: dict[str, Any], at: datetime) -> None:
        p = self._open(problem_no)
        if p["status"] == "reported":
            raise ProblemAlreadyReported(f"problem {problem_no} of notice {self.notice_no} awaits the officer's "
                                         "verification of the rectification reported", state="reported")
        self.trigger_event(self.Reported, problem_no=problem_no, rectification=text(rectification, "rectification"),
                           by=by, timestamp=at)

    def verify(self, problem_no: object, note: object, by: dict[str, Any], at: datetime) -> None:
        p = self._open(problem_no)
        if p["status"] != "reported":
            raise ProblemNotReported(f"problem {problem_no} of notice {self.notice_no}: no rectification reported yet",
                                     state=p["status"])
        self.trigger_event(self.Verified, problem_no=problem_no, note=text(note, "note", required=False), by=by,
                           timestamp=at)

    def send_back(self, problem_no: object, reason: object, by: dict[str, Any], at: datetime,
                  calendar: WorkingCalendar, due: dict[str, Any] | None = None) -> None:
        """The rectification does not do: the problem is open again, by default with its deadline
        (if that has not passed yet), else with a new one (``due``: due_date or within; default
        the standard rectification period from now)."""
        p = self._open(problem_no)
        if p["status"] != "reported":
            raise ProblemNotReported(f"problem {problem_no} of notice {self.notice_no}: no rectification reported yet",
                                     state=p["status"])
        reason_text = text(reason, "reason")
        if due:
            due_at = due_from(due, at, calendar, "due")
        elif p["due_at"] > at:
            due_at = p["due_at"]
        else:
            due_at = calendar.deadline(at, DEFAULT_RECTIFICATION)
        self.trigger_event(self.SentBack, problem_no=problem_no, reason=reason_text, due_at=due_at, by=by, timestamp=at)

    def warn_late(self, now: datetime) -> int:
        """Record the warnings the open problems have earned by ``now``; returns how many."""
        late = late_problems(self, now)
        for no, due_at in late:
            self.trigger_event(self.Warned, problem_no=no, due_at=due_at, by={"role": "system"}, timestamp=now)
        return len(late)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "notice_no": self.notice_no, "department": self.department, "title": self.title,
            "inspection": self.inspection, "status": self.status, "issued_at": self.created_on,
            "closed_at": self.closed_at, "version": self.version,
            "problems": [{**{k: v for k, v in p.items() if k != "warned"}, "warnings": list(p["warned"]),
                          "source_label": SOURCE_ZH[p["source"]], "status_label": PROBLEM_STATUS_ZH[p["status"]]}
                         for p in self.problems.values()],
        }


def late_problems(n: SupervisionNotice, now: datetime) -> list[tuple[int, datetime]]:
    """The problems still open (nothing reported, or sent back) after their deadline, not yet
    warned for that deadline, with it."""
    return [(no, p["due_at"]) for no, p in sorted(n.problems.items())
            if p["status"] == "open" and now > p["due_at"] and p["due_at"] not in p["warned"]]


NOTICE_TOPICS = (
    SupervisionNotice.Issued.TOPIC, SupervisionNotice.Reported.TOPIC, SupervisionNotice.Verified.TOPIC,
    SupervisionNotice.SentBack.TOPIC, SupervisionNotice.Warned.TOPIC,
)
