"""``esup assessment YEAR``: the annual staff assessment (年终考核) from the command line: the grade
distribution and the ranking's head, ``--xlsx PATH`` writes the assessment group's workbook, and
``--check`` recomputes it from the whole log and compares (exit 1 on any difference)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def add_parser(sub: Any, open_esup: Callable[[argparse.Namespace], Any]) -> None:
    p = sub.add_parser("assessment", help="the annual staff assessment (年终考核): grades, xlsx, recomputation check")
    p.add_argument("year", type=int)
    p.add_argument("--xlsx", help="write the workbook (ranking, facts, scoring rules) to this path")
    p.add_argument("--top", type=int, default=10, help="ranking lines to print")
    p.add_argument("--check", action="store_true", help="recompute from the whole log and compare with the view")
    p.set_defaults(func=lambda args: run(args, open_esup))


def run(args: argparse.Namespace, open_esup: Callable[[argparse.Namespace], Any]) -> int:
    esup = open_esup(args)
    try:
        result = esup.assessment.result(args.year)
        d = result["distribution"]
        print(f"{args.year}: {result['assessed']} staff assessed, 优秀 quota {result['quota']}: "
              + ", ".join(f"{g} {n}" for g, n in d.items()))
        for r in result["staff"][:args.top]:
            print(f"  {r['rank']:>3}  {r['staff']:<8} {r.get('name') or '':<6} {r['score']:>7.2f}  {r['grade']}  "
                  f"办结 {r['handled']} 超时 {r['overdue']} 预警 {r['cards']} 异常 {r['anomaly']} "
                  f"属实投诉 {r['complaint_substantiated']} 满意率 {r['satisfaction_rate']}")
        if args.xlsx:
            with open(args.xlsx, "wb") as f:
                f.write(esup.assessment.xlsx(args.year))
            print(f"workbook: {args.xlsx}")
        if args.check:
            again = esup.assessment.recompute(args.year)
            if again != result:
                print("the view and a recomputation from the log differ", file=sys.stderr)
                return 1
            print("recomputed from the whole log: identical")
        return 0
    finally:
        esup.close()
