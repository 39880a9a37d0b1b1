"""Step reports: what a department's approval system tells us, validated at the edge of the domain.

A report is parsed into a ``StepReport`` (or refused with a stable code) before it touches a
case. Exchange codes used by provincial interfaces (e.g. 办结结果 0 出证 ... 6 办结) are mapped to
the one vocabulary used inside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from domain.catalogue import _code, parse_money
from domain.errors import InvalidInput
from domain.limits import Limit, Unit


class Step(str, Enum):
    SUBMITTED = "submitted"  # 收件/申请
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 补正告知
    SUPPLEMENT_RECEIVED = "supplement_received"  # 补齐补正
    ACCEPTED = "accepted"  # 受理: the clock starts
    REFUSED = "refused"  # 不予受理 (terminal)
    UNDERTAKEN = "undertaken"  # 承办
    REVIEWED = "reviewed"  # 审核
    DECIDED = "decided"  # 批准/决定
    CONCLUDED = "concluded"  # 办结 (terminal)
    DELIVERED = "delivered"  # 送达
    SUSPENDED = "suspended"  # 特别程序开始: the clock stops
    RESUMED = "resumed"  # 特别程序结束: the clock runs again
    EXTENDED = "extended"  # 延期
    FEE_CHARGED = "fee_charged"  # 收费
    WITHDRAWN = "withdrawn"  # 撤件 (terminal)
    RATED = "rated"  # 满意度评价


# Step's members under module names, for the hot paths: reading ``Step.X`` goes through the
# attribute hook that EnumType.__getattr__ gives the class (about 0.3 µs, dozens of times a
# step as ingest applies it); a module global is one dict read.
(SUBMITTED, SUPPLEMENT_REQUESTED, SUPPLEMENT_RECEIVED, ACCEPTED, REFUSED, UNDERTAKEN, REVIEWED, DECIDED, CONCLUDED,
 DELIVERED, SUSPENDED, RESUMED, EXTENDED, FEE_CHARGED, WITHDRAWN, RATED) = (
    Step.SUBMITTED, Step.SUPPLEMENT_REQUESTED, Step.SUPPLEMENT_RECEIVED, Step.ACCEPTED, Step.REFUSED, Step.UNDERTAKEN,
    Step.REVIEWED, Step.DECIDED, Step.CONCLUDED, Step.DELIVERED, Step.SUSPENDED, Step.RESUMED, Step.EXTENDED,
    Step.FEE_CHARGED, Step.WITHDRAWN, Step.RATED)

# The steps' Chinese names, as flags and screens show them.
STEP_ZH: dict[Step, str] = {
    Step.SUBMITTED: "收件", Step.SUPPLEMENT_REQUESTED: "补正告知", Step.SUPPLEMENT_RECEIVED: "补齐补正",
    Step.ACCEPTED: "受理", Step.REFUSED: "不予受理", Step.UNDERTAKEN: "承办", Step.REVIEWED: "审核",
    Step.DECIDED: "批准/决定", Step.CONCLUDED: "办结", Step.DELIVERED: "送达", Step.SUSPENDED: "特别程序开始",
    Step.RESUMED: "特别程序结束", Step.EXTENDED: "延期", Step.FEE_CHARGED: "收费", Step.WITHDRAWN: "撤件",
    Step.RATED: "满意度评价",
}

TERMINAL = frozenset({Step.REFUSED, Step.CONCLUDED, Step.WITHDRAWN})
# Steps that still make sense once a case is closed (a licence is delivered, the applicant rates).
AFTER_CLOSE = frozenset({Step.DELIVERED, Step.RATED})
CLOSED_STATUSES = frozenset(s.value for s in TERMINAL)


def status_after(status: str, step: Step) -> str:
    """A case's status (办件状态) after a step: the one transition the case aggregate and the
    case board both use. Main steps after a case closed (none are accepted) leave it closed."""
    if step is SUBMITTED:
        return step._value_  # _value_: .value is a Python-level property
    if step is SUPPLEMENT_RECEIVED:
        return "supplemented"
    if step in TERMINAL or step in (SUPPLEMENT_REQUESTED, ACCEPTED):
        return step._value_
    if step in (UNDERTAKEN, REVIEWED, DECIDED):
        return status if status in CLOSED_STATUSES else step._value_
    return status


class Procedure(str, Enum):
    """特别程序 kinds: time spent in them is not counted."""

    HEARING = "hearing"  # 听证
    TENDER = "tender"  # 招标
    AUCTION = "auction"  # 拍卖
    INSPECTION = "inspection"  # 检验
    TESTING = "testing"  # 检测
    QUARANTINE = "quarantine"  # 检疫
    APPRAISAL = "appraisal"  # 鉴定
    EXPERT_REVIEW = "expert_review"  # 专家评审
    OTHER = "other"


class ConclusionResult(str, Enum):
    """办结结果, with the provincial exchange codes they come as."""

    ISSUED = "issued"  # 0 出证
    RETURNED = "returned"  # 1 退回
    VOIDED = "voided"  # 2 作废
    FORWARDED = "forwarded"  # 4 转报
    SUPPLEMENT_TIMEOUT = "supplement_timeout"  # 5 补正超时驳回
    COMPLETED = "completed"  # 6 办结


RESULT_CODES = {"0": "issued", "1": "returned", "2": "voided", "4": "forwarded", "5": "supplement_timeout", "6": "completed"}

MAX_TEXT = 2000
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
# A source's clock may run a little ahead of ours; beyond this a step "from the future" is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)


def _opt_text(data: dict[str, Any], key: str) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_TEXT:
        raise InvalidInput(f"data.{key} must be a string of at most {MAX_TEXT} characters", code="invalid_field")
    return raw.strip() or None


def _enum(data: dict[str, Any], key: str, enum: type[Enum], default: str | None = None, codes: dict[str, str] | None = None) -> str | None:
    raw = data.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if codes and isinstance(raw, str) and raw in codes:
        raw = codes[raw]
    try:
        return enum(raw).value
    except ValueError:
        raise InvalidInput(
            f"data.{key} must be one of " + ", ".join(e.value for e in enum), code="invalid_field"
        ) from None


def _validate_data(step: Step, data: dict[str, Any]) -> dict[str, Any]:
    """Step-specific fields: known keys only, typed, normalised."""
    allowed = _DATA_KEYS[step]
    unknown = set(data) - allowed
    if unknown:
        raise InvalidInput(
            f"unknown data fields for step {step.value}: {', '.join(sorted(unknown))}"
            + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else " (this step takes none)"),
            code="unknown_field",
        )
    out: dict[str, Any] = {}
    for key in ("reason", "opinion", "method", "approved_by", "fee_item", "channel", "materials", "comment"):
        if key in allowed:
            value = _opt_text(data, key)
            if value is not None:
                out[key] = value
    if step is SUBMITTED:
        kind = data.get("applicant_kind")
        if kind is not None and kind not in ("person", "enterprise"):
            raise InvalidInput("data.applicant_kind must be person or enterprise", code="invalid_field")
        if kind:
            out["applicant_kind"] = kind
    elif step is DECIDED:
        granted = data.get("granted")
        if not isinstance(granted, bool):
            raise InvalidInput("data.granted (true or false) is required on decided", code="invalid_field")
        out["granted"] = granted
    elif step is CONCLUDED:
        out["result"] = _enum(data, "result", ConclusionResult, "completed", RESULT_CODES)
    elif step is SUSPENDED:
        if data.get("procedure") is None:
            raise InvalidInput("data.procedure is required on suspended (特别程序 kind)", code="invalid_field")
        out["procedure"] = _enum(data, "procedure", Procedure)
    elif step is RESUMED:
        result = _opt_text(data, "result")
        if result:
            out["result"] = result
    elif step is EXTENDED:
        raw = {"value": data.get("value", 10), "unit": data.get("unit", Unit.WORKING_DAYS.value)}
        limit = Limit.parse(raw)
        if limit.value <= 0 or limit.value > 365:
            raise InvalidInput("data.value of an extension must be between 1 and 365", code="invalid_limit")
        out["value"], out["unit"] = limit.value, limit.unit.value
    elif step is FEE_CHARGED:
        if "amount" not in data:
            raise InvalidInput("data.amount (yuan) is required on fee_charged", code="invalid_amount")
        out["amount"] = str(parse_money(data["amount"], "data.amount"))
    elif step is RATED:
        score = data.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidInput(
                "data.score must be an integer from 1 (非常满意) to 5 (非常不满意)", code="invalid_score"
            )
        out["score"] = score
    return out


_COMMON = {"reason", "comment"}
_DATA_KEYS: dict[Step, set[str]] = {
    Step.SUBMITTED: {"channel", "applicant", "applicant_kind", "comment"},
    Step.SUPPLEMENT_REQUESTED: {"materials", *_COMMON},
    Step.SUPPLEMENT_RECEIVED: {"comment"},
    Step.ACCEPTED: {"comment"},
    Step.REFUSED: {*_COMMON},
    Step.UNDERTAKEN: {"opinion", "comment"},
    Step.REVIEWED: {"opinion", "comment"},
    Step.DECIDED: {"granted", "opinion", "comment"},
    Step.CONCLUDED: {"result", "comment"},
    Step.DELIVERED: {"method", "comment"},
    Step.SUSPENDED: {"procedure", *_COMMON},
    Step.RESUMED: {"result", "comment"},
    Step.EXTENDED: {"value", "unit", "approved_by", *_COMMON},
    Step.FEE_CHARGED: {"amount", "fee_item", "comment"},
    Step.WITHDRAWN: {*_COMMON},
    Step.RATED: {"score", "comment"},
}


def parse_instant(raw: object, what: str = "occurred_at") -> datetime:
    """ISO 8601 with a UTC offset; naive timestamps are refused (whose clock would they be?)."""
    if not isinstance(raw, str) or len(raw) > 64:
        raise InvalidInput(f"{what} must be an ISO 8601 timestamp with a UTC offset", code="invalid_timestamp")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise InvalidInput(f"{what} is not an ISO 8601 timestamp: {raw[:64]!r}", code="invalid_timestamp") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} has no UTC offset (e.g. +08:00): {raw!r}", code="naive_timestamp")
    return value


@dataclass(frozen=True)
class Actor:
    department: str
    window: str | None = None
    staff: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"department": self.department, "window": self.window, "staff": self.staff}


@dataclass(frozen=True)
class StepReport:
    """One validated step, as reported by a source (not yet applied to a case)."""

    event_id: str
    case_no: str
    step: Step
    occurred_at: datetime
    actor: Actor
    item_code: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    applicant: dict[str, str] | None = None  # personal data, sealed by the service before storing

    @classmethod
    def parse(cls, raw: object) -> StepReport:
        if not isinstance(raw, dict):
            raise InvalidInput("a step is a JSON object", code="invalid_body")
        unknown = raw.keys() - _REPORT_KEYS
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
        # Name every missing field at once, so a source fixes its mapping in one round.
        missing = [k for k in ("event_id", "case_no", "step", "occurred_at", "department") if raw.get(k) is None]
        if raw.get("step") == "submitted" and raw.get("item_code") is None:
            missing.append("item_code")
        if missing:
            raise InvalidInput(f"required: {', '.join(missing)}" + (" (item_code on submitted)" if "item_code" in missing else ""),
                               code="missing_field", field=missing[0], missing=missing)
        event_id = _code(raw["event_id"], "event_id")
        if not isinstance(raw["case_no"], str) or not raw["case_no"] or len(raw["case_no"]) > 50:
            # GB/T 39046: 办件编号 is up to 50 characters.
            raise InvalidInput("case_no must be a string of 1 to 50 characters", code="invalid_case_no")
        case_no = _code(raw["case_no"], "case_no")
        raw_step = raw["step"]
        # The steps by their exact names first (Step(...) is a slow call); anything else as ever.
        step = _STEPS.get(raw_step) if type(raw_step) is str else None
        try:
            if step is None:
                step = Step(raw_step)
        except (ValueError, TypeError):
            raise InvalidInput(
                f"unknown step {str(raw['step'])[:40]!r}; steps are " + ", ".join(s.value for s in Step),
                code="unknown_step",
            ) from None
        occurred_at = parse_instant(raw["occurred_at"])
        actor = _new(Actor, department=_code(raw["department"], "department"),
                     window=_code(raw["window"], "window") if raw.get("window") is not None else None,
                     staff=_code(raw["staff"], "staff") if raw.get("staff") is not None else None)
        item_code = raw.get("item_code")
        if step is SUBMITTED:
            if item_code is None:
                raise InvalidInput("item_code is required on submitted", code="missing_field", field="item_code",
                                   missing=["item_code"])
            item_code = _code(item_code, "item_code")
        elif item_code is not None:
            item_code = _code(item_code, "item_code")
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise InvalidInput("data must be a JSON object", code="invalid_field")
        applicant = None
        if step is SUBMITTED and data.get("applicant") is not None:
            applicant = _parse_applicant(data["applicant"])
        data = _validate_data(step, data)
        if cls is not StepReport:  # pragma: no cover - a subclass: its own __init__
            return cls(event_id, case_no, step, occurred_at, actor, item_code, data, applicant)
        return _new(StepReport, event_id=event_id, case_no=case_no, step=step, occurred_at=occurred_at, actor=actor,
                    item_code=item_code, data=data, applicant=applicant)


def _new(cls: type, **fields: Any) -> Any:
    """``cls(**fields)`` for the frozen dataclasses above, given every field: the same instance
    without one ``object.__setattr__`` per field (a fifth of parsing a step). The names are the
    dataclass's fields in their order (checked below the classes; tests/unit/test_fast_events.py
    compares with the constructor)."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


