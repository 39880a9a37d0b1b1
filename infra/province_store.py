"""The province's own PostgreSQL store: the tables of its views and the Kafka offsets that
produced them (committed in the same transaction, so after a crash the offsets say exactly what
the rows contain).

Instants are integer epoch microseconds (``projections.instants.us``), like the district views.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

DDL = [
    "CREATE TABLE IF NOT EXISTS province_offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    " next_offset BIGINT NOT NULL, PRIMARY KEY (topic, partition))",
    # Every district's ledger records as received (the replay store): value is the record's bytes.
    "CREATE TABLE IF NOT EXISTS province_events (district TEXT NOT NULL, position BIGINT NOT NULL,"
    " schema TEXT NOT NULL, case_no TEXT NOT NULL, topic TEXT NOT NULL, version INTEGER NOT NULL, day TEXT NOT NULL,"
    " leaf BYTEA, payload JSONB NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (district, position))",
    "CREATE INDEX IF NOT EXISTS province_events_case ON province_events (district, case_no, position)",
    "CREATE INDEX IF NOT EXISTS province_events_day ON province_events (district, day)",
    "CREATE TABLE IF NOT EXISTS province_cases (district TEXT NOT NULL, case_no TEXT NOT NULL,"
    " department TEXT, item_code TEXT, status TEXT NOT NULL, submitted_at BIGINT, accepted_at BIGINT,"
    " closed_at BIGINT, on_time BOOLEAN, promised_due_at BIGINT, legal_due_at BIGINT, suspended BOOLEAN NOT NULL,"
    " status_position BIGINT NOT NULL, due_position BIGINT NOT NULL, suspend_position BIGINT NOT NULL,"
    " events INTEGER NOT NULL, PRIMARY KEY (district, case_no))",
    "CREATE INDEX IF NOT EXISTS province_cases_dept ON province_cases (department)",
    "CREATE TABLE IF NOT EXISTS province_warnings (district TEXT NOT NULL, warning_id TEXT NOT NULL,"
    " case_no TEXT NOT NULL, department TEXT, item_code TEXT, level TEXT, rule TEXT, status TEXT NOT NULL,"
    " threshold_at BIGINT, issued_at BIGINT, promised_due_at BIGINT, legal_due_at BIGINT,"
    " position BIGINT NOT NULL, PRIMARY KEY (district, warning_id))",
    "CREATE TABLE IF NOT EXISTS province_anomalies (district TEXT NOT NULL, anomaly_id TEXT NOT NULL,"
    " case_no TEXT NOT NULL, rule TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, department TEXT,"
    " reason TEXT, occurred_at TEXT, position BIGINT NOT NULL, PRIMARY KEY (district, anomaly_id))",
    "CREATE TABLE IF NOT EXISTS province_digests (district TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL,"
    " root TEXT NOT NULL, positions JSONB NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (district, day))",
    "CREATE TABLE IF NOT EXISTS province_reports (district TEXT NOT NULL, day TEXT NOT NULL, status TEXT NOT NULL,"
    " expected_count INTEGER NOT NULL, held_count INTEGER NOT NULL, expected_root TEXT NOT NULL,"
    " held_root TEXT NOT NULL, missing JSONB NOT NULL, extra JSONB NOT NULL, differing JSONB NOT NULL,"
    " checked_at BIGINT NOT NULL, resend_requested JSONB NOT NULL, PRIMARY KEY (district, day))",
    "CREATE TABLE IF NOT EXISTS province_checkpoints (district TEXT NOT NULL, size BIGINT NOT NULL, root TEXT NOT NULL,"
    " note TEXT NOT NULL, position BIGINT NOT NULL, issued_at TEXT, verifier_key TEXT NOT NULL,"
    " cosignature TEXT NOT NULL, cosigned_note TEXT NOT NULL, accepted_at BIGINT NOT NULL,"
    " PRIMARY KEY (district, size))",
    "CREATE TABLE IF NOT EXISTS province_alarms (district TEXT NOT NULL, code TEXT NOT NULL, position BIGINT NOT NULL,"
    " detail TEXT NOT NULL, evidence JSONB NOT NULL, raised_at BIGINT NOT NULL, PRIMARY KEY (district, code, position))",
    "CREATE TABLE IF NOT EXISTS province_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

# The tables that are views of the topics (a rebuild from the topics must give the same rows).
VIEW_TABLES = ("province_events", "province_cases", "province_warnings", "province_anomalies", "province_digests",
               "province_checkpoints", "province_alarms")


class ProvinceStore:
    def __init__(self, dsn: str) -> None:
        import psycopg

        self.dsn = dsn
        self._psycopg = psycopg
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(72010)")  # two consumers starting at once
            for sql in DDL:
                cur.execute(sql)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One connection, one transaction: committed on success, rolled back on error."""
        with self._psycopg.connect(self.dsn) as conn:
            with conn.transaction():
                with conn.cursor() as cur:
                    yield cur

    @contextmanager
    def read(self) -> Iterator[Any]:
        with self._psycopg.connect(self.dsn, autocommit=True) as conn:
            with conn.cursor() as cur:
                yield cur

    def offsets(self, topic: str) -> dict[int, int]:
        with self.read() as cur:
            cur.execute("SELECT partition, next_offset FROM province_offsets WHERE topic = %s", (topic,))
            return {int(p): int(o) for p, o in cur.fetchall()}

    def key(self, name: str, make: Any) -> str:
        """A secret kept in the store (the witness key), made on first use."""
        with self.transaction() as cur:
            cur.execute("SELECT value FROM province_keys WHERE name = %s", (name,))
            row = cur.fetchone()
            if row:
                return row[0]
            value = make()
            cur.execute("INSERT INTO province_keys (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                        (name, value))
            cur.execute("SELECT value FROM province_keys WHERE name = %s", (name,))
            return cur.fetchone()[0]

    def dump(self, tables: tuple[str, ...] = VIEW_TABLES, leave_out: dict[str, tuple[str, ...]] | None = None
             ) -> dict[str, list[tuple]]:
        """Every row of the view tables, sorted (to compare two provinces)."""
        leave_out = leave_out or {}
        out = {}
        with self.read() as cur:
            for table in tables:
                cur.execute(f"SELECT * FROM {table} LIMIT 0")
                cols = [d.name for d in cur.description if d.name not in leave_out.get(table, ())]
                cur.execute(f"SELECT {', '.join(cols)} FROM {table}")
                out[table] = sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                                     for r in cur.fetchall()), key=repr)
        return out
