"""The annual staff assessment (年终考核): the objective efficiency part of each window staff
member's grading, computed from events, with a suggested grade.

The seed (2009 yearbook): the assessment group (政务服务中心, 人事劳动和社会保障局, 纪工委（监察局）,
window group leaders) combines democratic, department and center scores with additions and
deductions from the center's records, among them 投诉记录, 互评互查 and the 纪工委 督察记录; the
result is graded 优秀 / 称职 / 基本称职 / 不称职 from the highest score down; 2008: 115 assessed,
24 优秀, the rest 称职. This module supplies what the system knows objectively, per staff member
and year, as **facts** each traceable to the event behind it (case number, source event id, log
position):

- ``handled``: cases concluded in the year that the staff member handled (受理人: who accepted
  the case, else who received it, as in the performance figures); ``on_time`` / ``overdue``:
  of those, concluded by / after the promised deadline;
- ``card_yellow`` / ``card_red`` / ``card_severe``: warning cards (预警) on the cases they
  handled, by the year of the card's threshold (a withdrawn card counts for nothing);
  ``card_answered``: answered by the department (纠错说明); ``card_escalated``: escalated (督办);
- ``anomaly``: irregularities flagged on the steps they reported (late entry 体外循环, skipped or
  out-of-order steps, fees above the standard ...; ``calendar_provisional`` is about our
  reference data, not a person, and is left out). Time-based anomalies that no step carries
  (e.g. not accepted within 5 working days) name no staff member and are not attributed;
- ``rated`` / ``satisfied`` / ``dissatisfied``: ratings of their cases (satisfied: the scores
  the policy counts, default 1-3; dissatisfied: 4 不满意 and 5 非常不满意);
- ``complaint_substantiated``: complaints against them concluded as substantiated (属实) in the
  year.

``AssessmentFold`` turns events into facts; it keeps what it must remember (which staff member
handled a case, a card's staff and year) behind a small port, so the view
(projections/assessment.py) and a full recomputation from the log (services/assessment.py) run
the same rules. ``case_step`` is the ONE place that reads case-event fields.

The score and the grades are configuration (``AssessmentPolicy``; ``ESUP_ASSESSMENT_POLICY``):

    score = base + Σ weight[figure] × figure + satisfaction_weight × (satisfaction_rate − satisfaction_baseline)

with the defaults below (base 100: +0.01 a case handled; −5 an overdue case; −1 a yellow, −3 a
red, −5 a severe card; −2 a card escalated; −1 a card left unanswered; −1 an anomaly; −10 a
substantiated complaint; +0.5 a point of satisfaction above 95%, −0.5 below; no ratings: no
term). Ranked by score (ties: more cases handled, then the staff code), the top
``excellent_share`` of those assessed (rounded down; or ``excellent_count``) are suggested 优秀
if they are eligible (score at least ``excellent_min``, no overdue case, no substantiated
complaint; an ineligible one's place stays empty), then 称职 from ``competent_min``, 基本称职 from
``basic_min``, 不称职 below. The seed does not state its 优秀 share (人事部门单列); 0.21 is the
default because 0.21 × 115 rounds down to the seed's 24.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, NamedTuple, Protocol

from domain.calendar import CHINA_TZ
from domain.errors import InvalidInput

GRADES = ("优秀", "称职", "基本称职", "不称职")
FIGURES = ("handled", "on_time", "overdue", "card_yellow", "card_red", "card_severe", "card_answered",
           "card_escalated", "anomaly", "rated", "satisfied", "dissatisfied", "complaint_substantiated")
DERIVED = ("cards", "card_unanswered", "on_time_rate", "satisfaction_rate")
FIGURE_ZH = {"handled": "办结件", "on_time": "按时办结", "overdue": "超时件", "card_yellow": "黄牌",
             "card_red": "红牌", "card_severe": "超法定时限", "card_answered": "已纠错说明", "card_escalated": "被督办",
             "anomaly": "异常", "rated": "评议件", "satisfied": "满意件", "dissatisfied": "不满意件",
             "complaint_substantiated": "属实投诉", "cards": "预警牌", "card_unanswered": "未说明预警",
             "on_time_rate": "按时办结率%", "satisfaction_rate": "满意率%"}
NOT_ANOMALIES = frozenset({"calendar_provisional"})
COUNTED_STEPS = frozenset({"submitted", "accepted", "concluded", "rated", "deadlines_settled"})


def year_of(instant: datetime) -> int:
    return instant.astimezone(CHINA_TZ).year


# -- the one adapter over case events -------------------------------------------------------------

class CaseStep(NamedTuple):
    case_id: str
    version: int
    step: str
    case_no: str | None  # on submitted only
    staff: str | None
    occurred_at: datetime
    event_ref: str  # the source's event id
    on_time: bool | None  # concluded (and deadlines_settled on a concluded case)
    score: int | None  # rated
    flags: tuple[str, ...]


def case_step(event: Any) -> CaseStep:
    """What the assessment reads of a case event: the ONE function to change when case events
    change shape (issue 7: typed case events)."""
    derived = getattr(event, "derived", None) or {}
    data = getattr(event, "data", None) or {}
    actor = getattr(event, "actor", None) or {}
    return CaseStep(
        case_id=str(event.originator_id), version=event.originator_version, step=event.STEP.value,
        case_no=getattr(event, "case_no", None), staff=actor.get("staff"), occurred_at=event.occurred_at,
        event_ref=event.source_event_id, on_time=derived.get("on_time"),
        score=data.get("score") if event.STEP.value == "rated" else None,
        flags=tuple(f["code"] for f in (getattr(event, "flags", None) or []) if f.get("code") not in NOT_ANOMALIES),
    )


def counts(event: Any) -> bool:
    """Whether the fold does anything with this case event (``AssessmentFold.case_event``'s own
    test, made before ``case_step`` builds what it reads: most steps count for nothing)."""
    return event.STEP.value in COUNTED_STEPS or any(
        f.get("code") not in NOT_ANOMALIES for f in (getattr(event, "flags", None) or ()))


# -- facts -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    subject: str  # what it is about (a case id, a warning id, a complaint id, an event)
    kind: str  # one of FIGURES
    staff: str
    year: int
    case_no: str | None  # or the complaint number
    event_ref: str  # the source event id, warning id or complaint number behind it
    position: int  # the log position of the event that made it


class Port(Protocol):
    """What the fold remembers between events (a table in the view, a dict in a recomputation)."""

    def case(self, case_id: str) -> tuple[str, str | None] | None: ...  # (case_no, staff)
    def set_case(self, case_id: str, case_no: str, staff: str | None) -> None: ...
    def card(self, warning_id: str) -> tuple[str, int, str] | None: ...  # (staff, year, case_no)
    def set_card(self, warning_id: str, staff: str, year: int, case_no: str) -> None: ...
    def complaint(self, complaint_id: str) -> tuple[str, str] | None: ...  # (complaint_no, staff)
    def set_complaint(self, complaint_id: str, complaint_no: str, staff: str) -> None: ...
    def add(self, fact: Fact) -> None: ...  # replaces a fact of the same (subject, kind)
    def remove(self, subject: str, kinds: Iterable[str] | None = None) -> list[Fact]: ...  # what it removed


class AssessmentFold:
    """Events in, facts out (through the port). Case events go through ``case_step``; warning and
    complaint events are typed (domain/warning.py, domain/complaint.py)."""

    def __init__(self, port: Port, satisfied_scores: Iterable[int] = (1, 2, 3)) -> None:
        self.port = port
        self.satisfied = frozenset(satisfied_scores)

    def case_event(self, s: CaseStep, position: int) -> None:
        p = self.port
        if s.step not in COUNTED_STEPS and not s.flags:
            return  # nothing to count (most undertaken, reviewed, decided ... steps): no lookup
        if s.step == "submitted":
            p.set_case(s.case_id, s.case_no or "", s.staff)
            known: tuple[str, str | None] | None = (s.case_no or "", s.staff)
        else:
            known = p.case(s.case_id)
        if known is None:
            return
        case_no, handler = known
        if s.step == "accepted" and s.staff and s.staff != handler:
            p.set_case(s.case_id, case_no, s.staff)
            handler = s.staff
        for code in s.flags:
            who = s.staff or handler
            if who:
                p.add(Fact(f"{s.case_id}:{s.version}:{code}", "anomaly", who, year_of(s.occurred_at), case_no,
                           s.event_ref, position))
        if handler is None:
            return
        year = year_of(s.occurred_at)
        if s.step == "concluded":
            p.add(Fact(s.case_id, "handled", handler, year, case_no, s.event_ref, position))
            if s.on_time is not None:
                p.add(Fact(s.case_id, "on_time" if s.on_time else "overdue", handler, year, case_no, s.event_ref,
                           position))
        elif s.step == "deadlines_settled" and s.on_time is not None:
            # The verdict on a concluded case, judged again on the published year: it stays in
            # the year the case was concluded.
            old = p.remove(s.case_id, ("on_time", "overdue"))
            if old:
                p.add(Fact(s.case_id, "on_time" if s.on_time else "overdue", handler, old[0].year, case_no,
                           s.event_ref, position))
        elif s.step == "rated" and s.score is not None:
            p.add(Fact(s.case_id, "rated", handler, year, case_no, s.event_ref, position))
            if s.score in self.satisfied:
                p.add(Fact(s.case_id, "satisfied", handler, year, case_no, s.event_ref, position))
            if s.score >= 4:
                p.add(Fact(s.case_id, "dissatisfied", handler, year, case_no, s.event_ref, position))

    def card_issued(self, warning_id: str, case_id: str, level: str, threshold_at: datetime, position: int) -> None:
        known = self.port.case(case_id)
        if known is None or known[1] is None:
            return
        case_no, staff = known
        year = year_of(threshold_at)
        self.port.set_card(warning_id, staff, year, case_no)  # type: ignore[arg-type]
        self.port.add(Fact(warning_id, f"card_{level}", staff, year, case_no, warning_id, position))  # type: ignore[arg-type]

    def card_act(self, warning_id: str, act: str, position: int) -> None:
        """``answered``, ``escalated`` or ``withdrawn`` (a withdrawn card counts for nothing)."""
        card = self.port.card(warning_id)
        if card is None:
            return
        if act == "withdrawn":
            self.port.remove(warning_id)
            return
        staff, year, case_no = card
        self.port.add(Fact(warning_id, f"card_{act}", staff, year, case_no, warning_id, position))

    def complaint_received(self, complaint_id: str, complaint_no: str, staff: str | None) -> None:
        if staff:
            self.port.set_complaint(complaint_id, complaint_no, staff)

    def complaint_concluded(self, complaint_id: str, substantiated: bool, at: datetime, position: int) -> None:
        known = self.port.complaint(complaint_id)
        if known is None or not substantiated:
            return
        complaint_no, staff = known
        self.port.add(Fact(complaint_id, "complaint_substantiated", staff, year_of(at), complaint_no, complaint_no,
                           position))


class MemoryPort:
    """The fold's memory in dicts: for a recomputation from the log and for unit tests."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[str, str | None]] = {}
        self.cards: dict[str, tuple[str, int, str]] = {}
        self.complaints: dict[str, tuple[str, str]] = {}
        self.facts: dict[tuple[str, str], Fact] = {}

    def case(self, case_id: str) -> tuple[str, str | None] | None:
        return self.cases.get(case_id)

    def set_case(self, case_id: str, case_no: str, staff: str | None) -> None:
        self.cases[case_id] = (case_no, staff)

    def card(self, warning_id: str) -> tuple[str, int, str] | None:
        return self.cards.get(warning_id)

    def set_card(self, warning_id: str, staff: str, year: int, case_no: str) -> None:
        self.cards[warning_id] = (staff, year, case_no)

    def complaint(self, complaint_id: str) -> tuple[str, str] | None:
        return self.complaints.get(complaint_id)

    def set_complaint(self, complaint_id: str, complaint_no: str, staff: str) -> None:
        self.complaints[complaint_id] = (complaint_no, staff)

    def add(self, fact: Fact) -> None:
        self.facts[(fact.subject, fact.kind)] = fact

    def remove(self, subject: str, kinds: Iterable[str] | None = None) -> list[Fact]:
        found = (self.facts.pop((subject, k), None) for k in (FIGURES if kinds is None else kinds))
        return [f for f in found if f is not None]


