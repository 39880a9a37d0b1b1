"""Reading anomalies (异常) from the anomaly view, with their evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson

from domain.calendar import CHINA_TZ
from domain.errors import InvalidInput
from domain.steps import parse_instant
from projections import anomalies as anomaly_view
from projections.instants import us
from projections.anomalies import RULES, TYPES, AnomalyView, iso, rule_for

LABEL_TO_TYPE = {label: code for code, label in TYPES.items()} | {"风险": "risk"}


def parse_type(raw: str | None) -> str | None:
    if not raw:
        return None
    code = raw if raw in TYPES else LABEL_TO_TYPE.get(raw)
    if code is None:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)} (or {', '.join(TYPES.values())})",
                           code="invalid_field")
    return code


def parse_bound(raw: str | None, what: str, end: bool) -> int | None:
    """A date (the whole local day: from its start, or to its end) or an instant with an offset."""
    if not raw:
        return None
    if len(raw) == 10:
        try:
            d = date.fromisoformat(raw) + (timedelta(days=1) if end else timedelta(0))
        except ValueError:
            raise InvalidInput(f"{what} must be a date (YYYY-MM-DD) or an ISO 8601 instant", code="invalid_field") from None
        return us(datetime.combine(d, time(0), CHINA_TZ)) - (1 if end else 0)  # type: ignore[operator]
    return us(parse_instant(raw, what))


@dataclass
class AnomalyFilter:
    type: str | None = None
    rule: str | None = None
    status: str | None = None
    departments: frozenset[str] | None = None  # None: all
    case_no: str | None = None
    occurred_from: float | None = None
    occurred_to: float | None = None
    limit: int = 100
    offset: int = 0


COLUMNS = ("case_no", "rule", "type", "reason", "status", "department", "window_code", "item_code", "occurred_at",
           "detected_at", "detected_by", "evidence", "details")


def list_anomalies(esup: Any, f: AnomalyFilter) -> dict[str, Any]:
    where, params = ["1 = 1"], []
    for column, value in (("type", f.type), ("rule", f.rule), ("status", f.status), ("case_no", f.case_no)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.departments is not None:
        if not f.departments:
            return {"total": 0, "counts": {}, "anomalies": []}
        where.append(f"department IN ({', '.join('?' for _ in f.departments)})")
        params += sorted(f.departments)
    if f.occurred_from is not None:
        where.append("occurred_at >= ?")
        params.append(f.occurred_from)
    if f.occurred_to is not None:
        where.append("occurred_at <= ?")
        params.append(f.occurred_to)
    clause = " AND ".join(where)
    with esup.views.read() as cur:
        counts, rows = anomaly_view.query(cur, clause, params, COLUMNS, f.limit, f.offset)
    out = []
    for r in rows:
        rule = rule_for(r["rule"])
        out.append({
            "case_no": r["case_no"], "type": r["type"], "type_label": TYPES.get(r["type"], r["type"]),
            "rule": r["rule"], "rule_label": rule.label, "reason": r["reason"], "status": r["status"],
            "department": r["department"], "window": r["window_code"], "item_code": r["item_code"],
            "occurred_at": iso(r["occurred_at"]), "detected_at": iso(r["detected_at"]), "detected_by": r["detected_by"],
            "evidence": orjson.loads(r["evidence"]), "details": orjson.loads(r["details"]),
        })
    return {"total": sum(counts.values()), "counts": {k: int(v) for k, v in counts.items()}, "anomalies": out}


def rules(view: AnomalyView) -> dict[str, Any]:
    p = view.policy
    return {
        "types": [{"type": k, "label": v} for k, v in TYPES.items()],
        "rules": [{"rule": r.id, "type": r.type, "type_label": TYPES[r.type], "label": r.label,
                   "description": r.description} for r in RULES.values()],
        "policy": {
            "accept_within_working_days": p.accept_within_working_days,
            "bulk_min_steps": p.bulk_min_steps, "bulk_window_seconds": p.bulk_window.total_seconds(),
            "bulk_min_span_hours": p.bulk_min_span.total_seconds() / 3600,
            "suspensions_frequent": p.suspensions_frequent, "suspension_long_days": p.suspension_long.total_seconds() / 86400,
        },
    }
