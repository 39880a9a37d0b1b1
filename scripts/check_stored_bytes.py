"""Stored bytes before and after a change: ingest the demo and compare every stored row.

    .venv/bin/python scripts/check_stored_bytes.py save      # on the code before the change
    .venv/bin/python scripts/check_stored_bytes.py compare   # after it: IDENTICAL, or the rows that differ

The demo district and its first ``--cases`` cases (``services.demo.ingest_demo``, fixed seed) go
into a fresh SQLite store; the ledger's and the reference store's rows (originator_id,
originator_version, topic, state) are kept in ``--file`` and compared byte for byte. Sealing an
applicant draws a random nonce, so this script (only) draws the nonces from a seeded generator,
and uses a fixed personal-data key: the same code then stores the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import sqlite3
import sys
import tempfile
import types
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def stored_rows(cases: int) -> dict[str, list[tuple]]:
    import infra.pii

    rng = random.Random(12345)
    infra.pii.os = types.SimpleNamespace(urandom=rng.randbytes)  # seeded nonces: this check only
    from domain.clock import ManualClock
    from infra.settings import Settings
    from services.demo import ingest_demo
    from services.system import Esup

    with tempfile.TemporaryDirectory() as d:
        clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
        esup = Esup.open(Settings(data_dir=Path(d), pii_key=b"k" * 32), clock)
        try:
            ingest_demo(esup, clock, cases)
        finally:
            esup.close()
        out = {}
        for name in ("ledger", "reference"):
            con = sqlite3.connect(Path(d) / f"{name}.sqlite")
            out[name] = con.execute(
                "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid").fetchall()
            con.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["save", "compare"])
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--file", type=Path, help="where the rows are kept (default: the temp dir, per case count)")
    args = p.parse_args()
    path = args.file or Path(tempfile.gettempdir()) / f"esup-stored-bytes-{args.cases}.pkl"
    rows = stored_rows(args.cases)
    print(f"ledger {len(rows['ledger'])} rows, reference {len(rows['reference'])} rows, "
          f"sha256 {hashlib.sha256(pickle.dumps(rows)).hexdigest()[:16]}")
    if args.mode == "save":
        path.write_bytes(pickle.dumps(rows))
        print(f"kept in {path}")
        return 0
    kept = pickle.loads(path.read_bytes())
    bad = 0
    for name, now in rows.items():
        before = kept[name]
        if len(before) != len(now):
            print(f"{name}: {len(before)} rows before, {len(now)} now")
            bad += 1
        for i, (a, b) in enumerate(zip(before, now)):
            if a != b:
                bad += 1
                if bad <= 3:
                    print(f"{name} row {i}:\n  before {a!r}\n  now    {b!r}")
    print("IDENTICAL" if not bad else f"DIFFERENT ({bad})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
