"""A batch's rows in memory: read for the batch's keys in one query, written back in bulk.

Views process the log a batch at a time (``View.begin`` / ``apply`` / ``flush``). Rather than a
round trip per event, a view loads the rows of every case the batch touches with one ``SELECT
... IN (...)`` per table, applies the batch's events to those rows in memory, and writes what
changed with one ``executemany`` per table: an upsert for changed rows, a delete for removed
ones. On PostgreSQL psycopg pipelines ``executemany``; on SQLite it is one prepared statement.

* :class:`Keyed`: one row per key (a case's board row, a warning's row).
* :class:`Grouped`: the rows of one group (a case's pending timers, by rule), rewritten whole
  when the group changed.

Between batches a table may keep what it read (``keep``: up to that many keys; all are dropped
at once beyond it), so a case touched by the next batch too is not read again. Only a view
that is its table's one writer keeps rows: the runner makes a view ``forget`` them when another
process moved it, when a rebuild replaced its tables, and when a batch failed.

Rows are plain dicts keyed by column name (``json`` columns hold the decoded value in memory); a view must ``load`` the keys a batch needs before
it reads them (``get`` of a key not loaded raises, so a forgotten load cannot read stale data).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import orjson

from projections.store import Cursor

CHUNK = 500  # keys per IN (...) list
_INTS = frozenset({"bigint", "integer", "smallint"})
_FLOATS = frozenset({"double precision", "real"})
_TEXTS = frozenset({"text", "character varying"})


def write_rows(cur: Cursor, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], suffix: str = "",
               types: dict[str, tuple[str, ...]] | None = None) -> None:
    """``INSERT INTO table (columns) VALUES ... suffix`` for many rows. SQLite: ``executemany``
    (one prepared statement). PostgreSQL: one ``INSERT ... SELECT FROM unnest()`` of one array
    per column, because ``executemany`` sends a statement per row, each answered apart even
    pipelined (it was most of a PostgreSQL rebuild's time in psycopg). The arrays are typed
    from the table's columns (``types``: a cache, per table); a column whose values are not of
    its type's one Python type (an int in a text column, say) falls back to ``executemany``, so
    every value is converted by the server exactly as before. ``rows`` must not repeat a key
    the suffix's ``ON CONFLICT ... DO UPDATE`` updates (one statement cannot update a row twice)."""
    if not rows:
        return
    cols = ", ".join(columns)
    if cur._pg:
        pg_types = types.get(table) if types is not None else None
        if pg_types is None:
            found = dict(cur.execute("SELECT column_name, data_type FROM information_schema.columns"
                                     " WHERE table_schema = current_schema() AND table_name = ?", (table,)).fetchall())
            pg_types = tuple(found.get(c, "") for c in columns)
            if types is not None:
                types[table] = pg_types
        arrays = _pg_arrays(rows, pg_types)
        if arrays is not None:
            casts = ", ".join(f"%b::{t}[]" for t in pg_types)  # binary: no text escaping of each element
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT * FROM unnest({casts}){suffix}", arrays)
            return
    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))}){suffix}", rows)


def _pg_arrays(rows: Sequence[tuple[Any, ...]], types: tuple[str, ...]) -> list[list[Any]] | None:
    arrays = [list(c) for c in zip(*rows)]
    for i, (values, t) in enumerate(zip(arrays, types)):
        kinds = set(map(type, values))
        kinds.discard(type(None))
        if not kinds:
            continue
        if t in _INTS or t == "boolean":
            ok = kinds == ({int} if t in _INTS else {bool})
        elif t in _FLOATS:
            ok = kinds <= {int, float}
            if ok and int in kinds:  # what the server's int -> float cast gives, exactly
                arrays[i] = [None if v is None else float(v) for v in values]
        elif t in _TEXTS:
            ok = kinds == {str}
        elif t == "bytea":
            ok = kinds <= {bytes}
        else:
            ok = False
        if not ok:
            return None
    return arrays


def _chunks(values: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]


def _where_in(cur: Cursor, statement: str, column: str, keys: Sequence[Any]) -> Iterable[tuple[str, tuple[Any, ...]]]:
    """``statement`` (with ``{where}``) for rows whose ``column`` is one of ``keys``, as
    (sql, params) pairs. PostgreSQL: one ``column = ANY(?)`` with the keys as one array, the
    same statement whatever their number (an ``IN`` list of 500 placeholders was parsed anew
    by psycopg and the server for each batch). SQLite: ``IN`` lists of ``CHUNK`` keys."""
    if not keys:
        return
    if cur._pg:
        yield statement.format(where=f"{column} = ANY(?)"), (list(keys),)
        return
    for chunk in _chunks(keys):
        yield statement.format(where=f"{column} IN ({', '.join('?' * len(chunk))})"), tuple(chunk)


class NotLoaded(KeyError):
    pass


