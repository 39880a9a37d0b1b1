"""An audit's report (抽查报告): printable HTML, PDF (reportlab, its built-in CJK font
STSong-Light: nothing downloaded, nothing embedded) and an xlsx workbook. Each carries the
draw's proof: the seed, the checkpoint (size, root, signed note), the method and the population
digest, so a reader can redo the draw (``esup audit redraw DRAW_ID``)."""

from __future__ import annotations

import html
import io
from datetime import datetime
from fractions import Fraction
from typing import Any

from domain.calendar import CHINA_TZ

STATE_ZH = {"planned": "已计划", "drawn": "已抽取", "assigned": "已分派", "closed": "已结束"}
RESULT_ZH = {"conforming": "符合", "deviation": "偏差"}


def _when(v: Any) -> str:
    if isinstance(v, datetime):
        return v.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
    return "" if v is None else str(v)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def proof_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    draw, pop = a.get("draw") or {}, a.get("population") or {}
    cp = pop.get("checkpoint") or {}
    return [
        ("抽取编号 draw id", draw.get("id", "")),
        ("随机种子 seed (announced)", draw.get("seed", "")),
        ("方法 method", f"{draw.get('method', '')}; design {draw.get('design', {})}"),
        ("检查点 checkpoint size", str(cp.get("size", ""))),
        ("检查点根 checkpoint root", cp.get("root", "")),
        ("检查点位置 log position", str(cp.get("position", ""))),
        ("总体数 population", str(pop.get("size", ""))),
        ("总体摘要 population digest (SHA-256)", pop.get("digest", "")),
        ("总体推导 derivation", pop.get("derivation", "")),
        ("复核 redraw", f"esup audit redraw {draw.get('id', '')}  /  GET /api/v1/audits/draws/{draw.get('id', '')}/redraw"),
    ]


def result_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    r = a.get("results")
    s = a.get("sampling", {})
    rows = [("置信度 confidence", _pct(float(Fraction(s.get("confidence", "0.95"))))),
            ("可容忍偏差率 tolerable", _pct(float(Fraction(s.get("tolerable", "0.05"))))),
            ("预计偏差率 expected", _pct(float(Fraction(s.get("expected", "0"))))),
            ("样本量 sample size", str(len((a.get("draw") or {}).get("sample", []))))]
    if r:
        rows += [("偏差数 deviations", str(r["deviations"])), ("样本偏差率 sample rate", _pct(r["rate"])),
                 ("偏差率上限 upper limit", _pct(r["upper_limit"])),
                 ("超过可容忍 exceeds tolerable", "是 yes" if r["exceeds_tolerable"] else "否 no"),
                 ("加权估计 weighted (Horvitz–Thompson)", _pct(r["weighted_estimate"]))]
    return rows


def case_rows(a: dict[str, Any]) -> list[list[str]]:
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in a.get("findings", []):
        findings.setdefault(f["case_no"], []).append(f)
    rows = []
    for c in a.get("cases", []):
        fs = findings.get(c["case_no"], [])
        text = "; ".join(
            f"{f['reviewer']}: " + ", ".join(
                f"{code} {RESULT_ZH[p['result']]}" + (f" ({p['note']})" if p.get("note") else "")
                for code, p in f["points"].items() if p["result"] == "deviation") or f"{f['reviewer']}: 全部符合"
            for f in fs)
        rows.append([c["case_no"], c["department"], c["item_code"], c.get("item_kind", ""),
                     ",".join(c.get("risks", [])), f"{float(Fraction(c['probability'])):.4f}",
                     ", ".join(a.get("assignments", {}).get(c["case_no"], [])), text or "-"])
    return rows


CASE_HEAD = ["办件编号 case", "部门 dept", "事项 item", "类别 kind", "风险 risks", "入样概率 π", "审查人 reviewers",
             "发现 findings"]


