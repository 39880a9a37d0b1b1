"""Refusals kept bounded: exact counts per source and code, and the last N refusals per source.

A refused step is not a fact about a case, so it is not kept as an event: a buggy or hostile
source with a valid key would otherwise grow the ledger without bound (902 records after one
fuzzing run). Two small tables beside the ledger's own, in the same database, hold instead
one counter row per (source, code) and a ring of ``sample`` rows per source (slot = running
number modulo ``sample``, overwritten in place): storage grows with the number of sources and
codes, never with the number of refusals. Upserts keep the counts exact under concurrent
writers on both stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

_TABLES = ("esup_refusal_counts", "esup_refusal_totals", "esup_refusal_sample")


class RefusalStore:
    def __init__(self, recorder: Any, sample: int = 100) -> None:
        if sample < 1:
            raise ValueError("the refusal sample holds at least one refusal per source")
        self.datastore = recorder.datastore
        self.sample = sample
        self.pg = type(self.datastore).__name__ == "PostgresDatastore"
        prefix = f'"{self.datastore.schema}".' if self.pg else ""
        self.counts_t, self.totals_t, self.sample_t = (prefix + t for t in _TABLES)
        self._create()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def _create(self) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.counts_t} (source TEXT NOT NULL, code TEXT NOT NULL,"
                        " n BIGINT NOT NULL, PRIMARY KEY (source, code))")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.totals_t} (source TEXT PRIMARY KEY, n BIGINT NOT NULL)")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.sample_t} (source TEXT NOT NULL, slot INTEGER NOT NULL,"
                " seq BIGINT NOT NULL, at TEXT NOT NULL, event_id TEXT, case_no TEXT, step TEXT, code TEXT NOT NULL,"
                " detail TEXT NOT NULL, PRIMARY KEY (source, slot))"
            )

    def record(self, refusals: list[dict[str, Any]]) -> None:
        """Count each refusal and keep it in its source's ring, all in one transaction."""
        with self.datastore.transaction(commit=True) as cur:
            for r in refusals:
                r = {**r, "source": _text(r["source"]) or "?"}
                cur.execute(self._sql(
                    f"INSERT INTO {self.counts_t} (source, code, n) VALUES (?, ?, 1)"
                    f" ON CONFLICT (source, code) DO UPDATE SET n = {self.counts_t.split('.')[-1]}.n + 1"
                ), (r["source"], r["code"]))
                cur.execute(self._sql(
                    f"INSERT INTO {self.totals_t} (source, n) VALUES (?, 1)"
                    f" ON CONFLICT (source) DO UPDATE SET n = {self.totals_t.split('.')[-1]}.n + 1 RETURNING n"
                ), (r["source"],))
                seq = int(_first(cur.fetchone()))
                at = r["at"].isoformat() if isinstance(r["at"], datetime) else str(r["at"])
                cur.execute(self._sql(
                    f"INSERT INTO {self.sample_t} (source, slot, seq, at, event_id, case_no, step, code, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, slot) DO UPDATE SET seq = excluded.seq,"
                    " at = excluded.at, event_id = excluded.event_id, case_no = excluded.case_no, step = excluded.step,"
                    " code = excluded.code, detail = excluded.detail"
                ), (r["source"], (seq - 1) % self.sample, seq, at, _text(r.get("event_id")), _text(r.get("case_no")),
                    _text(r.get("step")), r["code"], _text(r["detail"][:500])))

    def counts(self) -> dict[str, dict[str, int]]:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT source, code, n FROM {self.counts_t}")
            rows = cur.fetchall()
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            source, code, n = _values(row, ("source", "code", "n"))
            out.setdefault(source, {})[code] = int(n)
        return out

    def recent(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each source's kept refusals, newest first (at most ``sample``; ``limit`` fewer)."""
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT source, seq, at, event_id, case_no, step, code, detail FROM {self.sample_t}"
                        " ORDER BY source, seq DESC")
            rows = cur.fetchall()
        cols = ("source", "seq", "at", "event_id", "case_no", "step", "code", "detail")
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            r = dict(zip(cols, _values(row, cols)))
            kept = out.setdefault(r.pop("source"), [])
            if limit is None or len(kept) < limit:
                kept.append(r)
        return out

    def rows(self) -> int:
        """Rows held in all three tables (what a flood of refusals may grow)."""
        n = 0
        with self.datastore.transaction(commit=False) as cur:
            for t in (self.counts_t, self.totals_t, self.sample_t):
                cur.execute(f"SELECT COUNT(*) AS n FROM {t}")
                n += int(_first(cur.fetchone()))
        return n


def _text(value: str | None) -> str | None:
    """What a hostile source sent, storable as text everywhere (PostgreSQL refuses NUL)."""
    return value.replace("\x00", "\\u0000") if value else value


def _first(row: Any) -> Any:
    if isinstance(row, dict):
        return next(iter(row.values()))
    return row[0]


def _values(row: Any, cols: tuple[str, ...]) -> tuple[Any, ...]:
    if isinstance(row, dict):
        return tuple(row[c] for c in cols)
    return tuple(row)
