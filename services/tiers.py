"""The three tiers (三级政务服务体系): the district center, the street centers (街道社会事务服务中心)
and the community centers (社区便民服务中心), with their figures and rankings.

A center's figures are the performance view's, grouped by center (a case counts for its
window's hall's center, else its department's: ``services/metrics.py``); each center row adds
its tier, its parent, its halls and windows and the items delegated to it, and its rank among
the centers of its tier (by on-time rate, then satisfaction, then volume). Each tier's total
is the sum of its centers' (ratios of sums, as everywhere).
"""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidInput, NotFound
from domain.organisation import Tier, UnitKind
from services.metrics import Metrics, MetricsQuery, _add, compute, default_satisfied

TIER_LABELS = {"district": "区级政务服务中心", "street": "街道社会事务服务中心", "community": "社区便民服务中心"}


def _rank_key(row: dict[str, Any]) -> tuple[float, float, int]:
    def v(x: Any) -> float:
        return -1.0 if x is None else float(x)

    return (-v(row["on_time_rate"]), -v(row["satisfaction_rate"]), -int(row["volume"]))


def center_figures(esup: Any, *, day_from: str | None = None, day_to: str | None = None, tier: str | None = None,
                   center: str | None = None, departments: frozenset[str] | None = None) -> dict[str, Any]:
    if tier is not None and tier not in {t.value for t in Tier}:
        raise InvalidInput("tier is district, street or community", code="invalid_query")
    ref = esup.reference
    centers = {c.code: c.attrs for c in ref.units(UnitKind.CENTER)}
    if center is not None and center not in centers:
        raise NotFound(f"no center {center}", code="unknown_center")
    q = MetricsQuery(group_by="center", day_from=day_from, day_to=day_to, departments=departments,
                     satisfied=default_satisfied())
    m = Metrics(esup)
    sums = m._regroup(q, m._sums(q))
    halls = [h for h in ref.units(UnitKind.HALL)]
    windows = ref.units(UnitKind.WINDOW)
    rows = []
    for code, attrs in sorted(centers.items()):
        t = attrs.get("tier")
        if tier and t != tier:
            continue
        own_halls = [h.code for h in halls if h.attrs.get("center") == code]
        items = attrs.get("items") or []
        delegated = [ref.item(i, refresh=False) for i in items]
        row = {"key": code, "name": attrs.get("name"), "tier": t, "tier_label": TIER_LABELS.get(t or ""),
               "parent": attrs.get("parent"), "halls": len(own_halls),
               "windows": sum(1 for w in windows if w.attrs.get("hall") in own_halls), "delegated_items": len(items),
               **compute(sums.get(code, {}), q.satisfied, [d.current for d in delegated if d] if items else None)}
        rows.append(row)
    by_tier: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_tier.setdefault(r["tier"] or "none", []).append(r)
    tiers = []
    for t, group in by_tier.items():
        for rank, r in enumerate(sorted(group, key=_rank_key), 1):
            r["rank"] = rank
        acc: dict[str, float] = {}
        for r in group:
            _add(acc, sums.get(r["key"], {}))
        tiers.append({"tier": t, "label": TIER_LABELS.get(t), "centers": len(group),
                      **compute(acc, q.satisfied, None)})
    order = {"district": 0, "street": 1, "community": 2}
    tiers.sort(key=lambda x: order.get(x["tier"], 9))
    rows.sort(key=lambda r: (order.get(r["tier"], 9), r["rank"]))
    if center is not None:
        rows = [r for r in rows if r["key"] == center]
    return {"from": day_from, "to": day_to, "tiers": tiers, "centers": rows}