# -- the score and the grades ---------------------------------------------------------------------

DEFAULT_WEIGHTS: dict[str, float] = {
    "handled": 0.01, "overdue": -5.0, "card_yellow": -1.0, "card_red": -3.0, "card_severe": -5.0,
    "card_escalated": -2.0, "card_unanswered": -1.0, "anomaly": -1.0, "complaint_substantiated": -10.0,
}


@dataclass(frozen=True)
class AssessmentPolicy:
    base: float = 100.0
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    satisfaction_weight: float = 0.5
    satisfaction_baseline: float = 95.0
    satisfied_scores: tuple[int, ...] = (1, 2, 3)
    excellent_share: float = 0.21
    excellent_count: int | None = None  # overrides the share
    excellent_min: float = 90.0
    competent_min: float = 80.0
    basic_min: float = 60.0

    @classmethod
    def parse(cls, raw: object) -> AssessmentPolicy:
        if not isinstance(raw, dict):
            raise InvalidInput("the assessment policy is a JSON object", code="invalid_policy")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidInput(f"unknown assessment policy keys: {', '.join(unknown)}", code="invalid_policy")
        out = cls()
        for key, value in raw.items():
            if key == "weights":
                if not isinstance(value, dict) or set(value) - set(FIGURES + DERIVED[:2]) or not all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
                    raise InvalidInput(f"weights map figures ({', '.join(FIGURES + DERIVED[:2])}) to numbers",
                                       code="invalid_policy")
                out = replace(out, weights={**out.weights, **{k: float(v) for k, v in value.items()}})
            elif key == "satisfied_scores":
                if not isinstance(value, list) or not value or not all(isinstance(s, int) and 1 <= s <= 5 for s in value):
                    raise InvalidInput("satisfied_scores lists scores 1 to 5", code="invalid_policy")
                out = replace(out, satisfied_scores=tuple(sorted(set(value))))
            elif key == "excellent_count":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                    raise InvalidInput("excellent_count is a whole number", code="invalid_policy")
                out = replace(out, excellent_count=value)
            else:
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise InvalidInput(f"{key} is a number", code="invalid_policy")
                out = replace(out, **{key: float(value)})
        if not 0 <= out.excellent_share <= 1:
            raise InvalidInput("excellent_share is between 0 and 1", code="invalid_policy")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "weights": dict(self.weights), "satisfaction_weight": self.satisfaction_weight,
                "satisfaction_baseline": self.satisfaction_baseline, "satisfied_scores": list(self.satisfied_scores),
                "excellent_share": self.excellent_share, "excellent_count": self.excellent_count,
                "excellent_min": self.excellent_min, "competent_min": self.competent_min, "basic_min": self.basic_min}

    def quota(self, assessed: int) -> int:
        if self.excellent_count is not None:
            return min(self.excellent_count, assessed)
        return math.floor(self.excellent_share * assessed + 1e-9)