assert [f.name for f in dataclasses.fields(Actor)] == ["department", "window", "staff"], "see StepReport.parse"
assert [f.name for f in dataclasses.fields(StepReport)] == [
    "event_id", "case_no", "step", "occurred_at", "actor", "item_code", "data", "applicant"], "see StepReport.parse"

_REPORT_KEYS = frozenset({"event_id", "case_no", "step", "occurred_at", "department", "window", "staff", "item_code", "data"})
_STEPS = {s.value: s for s in Step}

_APPLICANT_KEYS = {"name", "id_number", "phone"}


def _parse_applicant(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise InvalidInput("data.applicant must be an object with name, id_number, phone", code="invalid_field")
    unknown = set(raw) - _APPLICANT_KEYS
    if unknown:
        raise InvalidInput(f"unknown applicant fields: {', '.join(sorted(unknown))}", code="unknown_field")
    out = {}
    for key in _APPLICANT_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise InvalidInput(f"data.applicant.{key} must be a string of at most 200 characters", code="invalid_field")
        out[key] = value
    return out


def mask(value: str | None) -> str | None:
    """Masks personal data for roles that may not see it: keep a little for recognition."""
    if not value:
        return value
    if len(value) <= 2:
        return value[0] + "*"
    if len(value) <= 4:
        return value[0] + "*" * (len(value) - 1)
    keep = max(1, len(value) // 6)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]
