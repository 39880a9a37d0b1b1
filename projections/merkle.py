"""The ledger's Merkle tree (RFC 6962), kept as case events are recorded.

One leaf per case event (``domain.case.CASE_TOPICS``) in notification-log order; the leaf's data
is the 32 bytes of the event's chain hash, so a leaf binds the case, the version, the step, the
recording time and everything the chain hash covers. Leaf 0 is the first case event in the log.

Tables (this module alone reads and writes them; others call the query functions below):
- ``merkle_leaves``: index, log position, case id, version, leaf hash: the index of the log
  that locates a fault (``esup verify``) and answers "which leaf is case X version V";
- ``merkle_nodes``: the complete subtrees of 2**4 leaves and up (one row per 16 leaves, about),
  so a proof at any size reads O(log n) rows; smaller subtrees come from the leaves;
- ``merkle_state``: the frontier (a compact range: one hash per set bit of the size), the size
  and the position of the last leaf, updated once per batch: appending is O(log n);
- ``merkle_cases``: case id to case number (only a case's first event carries its number);
- ``merkle_checkpoints``: the signed checkpoints recorded in the ledger, indexed by size.

The frontier is cached between batches; the runner makes the view forget it when another
process moved the view or a rebuild replaced the tables.
"""

from __future__ import annotations

from typing import Any, Iterator

from domain import merkle
from domain.case import CASE_TOPICS
from domain.checkpoint import CHECKPOINT_TOPICS
from domain.merkle import CompactRange
from projections.instants import us
from projections.runner import View
from projections.store import Cursor, ViewStore

MIN_STORED_LEVEL = 4  # nodes of 16 leaves and up are stored; below, computed from the leaves


def _blob(cur: Cursor) -> str:
    return "BYTEA" if cur._pg else "BLOB"


def insert_rows(cur: Cursor, table: str, columns: str, rows: list[tuple[Any, ...]], pg_types: tuple[str, ...],
                suffix: str = "") -> None:
    """Many rows at once: SQLite's executemany; on PostgreSQL one INSERT ... SELECT FROM unnest()
    of one array per column (a statement per row costs a round trip each, even pipelined, and a
    long multi-row VALUES costs psycopg more to parse than the server to run)."""
    if not rows:
        return
    if not cur._pg:
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(rows[0]))}){suffix}", rows)
        return
    arrays = ", ".join(f"%b::{t}[]" for t in pg_types)  # binary: no text escaping of each element
    cur.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}){suffix}", [list(c) for c in zip(*rows)])