def figures_of(facts: Iterable[Fact]) -> dict[str, dict[str, Any]]:
    """Per staff member: the count of each figure, then the derived ones."""
    out: dict[str, dict[str, Any]] = {}
    for f in facts:
        row = out.setdefault(f.staff, {k: 0 for k in FIGURES})
        row[f.kind] += 1
    for row in out.values():
        derive(row)
    return out


def derive(row: dict[str, Any]) -> dict[str, Any]:
    row["cards"] = row["card_yellow"] + row["card_red"] + row["card_severe"]
    row["card_unanswered"] = max(0, row["cards"] - row["card_answered"])
    row["on_time_rate"] = round(100.0 * row["on_time"] / row["handled"], 1) if row["handled"] else None
    row["satisfaction_rate"] = round(100.0 * row["satisfied"] / row["rated"], 1) if row["rated"] else None
    return row


def score(row: dict[str, Any], policy: AssessmentPolicy) -> float:
    total = policy.base + sum(w * row.get(k, 0) for k, w in policy.weights.items())
    if row.get("satisfaction_rate") is not None:
        total += policy.satisfaction_weight * (row["satisfaction_rate"] - policy.satisfaction_baseline)
    return round(total, 2)


def grade(rows: dict[str, dict[str, Any]], policy: AssessmentPolicy) -> list[dict[str, Any]]:
    """Every staff member assessed (``rows``: staff code -> figures), ranked, with a score and a
    suggested grade under the 优秀 quota."""
    scored = []
    for staff, row in rows.items():
        full = derive({**{k: 0 for k in FIGURES}, **{k: v for k, v in row.items() if k in FIGURES}})
        scored.append({"staff": staff, **full, "score": score(full, policy)})
    scored.sort(key=lambda r: (-r["score"], -r["handled"], r["staff"]))
    quota = policy.quota(len(scored))
    excellent = 0
    for rank, r in enumerate(scored, 1):
        r["rank"] = rank
        eligible = r["score"] >= policy.excellent_min and r["overdue"] == 0 and r["complaint_substantiated"] == 0
        if eligible and excellent < quota:
            r["grade"] = "优秀"
            excellent += 1
        elif r["score"] >= policy.competent_min:
            r["grade"] = "称职"
        elif r["score"] >= policy.basic_min:
            r["grade"] = "基本称职"
        else:
            r["grade"] = "不称职"
    return scored


def distribution(ranked: list[dict[str, Any]]) -> dict[str, int]:
    return {g: sum(1 for r in ranked if r["grade"] == g) for g in GRADES}
