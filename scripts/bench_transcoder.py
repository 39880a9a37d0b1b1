"""Tiny benchmark: JSONTranscoder vs OrjsonTranscoder, encode+decode of one event's state.

    .venv/bin/python scripts/bench_transcoder.py [--seconds 2]

The event dict is what ``Mapper.to_stored_event`` hands the transcoder (the event's
``__dict__`` minus originator id/version): string fields, two datetimes, a UUID, a
Decimal and a nested dict of five keys.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import (  # noqa: E402
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    UUIDAsHex,
)

from infra.transcoder import DateAsISO, OrjsonTranscoder  # noqa: E402

_T0 = datetime(2024, 5, 6, 9, 30, 12, 345678, tzinfo=timezone.utc)

EVENT = {
    "timestamp": _T0,
    "case_no": "ZJ-HZ-2024-0001234",
    "item_name": "建设工程规划许可证核发",
    "applicant": "杭州某某科技有限公司",
    "department": "市规划和自然资源局",
    "stage": "accepted",
    "officer_id": UUID("b2723fe2-c01a-40d2-875e-a3aac6a09ff5"),
    "due_at": _T0 + timedelta(days=20),
    "fee": Decimal("1250.00"),
    "details": {
        "channel": "online",
        "window": "A-12",
        "materials": 7,
        "urgent": False,
        "remark": "材料齐全，当场受理",
    },
}


def json_transcoder() -> JSONTranscoder:
    """Configured the way ``Application.register_transcodings`` does (plus dates)."""
    t = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        t.register(transcoding)
    return t


def rate(transcoder: Transcoder, seconds: float) -> float:
    """Events per second, one encode + one decode per event (best of 3 runs)."""
    encode, decode, event = transcoder.encode, transcoder.decode, EVENT
    assert decode(encode(event)) == event
    batch = 2000
    best = 0.0
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(batch):
                decode(encode(event))
            n += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per transcoder")
    args = parser.parse_args()

    j, o = json_transcoder(), OrjsonTranscoder()
    assert j.decode(o.encode(EVENT)) == EVENT and o.decode(j.encode(EVENT)) == EVENT
    print(f"state size: {len(o.encode(EVENT))} bytes (same bytes: {o.encode(EVENT) == j.encode(EVENT)})")
    json_rate = rate(j, args.seconds)
    orjson_rate = rate(o, args.seconds)
    print(f"JSONTranscoder   {json_rate:>10,.0f} events/s  encode+decode  ({1e6 / json_rate:.2f} us/event)")
    print(f"OrjsonTranscoder {orjson_rate:>10,.0f} events/s  encode+decode  ({1e6 / orjson_rate:.2f} us/event)")
    print(f"ratio (orjson / json): {orjson_rate / json_rate:.2f}x")


if __name__ == "__main__":
    main()
