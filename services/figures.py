"""Headline figures straight from the ledger's events (one pass over the log).

The performance projections (绩效) will compute these incrementally; this full scan is the
reference they are checked against, and what ``esup demo`` prints.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from domain.case import STEP_TOPICS, Case
from infra.logs import notifications_after
from services.apps import Ledger


def headline(ledger: Ledger, progress: Callable[[int], None] | None = None, satisfied_scores: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    cases: dict[Any, dict[str, Any]] = {}
    events = 0
    for n in notifications_after(ledger.recorder, 0, STEP_TOPICS, page=2000):
        e: Case.Event = ledger.mapper.to_domain_event(n)  # type: ignore[assignment]
        events += 1
        if progress:
            progress(1)
        step = e.STEP.value
        if step == "submitted":
            terms = e.derived["terms"]
            legal, promised = terms["legal_limit"], terms["promised_limit"]
            cases[e.originator_id] = {"on_the_spot": terms["on_the_spot"], "legal": legal, "promised": promised}
            continue
        c = cases.get(e.originator_id)
        if c is None:
            continue
        if step == "accepted":
            c["accepted"] = e.occurred_at
        elif step == "concluded":
            c["concluded"] = e.occurred_at
            c["on_time"] = e.derived.get("on_time")
        elif step == "rated":
            c["score"] = e.data["score"]
    concluded = [c for c in cases.values() if "concluded" in c]
    spot = [c for c in concluded if c["on_the_spot"]]
    same_day = [c for c in spot if "accepted" in c and c["concluded"].date() == c["accepted"].date()]
    rated = [c for c in cases.values() if "score" in c]
    on_time = [c for c in concluded if c.get("on_time")]
    speed = [
        (Decimal(c["legal"]["value"]) - Decimal(c["promised"]["value"])) / Decimal(c["legal"]["value"])
        for c in cases.values() if c["legal"]["unit"] == c["promised"]["unit"] and c["legal"]["value"]
    ]

    def rate(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 1) if whole else None

    return {
        "events": events,
        "volume": len(cases),  # 办件量
        "concluded": len(concluded),
        "on_time_rate": rate(len(on_time), len(concluded)),  # 按时办结率
        "on_the_spot_completion_rate": rate(len(same_day), len(spot)),  # 当场办结率
        "overdue": len(concluded) - len(on_time),  # 超时件
        "satisfaction_rate": rate(sum(1 for c in rated if c["score"] in satisfied_scores), len(rated)),  # 满意率
        "promised_speed_up": round(float(100 * sum(speed) / len(speed)), 1) if speed else None,  # 承诺提速率 (per case)
    }