class Keyed:
    def __init__(self, table: str, columns: Sequence[str], key: str = "case_id", json: Sequence[str] = (),
                 keep: int = 0) -> None:
        self.keep = keep
        self.table = table
        self.columns = tuple(columns)
        self.key = key
        self.json = tuple(json)
        self._key_at = self.columns.index(key)
        self.rows: dict[Any, dict[str, Any] | None] = {}
        self.dirty: set[Any] = set()
        cols = ", ".join(self.columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c != key)
        self._select = f"SELECT {cols} FROM {table} WHERE {{where}}"
        self._on_conflict = f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
        self._types: dict[str, tuple[str, ...]] = {}
        self._delete = f"DELETE FROM {table} WHERE {{where}}"

    def load(self, cur: Cursor, keys: Iterable[Any], by: str | None = None) -> list[dict[str, Any]]:
        """Read the rows of these keys (or of rows whose column ``by`` is in ``keys``) not yet in
        memory; keys found nowhere are remembered as absent. Returns the rows read."""
        col = by or self.key
        want = sorted({k for k in keys if by or k not in self.rows})
        found: list[dict[str, Any]] = []
        for sql, params in _where_in(cur, self._select, col, want):
            for r in cur.execute(sql, params).fetchall():
                k = r[self._key_at]
                if k not in self.rows:
                    row = dict(zip(self.columns, r))
                    for c in self.json:
                        row[c] = orjson.loads(row[c])
                    self.rows[k] = row
                    found.append(row)
        if by is None:
            for k in want:
                self.rows.setdefault(k, None)
        return found

    def get(self, key: Any) -> dict[str, Any] | None:
        try:
            return self.rows[key]
        except KeyError:
            raise NotLoaded(f"{self.table}: row {key!r} read before it was loaded") from None

    def put(self, row: dict[str, Any]) -> dict[str, Any]:
        if len(row) != len(self.columns):  # a new row: the columns not given are NULL
            row = {**dict.fromkeys(self.columns), **row}
        k = row[self.key]
        self.rows[k] = row
        self.dirty.add(k)
        return row

    def touch(self, key: Any) -> None:
        """The row (from ``get``) was changed in place."""
        self.dirty.add(key)

    def delete(self, key: Any) -> None:
        self.rows[key] = None
        self.dirty.add(key)

    def flush(self, cur: Cursor) -> None:
        gone = [k for k in self.dirty if self.rows.get(k) is None]
        live = [self.rows[k] for k in self.dirty if self.rows.get(k) is not None]
        for sql, params in _where_in(cur, self._delete, self.key, gone):
            cur.execute(sql, params)
        write_rows(cur, self.table, self.columns, [_encoded(r, self.columns, self.json) for r in live],  # type: ignore[arg-type]
                   self._on_conflict, self._types)
        self.dirty.clear()

    def begin_batch(self) -> bool:
        """A new batch: keep what was read (within ``keep``) or start empty. True if emptied."""
        self.dirty.clear()
        if len(self.rows) > self.keep:
            self.rows.clear()
            return True
        return False

    def clear(self) -> None:
        self.rows.clear()
        self.dirty.clear()


class Grouped:
    def __init__(self, table: str, columns: Sequence[str], group: str = "case_id", sub: str = "rule",
                 json: Sequence[str] = (), keep: int = 0) -> None:
        self.keep = keep
        self.table = table
        self.columns = tuple(columns)
        self.json = tuple(json)
        self.group = group
        self.sub = sub
        self._group_at = self.columns.index(group)
        self._sub_at = self.columns.index(sub)
        self.groups: dict[Any, dict[Any, dict[str, Any]]] = {}
        self.dirty: set[Any] = set()
        cols = ", ".join(self.columns)
        self._select = f"SELECT {cols} FROM {table} WHERE {{where}}"
        self._types: dict[str, tuple[str, ...]] = {}
        self._delete = f"DELETE FROM {table} WHERE {{where}}"

    def load(self, cur: Cursor, groups: Iterable[Any]) -> None:
        want = sorted({g for g in groups if g not in self.groups})
        for g in want:
            self.groups[g] = {}
        for sql, params in _where_in(cur, self._select, self.group, want):
            for r in cur.execute(sql, params).fetchall():
                row = dict(zip(self.columns, r))
                for c in self.json:
                    row[c] = orjson.loads(row[c])
                self.groups[r[self._group_at]][r[self._sub_at]] = row

    def loaded(self, group: Any) -> bool:
        return group in self.groups

    def rows(self, group: Any) -> dict[Any, dict[str, Any]]:
        """The group's rows by sub-key, to read; ``put``/``remove`` change them."""
        try:
            return self.groups[group]
        except KeyError:
            raise NotLoaded(f"{self.table}: group {group!r} read before it was loaded") from None

    def put(self, row: dict[str, Any]) -> None:
        if len(row) != len(self.columns):
            row = {**dict.fromkeys(self.columns), **row}
        g = row[self.group]
        self.rows(g)[row[self.sub]] = row
        self.dirty.add(g)

    def remove(self, group: Any, sub: Any) -> dict[str, Any] | None:
        row = self.rows(group).pop(sub, None)
        if row is not None:
            self.dirty.add(group)
        return row

    def clear_group(self, group: Any) -> None:
        if self.rows(group):
            self.groups[group] = {}
            self.dirty.add(group)

    def touch(self, group: Any) -> None:
        self.dirty.add(group)

    def flush(self, cur: Cursor) -> None:
        dirty = sorted(self.dirty)
        for sql, params in _where_in(cur, self._delete, self.group, dirty):
            cur.execute(sql, params)
        write_rows(cur, self.table, self.columns, [_encoded(r, self.columns, self.json)
                                                   for g in dirty for r in self.groups[g].values()], "", self._types)
        self.dirty.clear()

    def begin_batch(self) -> bool:
        self.dirty.clear()
        if len(self.groups) > self.keep:
            self.groups.clear()
            return True
        return False

    def clear(self) -> None:
        self.groups.clear()
        self.dirty.clear()


def _encoded(row: dict[str, Any], columns: Sequence[str], json: Sequence[str]) -> tuple[Any, ...]:
    if not json:
        return tuple(map(row.get, columns))  # about half the time of a generator
    return tuple(orjson.dumps(row[c]).decode() if c in json else row.get(c) for c in columns)
