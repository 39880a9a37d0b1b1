"""Where the views live: a SQLite file next to the ledger, or the same PostgreSQL database.

Views write SQL with ``?`` placeholders; the PostgreSQL store converts them. A view's rows and
its tracking position always commit in one transaction (``transaction()``), which is what makes
processing exactly-once: after a crash, the position says precisely what the rows contain.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

TRACKING_DDL = "CREATE TABLE IF NOT EXISTS view_tracking (view TEXT PRIMARY KEY, position BIGINT NOT NULL)"


class Cursor:
    """The little a view needs: execute, executemany, fetch."""

    def __init__(self, raw: Any, pg: bool) -> None:
        self._raw = raw
        self._pg = pg

    def _sql(self, sql: str) -> str:
        return re.sub(r"\?", "%s", sql) if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._raw.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return self._raw.fetchall()


class ViewStore:
    kind = "abstract"

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:  # pragma: no cover - interface
        raise NotImplementedError
        yield

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A consistent read-only snapshot that never waits for, or holds up, writers."""
        with self.transaction() as cur:
            yield cur

    def position(self, view: str, cur: Cursor | None = None) -> int:
        if cur is not None:
            row = cur.execute("SELECT position FROM view_tracking WHERE view = ?", (view,)).fetchone()
            return int(row[0]) if row else 0
        with self.read() as cur:
            row = cur.execute("SELECT position FROM view_tracking WHERE view = ?", (view,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def lock_position(cur: Cursor, view: str) -> int:
        """The view's position, read inside a writing transaction and held until it ends (on
        PostgreSQL a row lock; SQLite's write transaction already excludes other writers), so
        two processes never apply the same notifications, and a rebuild's switch-over waits."""
        row = cur.execute("SELECT position FROM view_tracking WHERE view = ?" + (" FOR UPDATE" if cur._pg else ""),
                          (view,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def set_position(cur: Cursor, view: str, position: int) -> None:
        # An upsert keeps the row (a DELETE and INSERT would let a waiting FOR UPDATE miss it).
        cur.execute("INSERT INTO view_tracking (view, position) VALUES (?, ?)"
                    " ON CONFLICT (view) DO UPDATE SET position = excluded.position", (view, position))

    def close(self) -> None:  # pragma: no cover - interface
        pass


class SQLiteViewStore(ViewStore):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._lock = threading.RLock()  # one writer at a time inside this process
        with self.transaction() as cur:
            cur.execute(TRACKING_DDL)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self._conn()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(conn.cursor(), pg=False)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        # A deferred transaction reads a WAL snapshot without the writer lock (BEGIN IMMEDIATE
        # and the process lock would make every screen's poll queue behind the projections).
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield Cursor(conn.cursor(), pg=False)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class PostgresViewStore(ViewStore):
    kind = "postgres"

    def __init__(self, env: dict[str, str], schema: str | None = None) -> None:
        from psycopg_pool import ConnectionPool

        parts = [f"host={env['POSTGRES_HOST']}", f"port={env.get('POSTGRES_PORT', '5432')}",
                 f"user={env.get('POSTGRES_USER', 'postgres')}", f"dbname={env['POSTGRES_DBNAME']}"]
        if env.get("POSTGRES_PASSWORD"):
            parts.append(f"password={env['POSTGRES_PASSWORD']}")
        self.pool = ConnectionPool(" ".join(parts), min_size=1, max_size=4, open=True)
        with self.transaction() as cur:
            cur.execute(TRACKING_DDL)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        # Pipeline mode: writes go out without waiting for each answer (a view's batch is mostly
        # INSERT/UPDATE/DELETE); a fetch still waits for its own result. Over TCP, see pgserver.
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as raw:
            yield Cursor(raw, pg=True)

    def close(self) -> None:
        self.pool.close()


def open_view_store(settings: Any) -> ViewStore:
    if settings.postgres:
        return PostgresViewStore(settings.postgres)
    return SQLiteViewStore(settings.data_dir / "views.sqlite")
