"""The access log (查阅留痕): officers' reads of personal data, exports and replays, listed for the
commission's admin, and kept as a Merkle tree of its own (prefix ``access``: leaves, nodes,
frontier, checkpoints) exactly as the ledger's tree is (projections/merkle.py). A leaf's data is
SHA-256 of the read's canonical record (domain.access_log.access_leaf_data).
"""

from __future__ import annotations

from typing import Any

import orjson

from domain.access_log import ACCESS_TOPICS, access_leaf_data
from projections.instants import from_us, us
from projections.merkle import MerkleTreeView
from projections.store import Cursor, ViewStore


class AccessLogView(MerkleTreeView):
    name = "access_log"
    tree = "access"
    prefix = "access"
    leaf_topics = ACCESS_TOPICS

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[tuple[Any, ...]] = []

    def extra_tables(self) -> tuple[str, ...]:
        return ("access_log",)

    def create_extra(self, cur: Cursor) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS access_log (idx BIGINT PRIMARY KEY, position BIGINT NOT NULL,"
                    " id TEXT NOT NULL, at BIGINT NOT NULL, actor_key TEXT, role TEXT, action TEXT NOT NULL,"
                    " case_no TEXT, detail TEXT NOT NULL, remote TEXT)")
        cur.execute("CREATE INDEX IF NOT EXISTS access_log_case ON access_log (case_no)")
        cur.execute("CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at)")

    def leaf_data(self, event: Any) -> bytes:
        return access_leaf_data(event)

    def process_extra(self, cur: Cursor, event: Any, notification_id: int, index: int) -> None:
        self._rows.append((index, notification_id, str(event.originator_id), us(event.timestamp),
                           event.actor.get("key"), event.actor.get("role"), event.action, event.case_no,
                           orjson.dumps(event.detail, option=orjson.OPT_SORT_KEYS).decode(), event.remote))

    def flush_extra(self, cur: Cursor) -> None:
        cur.executemany("INSERT INTO access_log (idx, position, id, at, actor_key, role, action, case_no, detail,"
                        " remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._rows.clear()

    def forget(self) -> None:
        super().forget()
        self._rows.clear()


def entries(store: ViewStore, *, case_no: str | None = None, actor: str | None = None, action: str | None = None,
            limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    """The newest reads first (``before``: a leaf index, for the next page)."""
    where, params = [], []
    for column, value in (("case_no", case_no), ("actor_key", actor), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if before is not None:
        where.append("idx < ?")
        params.append(before)
    sql = ("SELECT idx, position, id, at, actor_key, role, action, case_no, detail, remote FROM access_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY idx DESC LIMIT ?")
    with store.read() as cur:
        rows = cur.execute(sql, (*params, limit)).fetchall()
    return [{"index": int(r[0]), "position": int(r[1]), "id": r[2], "at": from_us(r[3]), "key": r[4], "role": r[5],
             "action": r[6], "case_no": r[7], "detail": orjson.loads(r[8]), "remote": r[9]} for r in rows]