class MerkleTreeView(View):
    """A Merkle tree over the events of some topics, in log order (subclasses say which, and
    what a leaf's data is)."""

    tree = "tree"
    prefix = "tree"
    leaf_topics: tuple[str, ...] = ()
    version = 1

    def __init__(self) -> None:
        self.topics = tuple(self.leaf_topics) + CHECKPOINT_TOPICS
        self.tables = (f"{self.prefix}_leaves", f"{self.prefix}_nodes", f"{self.prefix}_state",
                       f"{self.prefix}_checkpoints", *self.extra_tables())
        self._range: CompactRange | None = None
        self._position = 0
        self._leaves: list[tuple[Any, ...]] = []
        self._nodes: list[tuple[Any, ...]] = []

    # -- what subclasses say ------------------------------------------------------------------

    def extra_tables(self) -> tuple[str, ...]:
        return ()

    def create_extra(self, cur: Cursor) -> None:
        pass

    def leaf_data(self, event: Any) -> bytes:
        raise NotImplementedError

    def process_extra(self, cur: Cursor, event: Any, notification_id: int, index: int) -> None:
        pass

    def flush_extra(self, cur: Cursor) -> None:
        pass

    # -- the view -----------------------------------------------------------------------------

    def create(self, cur: Cursor) -> None:
        b, p = _blob(cur), self.prefix
        cur.execute(f"CREATE TABLE IF NOT EXISTS {p}_leaves (idx BIGINT PRIMARY KEY, position BIGINT NOT NULL,"
                    f" originator_id TEXT NOT NULL, version INTEGER NOT NULL, hash {b} NOT NULL)")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {p}_leaves_event ON {p}_leaves (originator_id, version)")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {p}_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL,"
                    f" hash {b} NOT NULL, PRIMARY KEY (level, idx))")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {p}_state (tree TEXT PRIMARY KEY, size BIGINT NOT NULL,"
                    f" frontier {b} NOT NULL, position BIGINT NOT NULL)")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {p}_checkpoints (size BIGINT PRIMARY KEY, root {b} NOT NULL,"
                    " note TEXT NOT NULL, issued_at BIGINT NOT NULL, position BIGINT NOT NULL,"
                    " recorded_position BIGINT NOT NULL)")
        self.create_extra(cur)

    def forget(self) -> None:
        self._range = None
        self._leaves.clear()
        self._nodes.clear()

    def _load(self, cur: Cursor) -> CompactRange:
        if self._range is None:
            row = cur.execute(f"SELECT size, frontier, position FROM {self.prefix}_state WHERE tree = ?",
                              (self.tree,)).fetchone()
            if row is None:
                self._range, self._position = CompactRange(), 0
            else:
                self._range, self._position = CompactRange.load(int(row[0]), bytes(row[1])), int(row[2])
        return self._range

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        if event.TOPIC in CHECKPOINT_TOPICS:
            if event.tree == self.tree:
                cur.execute(f"INSERT INTO {self.prefix}_checkpoints (size, root, note, issued_at, position,"
                            " recorded_position) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (size) DO NOTHING",
                            (event.size, bytes.fromhex(event.root), event.note, us(event.timestamp), event.position,
                             notification_id))
            return
        cr = self._load(cur)
        index = cr.size
        leaf = merkle.leaf_hash(self.leaf_data(event))
        self._leaves.append((index, notification_id, str(event.originator_id), event.originator_version, leaf))
        for level, idx, digest in cr.append(leaf):
            if level >= MIN_STORED_LEVEL:
                self._nodes.append((level, idx, digest))
        self._position = notification_id
        self.process_extra(cur, event, notification_id, index)

    def flush(self, cur: Cursor) -> None:
        if not self._leaves:
            return
        p = self.prefix
        insert_rows(cur, f"{p}_leaves", "idx, position, originator_id, version, hash", self._leaves,
                    ("bigint", "bigint", "text", "integer", "bytea"))
        insert_rows(cur, f"{p}_nodes", "level, idx, hash", self._nodes, ("integer", "bigint", "bytea"))
        cr = self._range
        assert cr is not None
        cur.execute(f"INSERT INTO {p}_state (tree, size, frontier, position) VALUES (?, ?, ?, ?) ON CONFLICT (tree)"
                    " DO UPDATE SET size = excluded.size, frontier = excluded.frontier, position = excluded.position",
                    (self.tree, cr.size, cr.dump(), self._position))
        self.flush_extra(cur)
        self._leaves.clear()
        self._nodes.clear()


class LedgerTree(MerkleTreeView):
    """The ledger's tree: one leaf per case event, its data the event's chain hash."""

    name = "merkle"
    tree = "ledger"
    prefix = "merkle"
    leaf_topics = CASE_TOPICS

    def __init__(self) -> None:
        super().__init__()
        self._cases: list[tuple[str, str]] = []

    def extra_tables(self) -> tuple[str, ...]:
        return ("merkle_cases",)

    def create_extra(self, cur: Cursor) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS merkle_cases (originator_id TEXT PRIMARY KEY, case_no TEXT NOT NULL)")

    def leaf_data(self, event: Any) -> bytes:
        return bytes.fromhex(event.hash)

    def process_extra(self, cur: Cursor, event: Any, notification_id: int, index: int) -> None:
        if event.originator_version == 1:
            self._cases.append((str(event.originator_id), event.case_no))

    def flush_extra(self, cur: Cursor) -> None:
        insert_rows(cur, "merkle_cases", "originator_id, case_no", self._cases, ("text", "text"),
                    suffix=" ON CONFLICT (originator_id) DO NOTHING")
        self._cases.clear()

    def forget(self) -> None:
        super().forget()
        self._cases.clear()


# -- queries (on a view store; ``prefix`` names the tree's tables) -----------------------------------


class Head(tuple):
    """(size, root, position) of a tree as the view holds it."""

    @property
    def size(self) -> int:
        return self[0]

    @property
    def root(self) -> bytes:
        return self[1]

    @property
    def position(self) -> int:
        return self[2]


def head(store: ViewStore, prefix: str = "merkle", tree: str = "ledger") -> Head:
    with store.read() as cur:
        return head_in(cur, prefix, tree)


def head_in(cur: Cursor, prefix: str = "merkle", tree: str = "ledger") -> Head:
    row = cur.execute(f"SELECT size, frontier, position FROM {prefix}_state WHERE tree = ?", (tree,)).fetchone()
    if row is None:
        return Head((0, merkle.EMPTY_ROOT, 0))
    cr = CompactRange.load(int(row[0]), bytes(row[1]))
    return Head((cr.size, cr.root(), int(row[2])))


