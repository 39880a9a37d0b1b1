"""``esup``: serve the API, build the demo district, read a case, manage keys, verify chains."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path


def _settings(args: argparse.Namespace):
    from infra.settings import Settings

    if getattr(args, "data_dir", None):
        os.environ["ESUP_DATA_DIR"] = str(args.data_dir)
    return Settings.from_env()


def _open(args: argparse.Namespace, clock=None):
    from services.system import Esup

    return Esup.open(_settings(args), clock)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    esup = _open(args)
    print(f"esup: serving on http://{args.host}:{args.port}/ (API docs at /docs), store: {esup.settings.store}"
          + (f" in {esup.settings.data_dir.resolve()}" if esup.settings.store == "sqlite" else ""), flush=True)
    esup.start_background()
    hall = None
    if args.live_demo:
        from services.live_demo import LiveHall

        hall = LiveHall(esup, esup.clock, rate=args.live_rate, seed=args.live_seed)
        hall.start()
        print(f"esup: live demo on: the district reports about {args.live_rate:g} cases a working day "
              "(outside office hours the hall is treated as open)", flush=True)
    try:
        uvicorn.run(create_app(esup), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        if hall is not None:
            hall.stop()  # before the stores close under it
        esup.close()
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild views from the start of the log (or, with --resume, continue where they stopped)."""
    from tqdm import tqdm

    esup = _open(args)
    runner = esup.runner
    runner.batch = args.batch
    names = [runner.view(n).name for n in args.views] or list(runner.views)
    head = runner.head()
    for name in names:
        start = runner.position(name) if args.resume else 0
        with tqdm(total=max(0, head - start), unit="event", desc=f"{'resuming' if args.resume else 'rebuilding'} {name}",
                  disable=args.quiet) as bar:
            if args.resume:
                runner.catch_up([name], progress=bar.update)
            else:
                runner.rebuild([name], progress=bar.update)
    print(f"views {', '.join(names)} at position {head} of the ledger")
    esup.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from domain.calendar import CHINA_TZ
    from domain.clock import ManualClock
    from services.demo import ingest_demo
    from services.figures import headline

    clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
    esup = _open(args, clock)
    if esup.ledger.recorder.max_notification_id() and not args.add:
        print(f"esup demo: the store already holds a ledger ({esup.settings.data_dir}); use --add to add more, "
              "or point ESUP_DATA_DIR at an empty directory.", file=sys.stderr)
        print_headline(headline(esup.ledger))
        print_seed_table(esup)
        return 0
    # Roughly 5.4 steps per case; the bar counts steps.
    with tqdm(total=int(args.cases * 5.4), unit="step", desc="ingesting 2008", disable=args.quiet) as bar:
        figures, steps = ingest_demo(esup, clock, args.cases, seed=args.seed, progress=bar.update)
        bar.total = steps
        bar.refresh()
    print(f"demo district: {figures.departments} departments, {figures.windows} windows, {figures.staff} staff, "
          f"{figures.items} items ({figures.on_the_spot_items} on the spot, "
          f"即办件比例 {100 * figures.on_the_spot_items / figures.items:.1f}%)")
    print_headline(headline(esup.ledger))
    print_seed_table(esup)
    if args.live:
        from services.live_demo import recent_history

        now = datetime.now(timezone.utc)
        with tqdm(total=int(args.recent_days * args.recent_per_day * 4.5), unit="step", disable=args.quiet,
                  desc=f"ingesting the last {args.recent_days} working days") as bar:
            steps = recent_history(esup, clock, now, days=args.recent_days, per_day=args.recent_per_day,
                                   seed=args.seed, progress=bar.update)
        esup.runner.catch_up()
        print(f"live hall: {steps} steps of the last {args.recent_days} working days and today up to "
              f"{now.astimezone(CHINA_TZ):%H:%M} (China time); `esup serve --live-demo` keeps it reporting")
    esup.close()
    return 0


def print_seed_table(esup) -> None:
    """The seed's figures next to the same figures from the performance view (绩效)."""
    from projections.registry import bind_supervision_views
    from services.metrics import seed_table

    bind_supervision_views(esup)
    esup.runner.catch_up()
    import unicodedata

    def cells(text: str) -> int:  # terminal columns: CJK characters take two
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    rows = seed_table(esup)
    width = max(cells(label) for label, _, _ in rows)
    print("the seed's table: 2008 (yearbook) and this demo (from the performance view)")
    print(f"  {' ' * width}  {'2008':>12}  {'demo':>10}")
    for label, seed, demo in rows:
        print(f"  {label}{' ' * (width - cells(label))}  {seed:>12}  {demo:>10}")