def render_html(a: dict[str, Any]) -> bytes:
    e = html.escape
    strata = (a.get("results") or {}).get("strata") or [
        {"key": s["key"], "population": s["population"], "n": s["n"]} for s in (a.get("draw") or {}).get("strata", [])]
    parts = [
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>",
        f"<title>抽查报告 {e(a['title'])}</title>",
        "<style>body{font-family:'Noto Sans CJK SC','Source Han Sans SC',sans-serif;margin:2em;color:#111}"
        "table{border-collapse:collapse;margin:1em 0;width:100%}td,th{border:1px solid #999;padding:4px 6px;"
        "font-size:12px;vertical-align:top;text-align:left}th{background:#eee}code{font-size:11px;word-break:break-all}"
        "pre{font-size:11px;background:#f6f6f6;padding:6px;white-space:pre-wrap}@media print{body{margin:0}}</style>",
        "</head><body>",
        f"<h1>抽查报告 Audit report: {e(a['title'])}</h1>",
        f"<p>状态 {e(STATE_ZH.get(a['state'], a['state']))} · 计划 {e(_when(a.get('planned_at')))}"
        f" · 结束 {e(_when(a.get('closed_at')))} · id <code>{e(a['id'])}</code></p>",
        "<h2>总体 Population</h2><p>" + e(str(a.get("population_criteria"))) + "</p>",
        "<h2>结论 Results</h2><table>",
        *[f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in result_rows(a)],
        "</table>",
    ]
    if strata:
        parts += ["<h3>分层 Strata</h3><table><tr><th>层 stratum</th><th>总体 N</th><th>样本 n</th><th>偏差 deviations</th>"
                  "<th>偏差率 rate</th></tr>"]
        parts += [f"<tr><td>{e(str(s['key']))}</td><td>{s.get('population', '')}</td><td>{s.get('n', '')}</td>"
                  f"<td>{s.get('deviations', '')}</td><td>{_pct(s.get('rate')) if 'rate' in s else ''}</td></tr>"
                  for s in strata]
        parts.append("</table>")
    parts += ["<h2>样本与发现 Sample and findings</h2><table class=cases><tr>",
              *[f"<th>{e(h)}</th>" for h in CASE_HEAD], "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>" for row in case_rows(a)]
    parts += ["</table>", "<h2>抽取证明 Proof of the draw</h2><table>",
              *[f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in proof_rows(a)], "</table>"]
    note = ((a.get("population") or {}).get("checkpoint") or {}).get("note")
    if note:
        parts.append(f"<h3>签名检查点 Signed checkpoint</h3><pre>{e(note)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts).encode()


def render_xlsx(a: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "结论 results"
    ws.append(["抽查 audit", a["title"]])
    ws.append(["状态 state", a["state"]])
    for k, v in result_rows(a):
        ws.append([k, v])
    for s in (a.get("results") or {}).get("strata", []):
        ws.append([f"层 {s['key']}", s.get("population"), s["n"], s["deviations"], s["rate"]])
    cs = wb.create_sheet("样本 sample")
    cs.append(CASE_HEAD)
    for row in case_rows(a):
        cs.append(row)
    fs = wb.create_sheet("发现 findings")
    fs.append(["办件编号 case", "审查人 reviewer", "要点 point", "结果 result", "说明 note", "记录 recorded"])
    for f in a.get("findings", []):
        for code, p in f["points"].items():
            fs.append([f["case_no"], f["reviewer"], code, p["result"], p.get("note") or "", _when(f.get("recorded_at"))])
    ps = wb.create_sheet("证明 proof")
    for k, v in proof_rows(a):
        ps.append([k, v])
    note = ((a.get("population") or {}).get("checkpoint") or {}).get("note")
    if note:
        ps.append(["签名检查点 signed checkpoint", note])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render_pdf(a: dict[str, Any]) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    body = ParagraphStyle("body", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    h1 = ParagraphStyle("h1", fontName=font, fontSize=15, leading=19, spaceAfter=6)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)

    def P(text: Any) -> Paragraph:
        return Paragraph(html.escape(str(text)).replace("\n", "<br/>"), body)

    def table(rows: list[list[Any]], widths: list[float] | None = None, head: bool = False) -> Table:
        t = Table([[P(x) for x in r] for r in rows], colWidths=widths, repeatRows=1 if head else 0)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
                              + ([("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)] if head else [])))
        return t

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), title=f"抽查报告 {a['title']}", leftMargin=28, rightMargin=28,
                            topMargin=28, bottomMargin=28)
    story: list[Any] = [Paragraph(html.escape(f"抽查报告 Audit report: {a['title']}"), h1),
                        P(f"状态 {STATE_ZH.get(a['state'], a['state'])} · 计划 {_when(a.get('planned_at'))} · "
                          f"结束 {_when(a.get('closed_at'))} · id {a['id']}"),
                        Paragraph("结论 Results", h2), table([list(r) for r in result_rows(a)], [220, 300])]
    strata = (a.get("results") or {}).get("strata") or []
    if strata:
        story += [Paragraph("分层 Strata", h2), table([["层", "N", "n", "偏差", "偏差率"]] + [
            [s["key"], s.get("population", ""), s["n"], s["deviations"], _pct(s["rate"])] for s in strata], head=True)]
    story += [Paragraph("样本与发现 Sample and findings", h2),
              table([CASE_HEAD] + case_rows(a), [80, 40, 55, 55, 70, 50, 110, 320], head=True),
              Spacer(1, 6), Paragraph("抽取证明 Proof of the draw", h2), table([list(r) for r in proof_rows(a)], [190, 590])]
    note = ((a.get("population") or {}).get("checkpoint") or {}).get("note")
    if note:
        story += [Paragraph("签名检查点 Signed checkpoint", h2), P(note)]
    doc.build(story)
    return out.getvalue()


def render(summary: dict[str, Any], format: str) -> bytes:
    return {"html": render_html, "xlsx": render_xlsx, "pdf": render_pdf}[format](summary)
