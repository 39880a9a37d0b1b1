"""How long a draw and a redraw take against a raw read of the same log (SQLite).

    python -m tools.bench_audits [--cases 5000]

A draw issues a checkpoint, folds the log up to it into the population and draws; a redraw folds
it again and recomputes the tree root. Both are linear in the log: the ratio to a raw page-by-page
read of the notification log (no decoding) is what to watch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=5000)
    args = parser.parse_args()
    from domain.access import Role
    from domain.calendar import CHINA_TZ
    from domain.clock import ManualClock
    from domain.organisation import UnitKind
    from infra.settings import Settings
    from services.ingest import Principal
    from services.system import Esup

    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(datetime(2008, 12, 31, 12, tzinfo=CHINA_TZ))
        esup = Esup.open(Settings(data_dir=Path(tmp)), clock)
        esup.reference.put_unit(UnitKind.DEPARTMENT, "GS", {"name": "工商局"})
        esup.reference.put_item("GS-001", {"name": "企业设立登记", "department": "GS", "kind": "licence",
                                           "legal_limit": {"value": 20, "unit": "working_days"},
                                           "promised_limit": {"value": 5, "unit": "working_days"}, "fee": 50})
        start = datetime(2008, 10, 6, 9, tzinfo=CHINA_TZ)
        steps = []
        for i in range(args.cases):
            t = start + timedelta(minutes=i % 400, days=i % 40)
            no = f"B{i:07d}"
            steps += [{"event_id": f"{no}-s", "case_no": no, "step": "submitted", "occurred_at": t.isoformat(),
                       "department": "GS", "item_code": "GS-001"},
                      {"event_id": f"{no}-a", "case_no": no, "step": "accepted", "department": "GS",
                       "occurred_at": (t + timedelta(minutes=5)).isoformat()},
                      {"event_id": f"{no}-c", "case_no": no, "step": "concluded", "department": "GS",
                       "occurred_at": (t + timedelta(hours=2)).isoformat(), "data": {"result": "issued"}}]
        for i in range(0, len(steps), 999):
            esup.ingest.report(steps[i:i + 999])
        events = len(steps)
        t0 = time.perf_counter()
        n = 0
        from infra.logs import notifications_after

        for _ in notifications_after(esup.ledger.recorder, 0):
            n += 1
        raw = time.perf_counter() - t0
        lead = Principal(Role.OFFICER, frozenset(), "bench")
        a = esup.audits.plan({"title": "bench", "population": {"from": "2008-01-01", "to": "2008-12-31"},
                              "design": {"method": "weighted"}}, lead)
        t0 = time.perf_counter()
        drawn = esup.audits.draw(a["id"], "bench seed", lead)
        draw = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = esup.audits.redraw(drawn["draw"]["id"])
        redraw = time.perf_counter() - t0
        assert again["matches"]
        print(f"{args.cases} cases, {events} case events ({n} notifications)")
        print(f"  raw read of the log      {raw:8.3f} s")
        print(f"  draw (checkpoint, fold)  {draw:8.3f} s  ({draw / raw:.1f}x raw; population {drawn['population']['size']},"
              f" sample {len(drawn['draw']['sample'])})")
        print(f"  redraw (fold, root)      {redraw:8.3f} s  ({redraw / raw:.1f}x raw)")
        esup.close()


if __name__ == "__main__":
    main()