def _getter(cur: Cursor, prefix: str):
    def get(level: int, index: int) -> bytes:
        if level >= MIN_STORED_LEVEL:
            row = cur.execute(f"SELECT hash FROM {prefix}_nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
            if row is None:
                raise merkle.ProofError(f"node {level}/{index} is not stored")
            return bytes(row[0])
        first, last = index << level, ((index + 1) << level) - 1
        rows = cur.execute(f"SELECT hash FROM {prefix}_leaves WHERE idx >= ? AND idx <= ? ORDER BY idx",
                           (first, last)).fetchall()
        if len(rows) != 1 << level:
            raise merkle.ProofError(f"leaves {first}..{last} are not all stored")
        return merkle.perfect_root([bytes(r[0]) for r in rows])
    return get


def root_at(store: ViewStore, size: int, prefix: str = "merkle") -> bytes:
    """The root of the first ``size`` leaves (from the stored nodes: O(log n) reads)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    with store.read() as cur:
        return merkle.range_hash(_getter(cur, prefix), 0, size)


def inclusion_proof(store: ViewStore, index: int, size: int, prefix: str = "merkle") -> list[bytes]:
    with store.read() as cur:
        return merkle.inclusion_proof(_getter(cur, prefix), index, size)


def consistency_proof(store: ViewStore, first: int, second: int, prefix: str = "merkle") -> list[bytes]:
    with store.read() as cur:
        return merkle.consistency_proof(_getter(cur, prefix), first, second)


def leaf(store: ViewStore, originator_id: str, version: int, prefix: str = "merkle") -> tuple[int, int, bytes] | None:
    """(leaf index, log position, leaf hash) of one event, if it is in the tree."""
    with store.read() as cur:
        row = cur.execute(f"SELECT idx, position, hash FROM {prefix}_leaves WHERE originator_id = ? AND version = ?",
                          (originator_id, version)).fetchone()
    return (int(row[0]), int(row[1]), bytes(row[2])) if row else None


def leaves_of(store: ViewStore, originator_id: str, prefix: str = "merkle") -> list[tuple[int, int, int, bytes]]:
    """(version, leaf index, position, leaf hash) of every leaf of one aggregate."""
    with store.read() as cur:
        rows = cur.execute(f"SELECT version, idx, position, hash FROM {prefix}_leaves WHERE originator_id = ?"
                           " ORDER BY version", (originator_id,)).fetchall()
    return [(int(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]


def iter_leaves(store: ViewStore, upto: int, prefix: str = "merkle", chunk: int = 20000
                ) -> Iterator[tuple[int, int, str, int, bytes]]:
    """(index, position, originator id, version, leaf hash) of leaves 0 .. upto-1, in order."""
    start = 0
    while start < upto:
        with store.read() as cur:
            rows = cur.execute(f"SELECT idx, position, originator_id, version, hash FROM {prefix}_leaves"
                               " WHERE idx >= ? AND idx < ? ORDER BY idx", (start, min(upto, start + chunk))).fetchall()
        if not rows:
            return
        for r in rows:
            yield int(r[0]), int(r[1]), str(r[2]), int(r[3]), bytes(r[4])
        start += chunk


def case_numbers(store: ViewStore) -> dict[str, str]:
    """Case id -> case number, for every case the tree has seen."""
    with store.read() as cur:
        return {str(r[0]): str(r[1]) for r in cur.execute("SELECT originator_id, case_no FROM merkle_cases").fetchall()}


def case_number(store: ViewStore, originator_id: str) -> str | None:
    with store.read() as cur:
        row = cur.execute("SELECT case_no FROM merkle_cases WHERE originator_id = ?", (originator_id,)).fetchone()
    return str(row[0]) if row else None


CHECKPOINT_COLUMNS = "size, root, note, issued_at, position"


def latest_checkpoint(store: ViewStore, prefix: str = "merkle") -> tuple[Any, ...] | None:
    """(size, root, note, issued_at µs, position) of the largest recorded checkpoint."""
    with store.read() as cur:
        row = cur.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM {prefix}_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return _cp(row)


def checkpoint_at(store: ViewStore, size: int, prefix: str = "merkle") -> tuple[Any, ...] | None:
    with store.read() as cur:
        row = cur.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM {prefix}_checkpoints WHERE size = ?", (size,)).fetchone()
    return _cp(row)


def checkpoints(store: ViewStore, prefix: str = "merkle") -> list[tuple[Any, ...]]:
    with store.read() as cur:
        rows = cur.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM {prefix}_checkpoints ORDER BY size").fetchall()
    return [_cp(r) for r in rows]  # type: ignore[misc]


def _cp(row: Any) -> tuple[Any, ...] | None:
    if row is None:
        return None
    return int(row[0]), bytes(row[1]), str(row[2]), int(row[3]), int(row[4])
