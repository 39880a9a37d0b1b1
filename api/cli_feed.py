"""``esup feed`` (the district's relay to the provincial feed) and ``esup province``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def _bootstrap(args: argparse.Namespace) -> str:
    bootstrap = args.bootstrap or os.environ.get("ESUP_KAFKA_BOOTSTRAP")
    if not bootstrap:
        print("esup: no Kafka: give --bootstrap or set ESUP_KAFKA_BOOTSTRAP", file=sys.stderr)
        raise SystemExit(2)
    return bootstrap


def cmd_feed(args: argparse.Namespace) -> int:
    from api.cli import _open
    from services.feed import relay_for

    bootstrap = _bootstrap(args)
    esup = _open(args)
    relay = relay_for(esup, bootstrap, district=args.district, personal=args.personal, batch=args.batch)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        state = relay.connect()
        print(f"esup feed: district {relay.district} -> {bootstrap} ({relay.topics.data}); resuming after log "
              f"position {state.position} (from Kafka); personal data: {relay.source.personal}", flush=True)
        if args.once:
            esup.runner.catch_up()  # the anomalies view places its rows in the log
            n = relay.run_once()
            print(f"esup feed: published {n} ledger records; at log position {relay.state.position} "
                  f"of {relay.source.head()}", flush=True)
            return 0
        esup.start_background()
        try:
            relay.run(stop)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        relay.close()
        esup.close()


def cmd_province(args: argparse.Namespace) -> int:
    """Consume the feed into the province's store; serve its API and page unless --no-http."""
    from services.province import province_from_env

    bootstrap = _bootstrap(args)
    if not args.dsn:
        print("esup province: give --dsn or set ESUP_PROVINCE_DSN (the province's PostgreSQL)", file=sys.stderr)
        return 2
    province = province_from_env(args.dsn, bootstrap, args.group)
    province.on_assign = lambda parts: print(f"esup province: assigned partitions {parts}", flush=True)
    province.open()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"esup province: consuming {province.topics.data} from {bootstrap} as group {args.group}", flush=True)
    try:
        if args.once:
            n = province.run_until_caught_up(timeout=float(os.environ.get("ESUP_PROVINCE_TIMEOUT", "300")))
            reports = province.reconcile() if args.reconcile else []
            print(f"esup province: applied {n} records; caught up"
                  + (f"; {sum(r['status'] != 'ok' for r in reports)} of {len(reports)} days differ" if reports else ""),
                  flush=True)
            return 0
        thread = threading.Thread(target=province.run, args=(stop,), name="esup-province", daemon=True)
        thread.start()
        if args.no_http:
            try:
                while thread.is_alive() and not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                stop.set()
        else:
            import uvicorn

            from api.province import create_province_app

            print(f"esup province: 省级监察 on http://{args.host}:{args.port}/ (API /api/v1/province/*)", flush=True)
            uvicorn.run(create_province_app(province, args.key), host=args.host, port=args.port, log_level="warning")
            stop.set()
        thread.join(15)
        return 0
    finally:
        province.close()


def install(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feed", help="publish the ledger to the provincial feed on Kafka (exactly once)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default $ESUP_KAFKA_BOOTSTRAP)")
    p.add_argument("--district", help="district code (default $ESUP_DISTRICT, else the first center's code)")
    p.add_argument("--personal", choices=["omit", "mask"], default=None,
                   help="personal data on the feed (default $ESUP_FEED_PERSONAL or omit)")
    p.add_argument("--batch", type=int, default=None, help="log records per transaction (default 500)")
    p.add_argument("--once", action="store_true", help="publish up to the head and exit")
    p.set_defaults(func=cmd_feed)

    p = sub.add_parser("province", help="the provincial service: consume every district's feed into PostgreSQL")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default $ESUP_KAFKA_BOOTSTRAP)")
    p.add_argument("--dsn", default=os.environ.get("ESUP_PROVINCE_DSN"),
                   help="the province's PostgreSQL (libpq conninfo; default $ESUP_PROVINCE_DSN)")
    p.add_argument("--group", default=os.environ.get("ESUP_PROVINCE_GROUP", "esup-province"))
    p.add_argument("--host", default=os.environ.get("ESUP_PROVINCE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("ESUP_PROVINCE_PORT", "8100")))
    p.add_argument("--no-http", action="store_true", help="consume only (a second consumer of the group)")
    p.add_argument("--once", action="store_true", help="consume up to the topics' current ends and exit")
    p.add_argument("--reconcile", action="store_true", help="with --once: reconcile the days' digests too")
    p.add_argument("--key", default=os.environ.get("ESUP_PROVINCE_KEY"),
                   help="bearer key of the province's API (default $ESUP_PROVINCE_KEY; none: open on loopback)")
    p.set_defaults(func=cmd_province)
