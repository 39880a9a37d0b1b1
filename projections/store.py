"""Where the views live: a SQLite file next to the ledger, or the same PostgreSQL database.

Views write SQL with ``?`` placeholders; the PostgreSQL store converts them. A view's rows and
its tracking position always commit in one transaction (``transaction()``), which is what makes
processing exactly-once: after a crash, the position says precisely what the rows contain.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import datetime, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
log = logging.getLogger("esup.views")

TRACKING_DDL = "CREATE TABLE IF NOT EXISTS view_tracking (view TEXT PRIMARY KEY, position BIGINT NOT NULL)"
GENERATION_DDL = "CREATE TABLE IF NOT EXISTS view_generation (view TEXT PRIMARY KEY, generation BIGINT NOT NULL)"
FAULTS_DDL = (
    "CREATE TABLE IF NOT EXISTS view_faults (view TEXT PRIMARY KEY, position BIGINT NOT NULL, topic TEXT NOT NULL,"
    " originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, error TEXT NOT NULL,"
    " first_at DOUBLE PRECISION NOT NULL, last_at DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL)"
)
SKIPS_DDL = ("CREATE TABLE IF NOT EXISTS view_skips (view TEXT NOT NULL, position BIGINT NOT NULL, note TEXT NOT NULL,"
             " at DOUBLE PRECISION NOT NULL, PRIMARY KEY (view, position))")


_PG_SQL: dict[str, str] = {}  # a view's SQL (``?`` placeholders) -> psycopg's (``%s``)


class Cursor:
    """The little a view needs: execute, executemany, fetch."""

    def __init__(self, raw: Any, pg: bool) -> None:
        self._raw = raw
        self._pg = pg
        self._last = raw  # the cursor of the last execute, whose rows fetch* return

    def _sql(self, sql: str) -> str:
        if not self._pg:
            return sql
        found = _PG_SQL.get(sql)
        if found is None:  # a view's statements are few and repeated: translate each once
            if len(_PG_SQL) > 4096:
                _PG_SQL.clear()
            found = _PG_SQL[sql] = sql.replace("?", "%s")
        return found

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if self._pg:
            # One psycopg cursor per statement: in pipeline mode a cursor reused for an INSERT
            # and then a SELECT sometimes fetched the INSERT's result ("the last operation didn't
            # produce records"), which broke a district-year rebuild at one event in 100,000.
            self._last = self._raw.connection.cursor()
            self._last.execute(self._sql(sql), tuple(params))
        else:
            self._raw.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._raw.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchone(self) -> Any:
        return self._last.fetchone()

    def fetchall(self) -> list[Any]:
        return self._last.fetchall()


class ViewStore:
    kind = "abstract"

    def shadow(self, fresh: bool, part: int = 0) -> ViewStore:  # pragma: no cover - interface
        """A separate store of the same kind where a rebuild builds views while this one keeps
        serving (``fresh``: emptied first; otherwise what an interrupted rebuild left).
        ``part``: where a rebuild's worker process ``part`` (1, 2, ...) builds its share of the
        views, gathered into the shadow by ``take_part`` (the shadow itself where writers in
        several processes do not hold one another up)."""
        raise NotImplementedError

    def take_part(self, part: int, tables: dict[str, Sequence[str]]) -> None:
        """On a shadow: bring in what worker ``part`` built in ``shadow(part=...)``: for each
        view (``tables``: view -> its tables) its rows and its position."""

    @contextmanager
    def switch(self, shadow: ViewStore) -> Iterator[Cursor]:  # pragma: no cover - interface
        """One writing transaction on this store in which the shadow's tables can be read
        (``copy_in``). Readers see the old rows until it commits, then the new."""
        raise NotImplementedError
        yield

    def copy_in(self, cur: Cursor, table: str) -> None:  # pragma: no cover - interface
        """Inside ``switch``: replace the table's rows by the shadow's."""
        raise NotImplementedError

    def drop_shadow(self, shadow: ViewStore) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @contextmanager
    def transaction(self, pipeline: bool = True) -> Iterator[Cursor]:  # pragma: no cover - interface
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

    # -- faults: an event a view cannot apply ---------------------------------------------------

    def record_fault(self, fault: Any) -> bool:
        """Record (or count again) the event a view is stuck at; True if it is a new fault."""
        now = time.time()
        with self.transaction() as cur:
            row = cur.execute("SELECT position, attempts FROM view_faults WHERE view = ?", (fault.view,)).fetchone()
            if row is not None and int(row[0]) == fault.position:
                cur.execute("UPDATE view_faults SET attempts = attempts + 1, last_at = ?, error = ? WHERE view = ?",
                            (now, fault.error[:2000], fault.view))
                return False
            cur.execute("DELETE FROM view_faults WHERE view = ?", (fault.view,))
            cur.execute(
                "INSERT INTO view_faults (view, position, topic, originator_id, originator_version, error, first_at,"
                " last_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (fault.view, fault.position, fault.topic, fault.originator_id, fault.originator_version,
                 fault.error[:2000], now, now),
            )
            return True

    def clear_fault(self, view: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM view_faults WHERE view = ?", (view,))

    def faults(self) -> dict[str, dict[str, Any]]:
        with self.read() as cur:
            rows = cur.execute("SELECT view, position, topic, originator_id, originator_version, error, first_at,"
                               " last_at, attempts FROM view_faults").fetchall()
        keys = ("view", "position", "topic", "originator_id", "originator_version", "error", "first_at", "last_at",
                "attempts")
        out = {}
        for r in rows:
            f = dict(zip(keys, r))
            for k in ("first_at", "last_at"):
                f[k] = datetime.fromtimestamp(float(f[k]), timezone.utc).isoformat()
            out[f["view"]] = f
        return out

    def skip(self, view: str, position: int, note: str) -> None:
        """The operator's way past an event a view cannot apply: it is passed over, recorded."""
        with self.transaction() as cur:
            cur.execute("INSERT INTO view_skips (view, position, note, at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (view, position) DO NOTHING", (view, position, note, time.time()))

    def skips(self, view: str, cur: Cursor | None = None) -> set[int]:
        """The events skipped for the view (read inside ``cur``'s transaction when given)."""
        sql = "SELECT position FROM view_skips WHERE view = ?"
        if cur is not None:
            return {int(r[0]) for r in cur.execute(sql, (view,)).fetchall()}
        with self.read() as c:
            return {int(r[0]) for r in c.execute(sql, (view,)).fetchall()}

    def all_skips(self, cur: Cursor | None = None) -> dict[str, set[int]]:
        """Every view's skipped events, in one query (a replay reads them once per batch)."""
        out: dict[str, set[int]] = {}
        sql = "SELECT view, position FROM view_skips"
        if cur is not None:
            rows = cur.execute(sql).fetchall()
        else:
            with self.read() as c:
                rows = c.execute(sql).fetchall()
        for view, position in rows:
            out.setdefault(view, set()).add(int(position))
        return out

    @staticmethod
    def lock_positions(cur: Cursor, views: Sequence[str]) -> dict[str, int]:
        """``lock_position`` of several views in one query (locked in the views' name order)."""
        marks = ", ".join("?" for _ in views)
        rows = cur.execute(f"SELECT view, position FROM view_tracking WHERE view IN ({marks}) ORDER BY view"
                           + (" FOR UPDATE" if cur._pg else ""), tuple(views)).fetchall()
        found = {view: int(position) for view, position in rows}
        return {v: found.get(v, 0) for v in views}

    @staticmethod
    def generation(cur: Cursor, view: str) -> int:
        """How often the view's tables were replaced by a rebuild (a process caching anything of
        a view forgets it when this changes)."""
        row = cur.execute("SELECT generation FROM view_generation WHERE view = ?", (view,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def bump_generation(cur: Cursor, view: str) -> None:
        cur.execute("INSERT INTO view_generation (view, generation) VALUES (?, 1)"
                    " ON CONFLICT (view) DO UPDATE SET generation = view_generation.generation + 1", (view,))

    @staticmethod
    def set_position(cur: Cursor, view: str, position: int) -> None:
        # An upsert keeps the row (a DELETE and INSERT would let a waiting FOR UPDATE miss it).
        cur.execute("INSERT INTO view_tracking (view, position) VALUES (?, ?)"
                    " ON CONFLICT (view) DO UPDATE SET position = excluded.position", (view, position))

    def close(self) -> None:  # pragma: no cover - interface
        pass


class SQLiteViewStore(ViewStore):
    kind = "sqlite"

    def __init__(self, path: Path, durable: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A rebuild's workspace need not survive the machine losing power (a rebuild would
        # start again, see ``shadow``), only the process being killed: it skips fsync.
        self.durable = durable
        self._local = threading.local()
        self._lock = threading.RLock()  # one writer at a time inside this process
        with self.transaction() as cur:
            cur.execute(TRACKING_DDL)
            cur.execute(GENERATION_DDL)
            cur.execute(FAULTS_DDL)
            cur.execute(SKIPS_DDL)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL" if self.durable else "PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, pipeline: bool = True) -> Iterator[Cursor]:
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

    # -- rebuilding beside a running server -------------------------------------------------------

    # A SQLite file has one writer at a time, and a view's batch holds the write lock while its
    # Python runs. Two processes writing one shadow file do not take turns: the one that just
    # committed begins its next batch at once, while the other sleeps in SQLite's busy handler
    # and finds the lock taken again when it wakes (measured: a worker waited for the whole of
    # the parent's share before its first batch). So each worker of a rebuild writes a file of
    # its own, ``views.rebuild.part<k>.sqlite``, copied into the shadow when it is done.

    def _shadow_path(self, part: int = 0) -> Path:
        return self.path.with_name(self.path.stem + ".rebuild" + (f".part{part}" if part else "") + ".sqlite")

    @staticmethod
    def _unlink(path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    def _parts(self) -> list[Path]:
        main = self._shadow_path()
        return sorted(main.parent.glob(main.stem + ".part*.sqlite"))

    def shadow(self, fresh: bool, part: int = 0) -> SQLiteViewStore:
        path = self._shadow_path(part)
        if not fresh and path.exists() and not self._intact(path):
            # Written without fsync: after a power loss it may be damaged. Start the views again.
            log.warning("the interrupted rebuild's %s is damaged; replaying from the start", path.name)
            fresh = True
        if fresh:
            self._unlink(path)
            if not part:
                for p in self._parts():
                    self._unlink(p)
        return SQLiteViewStore(path, durable=False)

    @staticmethod
    def _intact(path: Path) -> bool:
        try:
            conn = sqlite3.connect(path)
            try:
                return conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return False

    def take_part(self, part: int, tables: dict[str, Sequence[str]]) -> None:
        path = self.path.with_name(self.path.stem + f".part{part}.sqlite")
        conn = self._conn()
        with self._lock:
            conn.execute("ATTACH DATABASE ? AS part", (str(path),))
            try:
                with self.transaction() as cur:
                    for view, names in tables.items():
                        for table in names:
                            cols = ", ".join(r[1] for r in cur.execute(f"PRAGMA part.table_info({table})").fetchall())
                            cur.execute(f"DELETE FROM main.{table}")
                            cur.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM part.{table}")
                        row = cur.execute("SELECT position FROM part.view_tracking WHERE view = ?", (view,)).fetchone()
                        self.set_position(cur, view, int(row[0]) if row else 0)
            finally:
                conn.execute("DETACH DATABASE part")
        self._unlink(path)

    @contextmanager
    def switch(self, shadow: ViewStore) -> Iterator[Cursor]:
        assert isinstance(shadow, SQLiteViewStore)
        shadow.close()  # its rows are committed; the copy reads them through ATTACH
        conn = self._conn()
        with self._lock:
            conn.execute("ATTACH DATABASE ? AS rebuilt", (str(shadow.path),))
            try:
                with self.transaction() as cur:
                    yield cur
            finally:
                conn.execute("DETACH DATABASE rebuilt")

    def copy_in(self, cur: Cursor, table: str) -> None:
        cols = ", ".join(r[1] for r in cur.execute(f"PRAGMA rebuilt.table_info({table})").fetchall())
        cur.execute(f"DELETE FROM main.{table}")
        cur.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM rebuilt.{table}")

    def drop_shadow(self, shadow: ViewStore) -> None:
        assert isinstance(shadow, SQLiteViewStore)
        shadow.close()
        self._unlink(shadow.path)
        for p in self._parts():
            self._unlink(p)


class PostgresViewStore(ViewStore):
    kind = "postgres"

    SHADOW_SCHEMA = "esup_rebuild"

    def __init__(self, env: dict[str, str], schema: str | None = None, durable: bool = True) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.env = env
        self.schema = schema  # None: the server's default search path
        parts = [f"host={env['POSTGRES_HOST']}", f"port={env.get('POSTGRES_PORT', '5432')}",
                 f"user={env.get('POSTGRES_USER', 'postgres')}", f"dbname={env['POSTGRES_DBNAME']}"]
        if env.get("POSTGRES_PASSWORD"):
            parts.append(f"password={env['POSTGRES_PASSWORD']}")
        self.conninfo = " ".join(parts)
        kwargs: dict[str, Any] = {}
        if schema:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            kwargs["options"] = f"-c search_path={schema}"
        if not durable:
            # A rebuild's workspace: a commit does not wait for its WAL to reach the disk. A
            # crash loses at most the last few batches, never consistency (rows and positions
            # commit together), and a resumed rebuild replays them.
            kwargs["options"] = (kwargs.get("options", "") + " -c synchronous_commit=off").strip()
        self.pool = ConnectionPool(self.conninfo, min_size=1, max_size=4, open=True, kwargs=kwargs)
        with self.transaction() as cur:
            cur.execute(TRACKING_DDL)
            cur.execute(GENERATION_DDL)
            cur.execute(FAULTS_DDL)
            cur.execute(SKIPS_DDL)

    @contextmanager
    def transaction(self, pipeline: bool = True) -> Iterator[Cursor]:
        # Pipeline mode: writes go out without waiting for each answer (a view's batch is mostly
        # INSERT/UPDATE/DELETE); a fetch still waits for its own result. Over TCP, see pgserver.
        # Without it (``pipeline=False``) an error is raised by the statement that caused it.
        if not pipeline:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
                yield Cursor(raw, pg=True)
            return
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as raw:
            yield Cursor(raw, pg=True)

    def close(self) -> None:
        self.pool.close()

    # -- rebuilding beside a running server -------------------------------------------------------

    def shadow(self, fresh: bool, part: int = 0) -> PostgresViewStore:
        # A rebuild's workers share the shadow schema: each writes its own views' tables and
        # position rows, and row locks never make one wait for another.
        if fresh and not part:
            self._drop_schema()
        return PostgresViewStore(self.env, schema=self.SHADOW_SCHEMA, durable=False)

    def _drop_schema(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.SHADOW_SCHEMA} CASCADE")

    @contextmanager
    def switch(self, shadow: ViewStore) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
            yield Cursor(raw, pg=True)

    def copy_in(self, cur: Cursor, table: str) -> None:
        cols = ", ".join(r[0] for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
            " ORDER BY ordinal_position", (self.SHADOW_SCHEMA, table)).fetchall())
        # DELETE, not TRUNCATE: readers keep their snapshot of the old rows until commit.
        cur.execute(f"DELETE FROM {table}")
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {self.SHADOW_SCHEMA}.{table}")

    def drop_shadow(self, shadow: ViewStore) -> None:
        shadow.close()
        self._drop_schema()


def open_view_store(settings: Any) -> ViewStore:
    if settings.postgres:
        return PostgresViewStore(settings.postgres)
    return SQLiteViewStore(settings.data_dir / "views.sqlite")
