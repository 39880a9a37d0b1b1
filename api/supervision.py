"""Routes for anomalies (异常) and performance figures (绩效).

``GET /api/v1/anomalies``, ``GET /api/v1/anomalies/rules``, ``GET /api/v1/metrics`` (JSON, CSV
with a UTF-8 BOM for Excel, or xlsx). Department keys see their own departments only.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response

from domain.access import Principal
from domain.errors import InvalidInput
from projections.anomalies import AnomalyView
from services.anomalies import AnomalyFilter, list_anomalies, parse_bound, parse_type, rules
from services.metrics import COLUMNS, GROUPS, Metrics, MetricsQuery, default_satisfied, parse_day, parse_scores

STATUSES = ("open", "cleared")


def _departments(p: Principal, requested: str | None) -> frozenset[str] | None:
    return p.scope(requested)


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    view: AnomalyView = esup.runner.view(AnomalyView.name)  # type: ignore[assignment]
    metrics = Metrics(esup)

    def after_commit(name: str, position: int) -> None:
        # Time passing is checked whenever the view is level with the log (never mid-rebuild,
        # where a pending case's later steps are still to come).
        if name == AnomalyView.name and position >= esup.runner.head():
            view.sweep(esup.clock.now())

    esup.runner.listeners.append(after_commit)

    @app.get("/api/v1/anomalies", tags=["supervision"])
    def get_anomalies(
        type: str | None = Query(None, description="time 时效, procedure 流程, content 内容, discretion 裁量, risk 风险防控, escalation 督办"),
        rule: str | None = None,
        status: str | None = Query(None, description="open or cleared"),
        department: str | None = None,
        case_no: str | None = None,
        from_: str | None = Query(None, alias="from", description="date or instant: anomalies that occurred from then"),
        to: str | None = Query(None, description="date (inclusive) or instant"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, lt=2**31),
        p: Principal = Depends(deps.principal),
    ) -> Any:
        if status is not None and status not in STATUSES:
            raise InvalidInput("status must be open or cleared", code="invalid_field")
        f = AnomalyFilter(
            type=parse_type(type), rule=rule, status=status, departments=_departments(p, department), case_no=case_no,
            occurred_from=parse_bound(from_, "from", end=False), occurred_to=parse_bound(to, "to", end=True),
            limit=limit, offset=offset,
        )
        return {"position": esup.runner.position(AnomalyView.name), **list_anomalies(esup, f)}

    @app.get("/api/v1/anomalies/rules", tags=["supervision"])
    def get_rules(p: Principal = Depends(deps.principal)) -> Any:
        return rules(view)

    @app.get("/api/v1/metrics", tags=["supervision"])
    def get_metrics(
        group_by: str = Query("center", description="|".join(GROUPS)),
        from_: str | None = Query(None, alias="from", description="first day (YYYY-MM-DD)"),
        to: str | None = Query(None, description="last day, inclusive"),
        format: str = Query("json", description="json, csv or xlsx"),
        satisfied: str | None = Query(None, description="scores counted as satisfied, e.g. 1,2 (default 1,2,3)"),
        department: str | None = None,
        p: Principal = Depends(deps.principal),
    ) -> Any:
        if group_by not in GROUPS:
            raise InvalidInput(f"group_by must be one of {', '.join(GROUPS)}", code="invalid_field")
        if format not in ("json", "csv", "xlsx"):
            raise InvalidInput("format must be json, csv or xlsx", code="invalid_field")
        q = MetricsQuery(group_by=group_by, day_from=parse_day(from_, "from"), day_to=parse_day(to, "to"),
                         departments=_departments(p, department),
                         satisfied=parse_scores(satisfied) if satisfied else default_satisfied())
        result = metrics.figures(q)
        if format == "json":
            return result
        table = _table(result)
        name = f"esup-metrics-{group_by}-{q.day_from or 'start'}-{q.day_to or 'now'}"
        if format == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerows(table)
            return Response(("\ufeff" + buf.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
        return Response(_xlsx(table, result), headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _table(result: dict[str, Any]) -> list[list[Any]]:
    header = [f"{result['group_by']}", "名称 name", *(f"{zh} {key}" for key, zh in COLUMNS)]
    rows = [header]
    for r in [*result["rows"], result["total"]]:
        rows.append([r["key"] if r["key"] is not None else "", r["name"] or "", *(r[key] for key, _ in COLUMNS)])
    return rows


def _xlsx(table: list[list[Any]], result: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = f"绩效 {result['group_by']}"[:31]
    for row in table:
        ws.append([v if v is not None else None for v in row])
    ws.freeze_panes = "C2"
    notes = wb.create_sheet("说明 notes")
    notes.append(["from", result["from"] or ""])
    notes.append(["to", result["to"] or ""])
    notes.append(["catalogue_on", result["catalogue_on"]])
    notes.append(["satisfied_scores", ",".join(map(str, result["satisfied_scores"]))])
    for k, v in result["notes"].items():
        notes.append([k, v])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
