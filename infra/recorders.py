"""The ledger's recorders: the library's, plus a guard checked inside the insert's transaction.

A warning (预警) is decided from a case's events and saved as events of another aggregate, so
the library's optimistic concurrency (one aggregate, one version) cannot see a step of the case
that lands between "check the case" and "save the warning". ``save(warning, guard=[(case_id,
version)])`` closes that window: the recorder takes the store's write lock (SQLite: the insert
itself; PostgreSQL: the library's ``LOCK TABLE ... IN EXCLUSIVE MODE``, which every insert takes),
then checks that each guarded aggregate's last stored version is still the one the decision was
made from, all in the transaction that inserts the warning. If a step slipped in, nothing is
stored and ``CaseMoved`` says which case moved. Two writers, one decision.
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

Guard = Sequence[tuple[UUID | str, int]]


class CaseMoved(Exception):
    """A guarded aggregate has events after the version a decision was made from."""

    def __init__(self, moved: dict[str, tuple[int, int | None]]) -> None:
        self.moved = moved  # case id -> (expected version, stored version)
        super().__init__(", ".join(f"{k}: planned at v{e}, now v{s}" for k, (e, s) in moved.items()))


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


class GuardedSQLiteRecorder(SQLiteApplicationRecorder):
    def select_events_from(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        """The events of many aggregates in one query: of each ``(id, version)``, those from
        ``version`` on (0: all), in (aggregate, version) order."""
        out: list[StoredEvent] = []
        for i in range(0, len(after), 400):  # SQLite's bound-parameter limit is 32,766 (999 before 3.32)
            chunk = after[i:i + 400]
            values = ",".join("(?,?)" for _ in chunk)
            params: list[Any] = []
            for originator, version in chunk:
                params.append(_uuid(originator).hex)
                params.append(version)
            with self.datastore.transaction(commit=False) as c:
                c.execute(f"WITH a(id, v) AS (VALUES {values}) SELECT e.originator_id, e.originator_version, e.topic, "
                          f"e.state FROM a JOIN {self.events_table_name} e ON e.originator_id = a.id "
                          "AND e.originator_version >= a.v ORDER BY e.originator_id, e.originator_version", params)
                out.extend(StoredEvent(originator_id=UUID(row[0]), originator_version=row[1], topic=row[2], state=row[3])
                           for row in c.fetchall())
        return out

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # Insert first: the first write of a transaction takes SQLite's write lock, so no other
        # connection can commit until this one ends and the check below reads the newest state.
        ids = self._insert_rows(c, stored_events)
        guard: Guard | None = kwargs.get("guard")
        if guard:
            moved = {}
            for originator, expected in guard:
                c.execute(f"SELECT MAX(originator_version) AS v FROM {self.events_table_name} WHERE originator_id = ?",
                          (_uuid(originator).hex,))
                row = c.fetchone()
                stored = row["v"] if row is not None else None
                if stored != expected:
                    moved[str(originator)] = (expected, stored)
            if moved:
                raise CaseMoved(moved)
        return ids


    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The library's rows, sent with one ``executemany`` instead of an ``execute`` per row
        (ingest's batches are a thousand rows). The rows' ids, which ``executemany`` does not
        report, are consecutive: SQLite gives a new row the largest rowid plus one, and this
        transaction holds the write lock from the first row on. That holds unless the largest
        rowid ever reached 2**63-1 (then SQLite picks at random); the newest row being the
        largest proves it did not, else each row's id is read back."""
        n = len(stored_events)
        if n < 2:
            return list(super()._insert_events(c, stored_events) or [])
        c.executemany(self.insert_events_statement, [
            (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
             s.originator_version, s.topic, s.state) for s in stored_events])
        c.execute(f"SELECT last_insert_rowid(), (SELECT MAX(rowid) FROM {self.events_table_name})")
        last, largest = c.fetchone()
        if last == largest:
            return list(range(last - n + 1, last + 1))
        ids = []  # pragma: no cover - a table whose rowids ran out
        for s in stored_events:  # pragma: no cover
            c.execute(f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?",
                      (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id, s.originator_version))
            ids.append(c.fetchone()[0])
        return ids  # pragma: no cover

    def existing(self, originator_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have any stored event: one query for a batch of ids."""
        if not originator_ids:
            return set()
        marks = ", ".join("?" for _ in originator_ids)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} WHERE originator_id IN ({marks})",
                      [o.hex for o in originator_ids])
            return {UUID(r["originator_id"]) for r in c.fetchall()}


class GuardedPostgresRecorder(PostgresApplicationRecorder):
    def existing(self, originator_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have any stored event: one query for a batch of ids."""
        if not originator_ids:
            return set()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.existing_statement(), (list(originator_ids),))
            return {_uuid(r["originator_id"]) for r in curs.fetchall()}

    def select_events_from(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        """The events of many aggregates in one round trip: of each ``(id, version)``, those
        from ``version`` on (0: all), in (aggregate, version) order."""
        if not after:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_from_statement(), ([_uuid(o) for o, _ in after], [v for _, v in after]),
                         prepare=True)
            return [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                topic=row["topic"], state=bytes(row["state"])) for row in curs.fetchall()]

    def select_events_from_statement(self) -> Any:
        """The query of ``select_events_from``: one index lookup per aggregate, whatever the log's
        size. As a plain join of the ids with the table, the planner merge-joins them with a
        scan of the whole primary-key index once the log is large (it must sort by
        originator_id anyway and misjudges the ``>=``): at 2.5 million events one batch's load
        took 2 to 5 s and ingest slowed tenfold within 250,000 steps. ``OFFSET 0`` keeps the
        lateral subquery from being flattened back into that join."""
        from psycopg.sql import SQL, Identifier

        return SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(%s::uuid[], %s::bigint[]) "
            "AS a(id, v) CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state FROM {0}.{1} "
            "WHERE originator_id = a.id AND originator_version >= a.v OFFSET 0) e "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def existing_statement(self) -> Any:
        """The query of ``existing``: one index probe per id (a lateral subquery with LIMIT is
        never flattened). As ``SELECT DISTINCT ... WHERE originator_id = ANY(...)`` the planner
        scans the whole primary-key index once the log is large (2.5 s a batch at 3.8 million
        steps)."""
        from psycopg.sql import SQL, Identifier

        return SQL("SELECT a.id AS originator_id FROM unnest(%s::uuid[]) AS a(id) CROSS JOIN LATERAL "
                   "(SELECT 1 FROM {0}.{1} WHERE originator_id = a.id LIMIT 1) e").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def newest_versions_statement(self) -> Any:
        """The guard's query: each aggregate's newest stored version, one index probe per id
        (an aggregate subquery per id, for the same reason as ``existing_statement``)."""
        from psycopg.sql import SQL, Identifier

        return SQL("SELECT a.id AS originator_id, m.v FROM unnest(%s::uuid[]) AS a(id) CROSS JOIN LATERAL "
                   "(SELECT MAX(originator_version) AS v FROM {0}.{1} WHERE originator_id = a.id) m "
                   "WHERE m.v IS NOT NULL").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        guard: Guard | None = kwargs.get("guard")
        if guard:
            self._lock_table(curs)  # the lock every insert takes; taken again below, harmlessly
            curs.execute(self.newest_versions_statement(), ([_uuid(o) for o, _ in guard],))
            stored = {str(r["originator_id"]): r["v"] for r in curs.fetchall()}
            moved = {str(o): (e, stored.get(str(_uuid(o)))) for o, e in guard if stored.get(str(_uuid(o))) != e}
            if moved:
                raise CaseMoved(moved)
        # As the library's insert (the table lock, the notification, one INSERT ... RETURNING),
        # but the rows go as four binary arrays rather than one array of a composite type, which
        # psycopg writes as text, escaping every state's bytes with a regular expression (a
        # fifth of ingest's time on PostgreSQL).
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self._insert_arrays_statement(), (
            [_uuid(e.originator_id) for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events],
        ))

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        # The library's read, with the rows as tuples: a dict per returned id was a twentieth
        # of ingest's time on PostgreSQL (a thousand ids a batch).
        import psycopg
        from eventsourcing.persistence import ProgrammingError
        from psycopg.rows import tuple_row

        assert curs.statusmessage and curs.statusmessage.startswith("INSERT"), curs.statusmessage
        curs.row_factory = tuple_row
        try:
            return [row[0] for row in curs.fetchall()]
        except psycopg.ProgrammingError as e:
            raise ProgrammingError(f"Couldn't get all notification IDs (expected {len(stored_events)})") from e

    def _insert_arrays_statement(self) -> Any:
        statement = getattr(self, "_insert_arrays", None)
        if statement is None:
            from psycopg.sql import SQL, Identifier

            statement = self._insert_arrays = SQL(
                "INSERT INTO {0}.{1} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
            ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        return statement


SQLITE_TOPIC = "infra.recorders:GuardedSQLiteRecorder"
POSTGRES_TOPIC = "infra.recorders:GuardedPostgresRecorder"
