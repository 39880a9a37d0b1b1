"""The annual staff assessment (年终考核): the ranking with suggested grades, the facts behind each
figure, the xlsx workbook for the assessment group, and a full recomputation from the log.

Rules, formula and defaults: domain/assessment.py. Every staff member registered in the
organisation (``PUT /api/v1/staff/{code}``) is assessed, with zeros if the year holds nothing
of theirs; the facts come from the ``assessment`` view (projections/assessment.py).
"""

from __future__ import annotations

import io
from typing import Any, Callable

from domain.assessment import (
    DERIVED,
    FIGURE_ZH,
    FIGURES,
    GRADES,
    AssessmentFold,
    AssessmentPolicy,
    Fact,
    MemoryPort,
    distribution,
    figures_of,
    grade,
)
from domain.errors import InvalidInput
from domain.organisation import UnitKind
from infra.assessment_policy import assessment_policy_from_env
from projections import assessment as view
from projections.store import ViewStore
from infra.logs import notifications_after
from services.reference import ReferenceService

STAFF_KIND_ZH = {"civil_servant": "在编干部", "committee_hired": "管委会聘用", "self_hired": "单位自聘"}


def check_year(year: int) -> int:
    if not 1900 <= year <= 2199:
        raise InvalidInput("year is 1900 to 2199", code="invalid_query")
    return year


class Assessment:
    def __init__(self, ledger: Any, store: ViewStore, runner: Any, reference: ReferenceService,
                 policy: AssessmentPolicy | None = None) -> None:
        self.ledger = ledger
        self.store = store
        self.runner = runner
        self.reference = reference
        self.policy = policy or assessment_policy_from_env()

    def _ranked(self, year: int, rows: dict[str, dict[str, int]]) -> dict[str, Any]:
        staff = {s.code: s.attrs for s in self.reference.units(UnitKind.STAFF)}
        for code in staff:
            rows.setdefault(code, {k: 0 for k in FIGURES})
        ranked = grade(rows, self.policy)
        for r in ranked:
            attrs = staff.get(r["staff"], {})
            r["name"] = attrs.get("name")
            r["department"] = attrs.get("department")
            r["staff_kind"] = attrs.get("staff_kind")
        return {"year": year, "assessed": len(ranked), "quota": self.policy.quota(len(ranked)),
                "distribution": distribution(ranked), "policy": self.policy.as_dict(), "staff": ranked}

    def result(self, year: int) -> dict[str, Any]:
        """The ranking from the view (caught up first)."""
        check_year(year)
        self.runner.catch_up([view.VIEW])
        with self.store.read() as cur:
            rows = view.figures(cur, year)
        return self._ranked(year, rows)

    def facts(self, year: int, staff: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        check_year(year)
        if kind is not None and kind not in FIGURES:
            raise InvalidInput(f"kind is one of {', '.join(FIGURES)}", code="invalid_query")
        self.runner.catch_up([view.VIEW])
        with self.store.read() as cur:
            found = view.facts(cur, year, staff, kind)
        return [{"staff": f.staff, "kind": f.kind, "kind_label": FIGURE_ZH[f.kind], "case_no": f.case_no,
                 "event_ref": f.event_ref, "position": f.position} for f in found]

    def recompute(self, year: int, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """The same ranking from a full pass over the log, without the view (the reference the
        view is checked against)."""
        port = MemoryPort()
        fold = AssessmentFold(port, self.policy.satisfied_scores)
        for n in notifications_after(self.ledger.recorder, 0, view.TOPICS):
            view.apply(fold, self.ledger.mapper.to_domain_event(n), n.id)
            if progress:
                progress(1)
        return self._ranked(year, figures_of(f for f in port.facts.values() if f.year == year))

    def xlsx(self, year: int) -> bytes:
        """Sheet 考核结果: the ranking; sheet 事实明细: every fact behind a count (case or complaint
        number, the source event id or warning id, the log position)."""
        from openpyxl import Workbook

        result = self.result(year)
        wb = Workbook()
        ws = wb.active
        ws.title = "考核结果"
        cols = [("rank", "排名"), ("staff", "工号"), ("name", "姓名"), ("department", "部门"), ("staff_kind", "人员类别"),
                *[(k, FIGURE_ZH[k]) for k in FIGURES + DERIVED], ("score", "效能得分"), ("grade", "建议等次")]
        ws.append([f"{year}年度窗口工作人员效能考核（客观部分）"])
        ws.append([f"考核人数 {result['assessed']}，优秀名额 {result['quota']}："
                   + "，".join(f"{g} {result['distribution'][g]}" for g in GRADES)])
        ws.append([label for _, label in cols])
        for r in result["staff"]:
            ws.append([STAFF_KIND_ZH.get(r.get(k), r.get(k)) if k == "staff_kind" else r.get(k) for k, _ in cols])
        facts = wb.create_sheet("事实明细")
        facts.append(["工号", "指标", "指标名", "办件编号/投诉编号", "事件编号", "日志位置"])
        for f in self.facts(year):
            facts.append([f["staff"], f["kind"], f["kind_label"], f["case_no"], f["event_ref"], f["position"]])
        policy = wb.create_sheet("计分规则")
        policy.append(["参数", "值"])
        for key, value in result["policy"].items():
            if key == "weights":
                for figure, w in value.items():
                    policy.append([f"权重 {figure} {FIGURE_ZH.get(figure, '')}", w])
            else:
                policy.append([key, str(value) if isinstance(value, list) else value])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()


def fact_key(f: Fact) -> tuple[Any, ...]:
    return (f.subject, f.kind, f.staff, f.year, f.case_no, f.event_ref, f.position)
