"""``esup demo``'s parallel-approval channels and three tiers (services/demo_channels.py): the
options, the build, and the channel figures printed beside the yearbook's table."""

from __future__ import annotations

import argparse
import unicodedata
from typing import Any


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", action=argparse.BooleanOptionalAction, default=True,
                   help="also the parallel-approval channels' 2008 bundles and the three tiers' centers (default)")
    p.add_argument("--channel-scale", type=float, default=1.0,
                   help="share of the seed's channel volumes to build (default 1: 1,566 enterprises, 295 projects)")
    p.add_argument("--tier-cases", type=int, default=800, help="2008 cases at the street and community centers")


def build(esup: Any, clock: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from services.demo_channels import SEED_CHANNELS, ingest_channels_and_tiers

    s = args.channel_scale
    total = int((SEED_CHANNELS["enterprises_set_up"] * 4 * 2.5 + SEED_CHANNELS["project_items"] * 5) * s
                + args.tier_cases * 4.5)
    with tqdm(total=total, unit="step", desc="ingesting the channels and tiers", disable=args.quiet) as bar:
        out = ingest_channels_and_tiers(esup, clock, scale=s, tier_cases=args.tier_cases, seed=args.seed,
                                        progress=bar.update)
    return out


def print_channel_table(esup: Any, built: dict[str, Any] | None = None) -> None:
    from services.demo_channels import channel_table

    def cells(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    rows = channel_table(esup)
    width = max(cells(label) for label, _, _ in rows)
    print("parallel approval (并联审批), 2008 to the end of November: the yearbook and this demo (from the events)")
    print(f"  {' ' * width}  {'2008':>14}  {'demo':>10}")
    for label, seed, demo in rows:
        pad = 14 - cells(seed) + len(seed)
        print(f"  {label}{' ' * (width - cells(label))}  {seed:>{pad}}  {demo:>{10 - cells(demo) + len(demo)}}")
    if built and built.get("tiers"):
        t = built["tiers"]
        print(f"three tiers (三级政务): {t['district']} district center, {t['street']} street centers, "
              f"{t['community']} community centers, {t['halls']} halls in all ({t['windows']} more windows); "
              "GET /api/v1/metrics/centers ranks them")
