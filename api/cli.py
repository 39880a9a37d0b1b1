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
    for line in calendar_warnings(esup):
        print(line, flush=True)
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
    relay = None
    if os.environ.get("ESUP_KAFKA_BOOTSTRAP"):
        from services.feed import start_relay_thread

        relay = start_relay_thread(esup, os.environ["ESUP_KAFKA_BOOTSTRAP"])
        print(f"esup: publishing the provincial feed to {os.environ['ESUP_KAFKA_BOOTSTRAP']}", flush=True)
    try:
        uvicorn.run(create_app(esup), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        if relay is not None:
            relay[1].set()
            relay[0].join(15)
        if hall is not None:
            hall.stop()  # before the stores close under it
        esup.close()
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild views from the log beside the live ones and switch them in (a server may keep
    serving and ingesting meanwhile); --resume continues an interrupted rebuild."""
    from tqdm import tqdm

    esup = _open(args)
    runner = esup.runner
    names = [runner.view(n).name for n in args.views] or list(runner.views)
    head = runner.head()
    bars: dict[str, tqdm] = {}

    def progress(view: str, n: int) -> None:
        if view not in bars:
            for bar in bars.values():
                bar.close()
            bars[view] = tqdm(total=head, unit="event", disable=args.quiet,
                              desc=f"{'resuming' if args.resume else 'rebuilding'} {view}")
        bar = bars[view]
        if bar.n + n > bar.total:
            bar.total = bar.n + n  # the log grew meanwhile
        bar.update(n)

    try:
        runner.rebuild(names, progress=progress, resume=args.resume, workers=args.workers, batch=args.batch)
    finally:
        for bar in bars.values():
            bar.close()
    print(f"views {', '.join(names)} rebuilt and switched in at positions "
          f"{', '.join(str(runner.position(n)) for n in names)} (ledger head {runner.head()})")
    esup.close()
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    esup = _open(args)
    try:
        runner = esup.runner
        if args.views_cmd == "skip":
            faults = esup.views.faults()
            names = sorted(faults) if args.view == ["all"] else [runner.view(n).name for n in args.view]
            for name in names:
                position = args.position if args.position is not None else faults.get(name, {}).get("position")
                if position is None:
                    print(f"esup: view {name} has no fault; name the event with --position", file=sys.stderr)
                    return 2
                esup.views.skip(name, int(position), args.note)
                runner.catch_up([name])
                print(f"view {name}: the event at log position {position} is skipped; the view is at "
                      f"{runner.position(name)} of {runner.head()}")
            return 0
        health = runner.health()
        print(f"ledger head {health['head']}")
        for name, v in health["views"].items():
            line = f"  {name:<20} position {v['position']:>10}  lag {v['lag']:>8}"
            if "fault" in v:
                f = v["fault"]
                line += (f"  STOPPED at {f['position']} ({f['topic']} {f['originator_id']} v{f['originator_version']}):"
                         f" {f['error']} [{f['attempts']} attempts since {f['first_at']}]")
            print(line)
        return 1 if health["faults"] else 0
    finally:
        esup.close()


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
        if esup.reference.channels():
            from api import cli_bundles

            cli_bundles.print_channel_table(esup)
        print_seed_table(esup)  # (with the channels' and tiers' cases, which a fresh build prints before)
        from api.cli_oversight import print_oversight

        print_oversight(esup)
        return 0
    # Roughly 5.4 steps per case; the bar counts steps.
    with tqdm(total=int(args.cases * 5.4), unit="step", desc="ingesting 2008", disable=args.quiet) as bar:
        figures, steps = ingest_demo(esup, clock, args.cases, seed=args.seed, progress=bar.update)
        bar.total = steps
        bar.refresh()
    # The yearbook's table is the 2008 district sample's; the channels and tiers come after it.
    head, seed_rows, built = headline(esup.ledger), seed_rows_now(esup), None
    if args.channels:
        from api import cli_bundles

        built = cli_bundles.build(esup, clock, args)
    print(f"demo district: {figures.departments} departments, {figures.windows} windows, {figures.staff} staff, "
          f"{figures.items} items ({figures.on_the_spot_items} on the spot, "
          f"即办件比例 {100 * figures.on_the_spot_items / figures.items:.1f}%)")
    print_headline(head)
    if built is not None:
        cli_bundles.print_channel_table(esup, built)
    print_seed_table(esup, seed_rows)
    from api.cli_oversight import print_oversight
    from services.demo_oversight import oversight_2008

    oversight_2008(esup, seed=args.seed, cases=args.cases)  # complaints, notices, inspection rounds
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
    print_oversight(esup)  # after the yearbook's table and the live hall's line, which stay as they were
    esup.close()
    return 0


def seed_rows_now(esup) -> list:
    from services.metrics import seed_table

    esup.runner.catch_up()
    return seed_table(esup)


def print_seed_table(esup, rows: list | None = None) -> None:
    """The seed's figures next to the same figures from the performance view (绩效)."""
    import unicodedata

    def cells(text: str) -> int:  # terminal columns: CJK characters take two
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    rows = rows if rows is not None else seed_rows_now(esup)
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


def _due(instant: datetime | None) -> str:
    """A deadline as a day: "2008-10-29 24:00" (the end of the 29th), or its time within the day."""
    from api.http import deadline_date
    from domain.calendar import CHINA_TZ

    if instant is None:
        return "-"
    local = instant.astimezone(CHINA_TZ)
    return f"{deadline_date(instant)} 24:00" if local.time() == datetime.min.time() else local.strftime("%Y-%m-%d %H:%M")


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
    print(f"  accepted {case.accepted_at}  promised due {_due(case.promised_due_at)}  legal due {_due(case.legal_due_at)}")
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
    """Verify every case's hash chain and the whole log against the latest signed checkpoint;
    exit 1 naming each edited, deleted, inserted or reordered event and any truncation."""
    import json

    from services.ledger_verify import LedgerVerifier

    esup = _open(args)
    try:
        report = LedgerVerifier(esup.ledger, esup.views, esup.checkpoints,
                                access_checkpoints=esup.access_checkpoints).run()
    finally:
        esup.close()
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return 0 if report.ok else 1
    cp = report.checkpoint
    print(f"{report.cases} cases, {report.events} case events verified"
          + (f" against checkpoint {cp['origin']} size {cp['size']} (log position {cp['position']})" if cp
             else " (no checkpoint signed yet: chains only)")
          + (f"; {report.uncovered} events after it are chain-checked only" if report.uncovered else "")
          + f"; {report.access_entries} access-log entries checked against their own tree")
    chains = {(f.case_no, f.version) for f in report.faults if f.case_no is not None}
    print(f"{len(report.faults)} faults" + (f" in {len({c for c, _ in chains})} cases" if chains else ""))
    for fault in report.faults[: args.limit]:
        print("  " + fault.line())
    if len(report.faults) > args.limit:
        print(f"  ... {len(report.faults) - args.limit} more (--limit, or --json for all)")
    return 0 if report.ok else 1


def calendar_warnings(esup) -> list[str]:
    """The line(s) saying next year's schedule is missing (from 1 November), by esup's clock."""
    status = esup.calendars.status()
    return [f"esup: warning: {status['message']}"] if status["missing_years"] else []


def calendar_report(esup) -> list[str]:
    status = esup.calendars.status()
    lines = [f"working calendar: {status['first_year']}..{status['last_year']} (today {status['today']}): {status['status']}"]
    published = sorted(esup.reference.published_years())
    if published:
        lines.append(f"  published at run time: {', '.join(map(str, published))}")
    lines += [f"  {line}" for line in calendar_warnings(esup)]
    for year, n in sorted(esup.calendars.pending().items()):
        lines.append(f"  {n} case(s) with deadlines provisional on {year} (calendar_provisional), settled when it is published")
    return lines


def cmd_calendar(args: argparse.Namespace) -> int:
    esup = _open(args)
    try:
        if args.calendar_cmd == "settle":
            print(f"{esup.calendars.settle(args.year)} case(s) settled")
        for line in calendar_report(esup):
            print(line)
        return 1 if esup.calendars.status()["missing_years"] else 0
    finally:
        esup.close()


def cmd_bench(args: argparse.Namespace) -> int:
    # The benchmarks are tools above the application: run them, never import them from here.
    import subprocess

    return subprocess.call([sys.executable, "-m", "tools.bench", *args.bench_args])


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
    from api.cli_bundles import add_demo_arguments

    add_demo_arguments(p)  # --channels, --channel-scale, --tier-cases
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
    p.add_argument("--batch", type=int, default=None, help="events per transaction (default 5000)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes replaying views side by side, each a share of the views (default 1; 2 helps "
                        "with 2 or more cores, on either store)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("views", help="each view's position and lag, and any event a view cannot apply")
    vs = p.add_subparsers(dest="views_cmd")
    v = vs.add_parser("skip", help="pass over the event a view is stuck at (recorded; the view goes on)")
    v.add_argument("view", nargs="+", help="view names, or all (every view that has a fault)")
    v.add_argument("--position", type=int, help="the log position to skip (default: the view's current fault)")
    v.add_argument("--note", default="skipped by the operator", help="why (kept with the skip)")
    p.set_defaults(func=cmd_views)

    p = sub.add_parser("calendar", help="the working calendar: years known, next year's schedule, provisional deadlines")
    cs = p.add_subparsers(dest="calendar_cmd", required=True)
    cs.add_parser("status", help="exit 1 when this year's or (from 1 Nov) next year's schedule is missing")
    c = cs.add_parser("settle", help="settle provisional deadlines on the years now known (e.g. after a package upgrade)")
    c.add_argument("year", type=int, nargs="?")
    p.set_defaults(func=cmd_calendar)

    from api import cli_assessment

    cli_assessment.add_parser(sub, _open)  # esup assessment YEAR [--xlsx PATH] [--check]

    p = sub.add_parser("verify", help="verify every case's hash chain and the whole log against the latest checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="the whole report as JSON")
    p.add_argument("--limit", type=int, default=50, help="faults printed (default 50)")
    p.set_defaults(func=cmd_verify)

    from api.cli_audit import add_audit_commands

    add_audit_commands(sub)  # esup audit export|verify-export (+ the audit samples' commands)

    p = sub.add_parser("bench", add_help=False,
                       help="ingest throughput as ratios to a raw-insert floor measured in the same run "
                            "(runs python -m tools.bench; esup bench --help lists its options)")
    p.set_defaults(func=cmd_bench)

    from api import cli_feed

    cli_feed.install(sub)  # esup feed, esup province

    args, rest = parser.parse_known_args(argv)
    if args.func is cmd_bench:
        args.bench_args = rest  # every option is the benchmark's own
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from domain.errors import DomainError

    try:
        return args.func(args)
    except DomainError as exc:
        print(f"esup: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