def print_headline(h: dict) -> None:
    rows = [
        ("办件量 volume", h["volume"]), ("事件 events", h["events"]), ("办结 concluded", h["concluded"]),
        ("当场办结率 on-the-spot completion", f"{h['on_the_spot_completion_rate']}%"),
        ("按时办结率 on-time rate", f"{h['on_time_rate']}%"), ("超时件 overdue", h["overdue"]),
        ("承诺提速率 promised speed-up", f"{h['promised_speed_up']}%"),
        ("满意率 satisfaction", f"{h['satisfaction_rate']}%"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")


def cmd_case(args: argparse.Namespace) -> int:
    from domain.steps import parse_instant

    esup = _open(args)
    if args.as_of:
        instant = parse_instant(args.as_of, "--as-of")
        case = esup.cases.as_of(args.case_no, instant, args.by)
        events = esup.cases.events_as_of(args.case_no, instant, args.by)
    else:
        case = esup.cases.current(args.case_no)
        events = esup.cases.events(args.case_no)
    print(f"case {case.case_no}  item {case.item_code}  status {case.status}  version {case.version}")
    print(f"  accepted {case.accepted_at}  promised due {case.promised_due_at}  legal due {case.legal_due_at}")
    if case.concluded_at:
        print(f"  concluded {case.concluded_at}  on time: {case.on_time}")
    for e in events:
        flags = ", ".join(f["code"] for f in e.flags)
        print(f"  v{e.originator_version:<3} {e.STEP.value:<21} occurred {e.occurred_at.isoformat()}  "
              f"recorded {e.timestamp.isoformat()}  {e.hash[:12]}" + (f"  ⚑ {flags}" if flags else ""))
    verdict = esup.cases.verify(args.case_no)
    print(f"  hash chain: {'verified' if verdict['verified'] else 'BROKEN at v' + str(verdict['first_bad_version'])}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    esup = _open(args)
    if args.keys_cmd == "create":
        key = esup.access.create(args.role, args.department or [], args.label)
        print(f"created a {args.role} key" + (f" for {', '.join(args.department)}" if args.department else "")
              + "; it is shown once, store it now:")
        print(key)
    elif args.keys_cmd == "list":
        for k in esup.access.list():
            print(f"{k['id']}  {k['role']:<10} {','.join(k['departments']) or '-':<20} "
                  f"{'revoked' if k['revoked'] else 'active'}  {k['label'] or ''}")
    elif args.keys_cmd == "revoke":
        esup.access.revoke(args.id)
        print(f"revoked {args.id}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Rebuild every case from its events and verify its hash chain."""
    from tqdm import tqdm

    from domain.case import verify_chain

    esup = _open(args)
    seen, broken = set(), []
    head = esup.ledger.recorder.max_notification_id() or 0
    start = 0
    with tqdm(total=head, unit="event", desc="verifying", disable=args.quiet) as bar:
        while True:
            batch = esup.ledger.recorder.select_notifications(start=start, limit=2000, topics=["esup.case:Case.Submitted"], inclusive_of_start=False)
            if not batch:
                break
            for n in batch:
                if n.originator_id in seen:
                    continue
                seen.add(n.originator_id)
                events = list(esup.ledger.events.get(n.originator_id))
                bad = verify_chain(events[0].case_no, events)  # type: ignore[attr-defined]
                if bad is not None:
                    broken.append((events[0].case_no, bad))  # type: ignore[attr-defined]
            bar.update(batch[-1].id - start)
            start = batch[-1].id
    print(f"{len(seen)} cases verified, {len(broken)} broken chains")
    for case_no, v in broken[:20]:
        print(f"  {case_no}: first bad event v{v}")
    return 1 if broken else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tools.bench import main as bench

    return bench(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esup", description="Event-sourced e-supervision of administrative approvals.")
    parser.add_argument("--data-dir", type=Path, help="embedded store directory (default $ESUP_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("serve", help="serve the HTTP API and dashboard")
    p.add_argument("--host", default=os.environ.get("ESUP_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("ESUP_PORT", "8000")))
    p.add_argument("--log-level", default="info")
    p.add_argument("--live-demo", action="store_true",
                   help="keep the demo district reporting steps in real time (services/live_demo.py)")
    p.add_argument("--live-rate", type=float, default=5300,
                   help="live demo: cases a working day (default 5300, the seed's center: 1.33 million a year)")
    p.add_argument("--live-seed", type=int, default=None, help="live demo: random seed (default: a fresh one)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="build the demo district (2008, from the yearbook's figures)")
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--seed", type=int, default=2008)
    p.add_argument("--add", action="store_true", help="add to a store that already holds data")
    p.add_argument("--live", action=argparse.BooleanOptionalAction, default=True,
                   help="after 2008, also the last working days up to now, for `esup serve --live-demo` (default)")
    p.add_argument("--recent-days", type=int, default=8, help="working days before today the live demo starts with")
    p.add_argument("--recent-per-day", type=int, default=400, help="cases a day in those days")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("case", help="print a case's timeline")
    p.add_argument("case_no")
    p.add_argument("--as-of", help="an instant (ISO 8601 with offset)")
    p.add_argument("--by", choices=["recorded", "occurred"], default="recorded")
    p.set_defaults(func=cmd_case)

    p = sub.add_parser("keys", help="API keys")
    ks = p.add_subparsers(dest="keys_cmd", required=True)
    k = ks.add_parser("create")
    k.add_argument("--role", required=True, choices=["department", "officer", "province", "admin"])
    k.add_argument("--department", action="append", help="department code (department keys; repeatable)")
    k.add_argument("--label")
    ks.add_parser("list")
    k = ks.add_parser("revoke")
    k.add_argument("id")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("rebuild", help="rebuild views (projections) from the ledger's log")
    p.add_argument("views", nargs="*", help="view names (default: all)")
    p.add_argument("--resume", action="store_true", help="continue from each view's committed position")
    p.add_argument("--batch", type=int, default=1000, help="events per transaction")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("verify", help="rebuild every case and verify its hash chain")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("bench", help="ingest throughput as ratios to a raw-insert floor measured in the same run")
    from tools.bench import add_arguments as bench_arguments

    bench_arguments(p)
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    from domain.errors import DomainError

    try:
        return args.func(args)
    except DomainError as exc:
        print(f"esup: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
