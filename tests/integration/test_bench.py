"""The ingest benchmark, as an operator runs it: every figure it prints is measured in that run,
and the ceiling it reports bounds what the app could reach with its stored format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_reports_the_ratio_and_the_codec_ceiling_of_one_run():
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--cases", "60", "--stores", "sqlite", "--raw-repeats", "1",
         "--quiet", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    doc = json.loads(out.stdout)
    x = doc["results"]["sqlite"]
    c = x["codec_floor"]
    assert x["events"] == 2 * x["steps"] > 0  # each step: its case event and its idempotency record
    assert c["hashed"] == x["steps"]  # one chain body per case event
    assert c["encode_seconds"] > 0 and c["hash_seconds"] > 0
    # raw ÷ (raw + encode + hash), each figure given to 4 decimals: the ceiling lies between the
    # formula's ends over those roundings (themselves rounded).
    raw, enc, hsh, d = x["raw"]["seconds"], c["encode_seconds"], c["hash_seconds"], 5e-5
    low = (raw - d) / ((raw - d) + (enc + d) + (hsh + d))
    high = (raw + d) / ((raw + d) + max(enc - d, 0) + max(hsh - d, 0))
    assert low - d <= c["ceiling"] <= high + d
    assert 0 < c["ceiling"] < 1
    assert f"ceiling {c['ceiling']:.3f}" in out.stderr and f"ratio {x['ratio']:.3f}" in out.stderr
