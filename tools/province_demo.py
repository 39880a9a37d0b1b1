"""``./run province-demo``: the project's own Kafka broker, three districts and the province.

- a Kafka 4.x broker (``infra/kafka_broker.py``; data in ``<dir>/kafka``);
- three districts, each its own data dir, ``esup serve`` and relay (``ESUP_KAFKA_BOOTSTRAP``):
  CDGX, the seed's district (``esup demo``, 5,000 cases of 2008 and the live hall reporting
  today's steps), and two smaller ones, WJ and PX (``esup demo --cases 600/400 --no-live``);
- the province (``esup province``) on an embedded PostgreSQL in ``<dir>/province-pg``.

It prints where to look and runs until Ctrl-C. The second run reuses what the first built.

    python -m tools.province_demo [--dir data/province-demo] [--seed-cases 5000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ESUP = [sys.executable, "-m", "api.cli"]
DISTRICTS = [  # code, port, cases, live, seed
    ("CDGX", 8001, None, True, 2008),
    ("WJ", 8002, 600, False, 11),
    ("PX", 8003, 400, False, 12),
]


def _run(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1] if out.strip() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run province-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "province-demo")
    parser.add_argument("--seed-cases", type=int, default=int(os.environ.get("ESUP_DEMO_CASES", "5000")))
    parser.add_argument("--province-port", type=int, default=8100)
    args = parser.parse_args(argv)

    from infra import pgserver
    from infra.kafka_broker import KafkaBroker

    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    broker = KafkaBroker(data_dir=base / "kafka")
    pg = None
    try:
        print("province-demo: starting the Kafka broker...", flush=True)
        broker.start()
        bootstrap = broker.bootstrap_servers
        print("province-demo: starting the province's PostgreSQL...", flush=True)
        pg = pgserver.start_embedded(base / "province-pg")
        pg._server.cleanup_mode = "stop"  # type: ignore[union-attr]  # keep its data for the next run
        dsn_file = base / "province-db.txt"
        if not dsn_file.exists():
            dsn_file.write_text(pg.create_database("province"))
        dsn = pg.conninfo(dsn_file.read_text().strip())

        keys: dict[str, str] = {}
        for code, port, cases, live, seed in DISTRICTS:
            data = base / code
            env = {**os.environ, "ESUP_DATA_DIR": str(data), "ESUP_DISTRICT": code}
            env.pop("ESUP_KAFKA_BOOTSTRAP", None)
            keyfile = data / "officer-key.txt"
            if not keyfile.exists():
                print(f"province-demo: building district {code}...", flush=True)
                build = [*ESUP, "demo", "--quiet", "--seed", str(seed),
                         "--cases", str(cases or args.seed_cases), "--live" if live else "--no-live"]
                if live:
                    build += ["--recent-days", "3", "--recent-per-day", "300"]
                subprocess.run(build, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
                keyfile.write_text(_run([*ESUP, "keys", "create", "--role", "officer", "--label", "demo"], env) + "\n")
            keys[code] = keyfile.read_text().strip()
            serve = [*ESUP, "serve", "--port", str(port), "--log-level", "warning"] + (["--live-demo"] if live else [])
            procs.append(subprocess.Popen(serve, cwd=ROOT, env={**env, "ESUP_KAFKA_BOOTSTRAP": bootstrap,
                                                                  "ESUP_CHECKPOINT_SECONDS": "30"}))
        penv = {**os.environ, "ESUP_PROVINCE_DSN": dsn, "ESUP_KAFKA_BOOTSTRAP": bootstrap}
        procs.append(subprocess.Popen([*ESUP, "province", "--port", str(args.province_port)], cwd=ROOT, env=penv))

        print()
        print(f"Kafka:     {bootstrap}  (topics esup.feed, esup.feed.positions, esup.feed.control)")
        print(f"Province:  http://127.0.0.1:{args.province_port}/   (省级监察: districts ranked, red cards, "
              "click a district, then a card for its case timeline)")
        print(f"           http://127.0.0.1:{args.province_port}/api/v1/province/districts  "
              "(also /warnings, /performance?group_by=department, /reconciliation, /checkpoints, /alarms)")
        for code, port, _, live, _ in DISTRICTS:
            print(f"District {code}: http://127.0.0.1:{port}/   officer key {keys[code]}"
                  + ("   (the live hall reports today's steps)" if live else ""))
        print("Ctrl-C stops everything; data stays in", base)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print("province-demo: a process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        if pg is not None:
            pg.stop()  # stops the server; its data stays for the next run

if __name__ == "__main__":
    sys.exit(main())
