"""A real single-node Apache Kafka 4.x broker (KRaft combined mode) for tests and the demo.

The jars come from Maven Central through ``infra/kafka/pom.xml`` (no tarball, no Docker) and are
cached in ``<repo>/.cache/kafka-jars`` (or ``$ESUP_KAFKA_JARS``).

    python -m infra.kafka_broker fetch                       # only resolve the jars
    python -m infra.kafka_broker start [--data-dir D] [--port P]

Production points the relay at a real cluster instead; this is not a deployment tool.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.xml"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / ".cache" / "kafka-jars"

# Written last into the cache dir; holds the pom's hash so a version bump in the pom re-fetches.
_MARKER = ".esup-complete"
_READY_LINE = "Kafka Server started"
# Ports chosen for a data dir are remembered there, so a restart on the same data dir comes
# back at the same bootstrap address (clients and a relay's config keep working) and the
# controller endpoint matches the one `format --standalone` recorded in the voter set.
_PORTS_FILE = "esup-ports.json"


class KafkaBrokerError(RuntimeError):
    pass


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _cache_is_complete(cache: Path) -> bool:
    marker = cache / _MARKER
    if not marker.is_file() or marker.read_text().strip() != _pom_digest():
        return False
    return any(cache.glob("kafka_2.13-*.jar")) and any(cache.glob("log4j-slf4j-impl-*.jar"))


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """The directory holding the broker's jars, resolving them with Maven on first use."""
    if cache_dir is None:
        env = os.environ.get("ESUP_KAFKA_JARS")
        cache_dir = Path(env) if env else DEFAULT_CACHE
    cache = Path(cache_dir).resolve()
    if _cache_is_complete(cache):
        return cache

    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaBrokerError(
            "Maven ('mvn') is not on the PATH; it is needed once to fetch the Kafka broker jars "
            f"into {cache} (or point ESUP_KAFKA_JARS at a directory that already holds them)."
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Resolve into a sibling temp dir and rename: a failed or concurrent fetch never leaves a
    # half-filled cache that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=cache.name + ".tmp-", dir=cache.parent))
    print(f"[kafka_broker] fetching Kafka broker jars with Maven into {cache} "
          "(first run only; this can take a minute or two)...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"mvn failed (exit {proc.returncode}) resolving {POM}; last output:\n{_tail(proc.stdout)}"
            )
        (staging / _MARKER).write_text(_pom_digest() + "\n")
        if not _cache_is_complete(staging):
            raise KafkaBrokerError(f"mvn succeeded but {staging} lacks the kafka/log4j jars:\n{_tail(proc.stdout)}")
        if cache.exists():
            shutil.rmtree(cache)  # stale (older pom) or incomplete
        try:
            staging.rename(cache)
        except OSError:
            # Another process won the race with a complete cache of its own: use that.
            if not _cache_is_complete(cache):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    print(f"[kafka_broker] jars ready in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    return cache


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaBrokerError("'java' (17+) is not on the PATH; the Kafka broker needs it")
    return java


class KafkaBroker:
    """One KRaft broker+controller process bound to 127.0.0.1, with its data in ``data_dir``.

    Restarting on the same ``data_dir`` keeps topics and records (the storage is formatted only
    once, and the ports are reused).
    """

    def __init__(self, data_dir: Path | None = None, port: int | None = None,
                 controller_port: int | None = None, heap: str = "512m"):
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="esup-kafka-"))
        self.data_dir = self.data_dir.resolve()
        self.heap = heap
        saved = self._saved_ports()
        self.port = port or saved.get("port") or _free_port()
        self.controller_port = controller_port or saved.get("controller_port") or _free_port()
        while self.controller_port == self.port:
            self.controller_port = _free_port()
        self.process: subprocess.Popen | None = None
        self._log_handle = None

    # -- paths -----------------------------------------------------------------------------
    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _saved_ports(self) -> dict:
        try:
            return json.loads((self.data_dir / _PORTS_FILE).read_text())
        except (OSError, ValueError):
            return {}

    # -- lifecycle -------------------------------------------------------------------------
    def _write_properties(self) -> None:
        p, c = self.port, self.controller_port
        self.properties_file.write_text(
            "# Written by infra/kafka_broker.py: single-node KRaft combined mode, loopback only.\n"
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.bootstrap.servers=127.0.0.1:{c}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
            f"log.dirs={self.log_dir}\n"
            "num.partitions=1\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\n"
            "# After a SIGKILL the new incarnation is refused (DUPLICATE_BROKER_REGISTRATION) until\n"
            "# the old session expires: 9 s by default. Shorter so crash/restart tests stay quick.\n"
            "broker.heartbeat.interval.ms=500\n"
            "broker.session.timeout.ms=3000\n"
        )
        (self.data_dir / _PORTS_FILE).write_text(json.dumps({"port": p, "controller_port": c}))

    def _storage_tool(self, classpath: str, *args: str) -> str:
        proc = subprocess.run(
            [_java(), "-Xmx256m", "-cp", classpath, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
             "kafka.tools.StorageTool", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if proc.returncode != 0:
            raise KafkaBrokerError(f"StorageTool {args[0]} failed (exit {proc.returncode}):\n{_tail(proc.stdout)}")
        return proc.stdout

    def _format_if_needed(self, classpath: str) -> None:
        if (self.log_dir / "meta.properties").exists():
            return  # already formatted: formatting again would refuse (or, forced, lose data)
        out = self._storage_tool(classpath, "random-uuid")
        cluster_id = out.strip().splitlines()[-1].strip()
        self._storage_tool(classpath, "format", "--standalone", "-t", cluster_id,
                           "-c", str(self.properties_file))

    def start(self, timeout: float = 90) -> "KafkaBroker":
        if self.process is not None and self.process.poll() is None:
            return self
        jars = ensure_jars()
        classpath = str(jars / "*")  # the JVM expands the wildcard itself
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format_if_needed(classpath)

        # Appending keeps the previous run's log for crash/restart debugging; remember where
        # this run starts so readiness is judged on its own lines only.
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._log_handle = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            [_java(), f"-Xmx{self.heap}", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
             "-cp", classpath, "kafka.Kafka", str(self.properties_file)],
            stdout=self._log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: Ctrl-C in a terminal doesn't hit it first
        )
        atexit.register(self._atexit)
        try:
            self._wait_ready(offset, timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise KafkaBrokerError(
                    f"Kafka broker exited early (code {self.process.returncode}); "
                    f"log {self.log_file}:\n{_tail(self._read_log(offset))}"
                )
            if _READY_LINE in self._read_log(offset):
                break
            if time.monotonic() > deadline:
                raise KafkaBrokerError(
                    f"Kafka broker not ready after {timeout}s; log {self.log_file}:\n{_tail(self._read_log(offset))}"
                )
            time.sleep(0.1)
        # The log line means the listeners are up; a real metadata round trip proves a client
        # can bootstrap (and catches a broker that started but advertises the wrong address).
        self._metadata_probe(max(5.0, deadline - time.monotonic()))

    def _metadata_probe(self, timeout: float) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                         request_timeout_ms=5000, client_id="esup-broker-probe")
                try:
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last = exc
                time.sleep(0.2)
        raise KafkaBrokerError(f"Kafka broker up but metadata request failed: {last!r}; "
                               f"log tail:\n{_tail(self._read_log())}")

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 30) -> None:
        """Graceful shutdown (SIGTERM lets Kafka flush and close its logs), SIGKILL after ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL, no shutdown hooks: simulates a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        atexit.unregister(self._atexit)
        self.process = None

    def _atexit(self) -> None:
        # Never leave an orphan JVM holding ports if the test run / demo dies without stop().
        if self.process is not None:
            self.stop(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.kafka_broker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="only resolve (download and cache) the broker jars")
    start = sub.add_parser("start", help="run a broker in the foreground until Ctrl-C")
    start.add_argument("--data-dir", type=Path, default=None, help="kept between runs (default: a temp dir)")
    start.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    start.add_argument("--controller-port", type=int, default=None)
    start.add_argument("--heap", default="512m")
    args = parser.parse_args(argv)

    if args.command == "fetch":
        try:
            print(ensure_jars())
        except KafkaBrokerError as exc:
            print(f"[kafka_broker] {exc}", file=sys.stderr)
            return 1
        return 0

    broker = KafkaBroker(data_dir=args.data_dir, port=args.port,
                         controller_port=args.controller_port, heap=args.heap)
    # Ctrl-C must work even when started from a script that ignores SIGINT for background jobs,
    # and SIGTERM (e.g. from a supervisor) should shut the broker down as cleanly as Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        broker.start()
        print(f"KAFKA_BOOTSTRAP={broker.bootstrap_servers}", flush=True)
        print(f"[kafka_broker] data dir {broker.data_dir}, log {broker.log_file}; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        code = broker.process.wait()
        print(f"[kafka_broker] broker exited with code {code}; log tail:\n{_tail(broker._read_log())}",
              file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("[kafka_broker] stopping...", file=sys.stderr, flush=True)
        broker.stop()
        return 0
    except KafkaBrokerError as exc:
        print(f"[kafka_broker] {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
