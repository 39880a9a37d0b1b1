"""``esup demo``'s oversight lines: the yearbook's 2008 oversight figures beside the same figures
computed from the events (notices, problems rectified, mutual-inspection rounds, complaints, the
annual assessment's grade distribution). Printed after the yearbook's table, which stays as it is."""

from __future__ import annotations

import unicodedata
from typing import Any

from domain.assessment import GRADES


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def oversight_rows(esup: Any, year: int = 2008) -> list[tuple[str, str, str]]:
    """(label, the yearbook's figure, the demo's figure from the events)."""
    s = esup.oversight.summary(year)
    c, n = s["complaints"], s["notices"]
    a = esup.assessment.result(year)
    d = a["distribution"]
    return [
        ("督察意见 supervision notices", "20", f"{n['notices']}"),
        ("整改落实问题 problems rectified", "50余项", f"{n['rectified']} / {n['problems']}"),
        ("互查互评 mutual inspection rounds", "4", f"{n['inspection_rounds']}"),
        ("投诉 complaints (属实 substantiated)", "-", f"{c['received']} ({c['substantiated']})"),
        ("考核人数 staff assessed", "115", f"{a['assessed']}"),
        *[(f"{g} {en}", seed, f"{d[g]}") for g, en, seed in zip(
            GRADES, ("excellent", "competent", "basically competent", "incompetent"), ("24", "91", "0", "0"))],
    ]


def print_oversight(esup: Any, year: int = 2008) -> None:
    rows = oversight_rows(esup, year)
    width = max(_cells(label) for label, _, _ in rows)
    print(f"oversight and the annual assessment: {year} (yearbook) and this demo (from the events)")
    print(f"  {' ' * width}  {'2008':>12}  {'demo':>10}")
    for label, seed, demo in rows:
        print(f"  {label}{' ' * (width - _cells(label))}  {seed:>12}  {demo:>10}")
