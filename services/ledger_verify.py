"""``esup verify``: every case chain, and the whole log against the latest signed checkpoint.

Three things are checked, in one pass over the log's case events (notification order) beside
the Merkle view's leaf index (position, case, version, leaf hash of every event it took in):

1. The index is the signed one: the root of its first ``size`` leaves equals the latest
   checkpoint's root, whose signature verifies with the district's key (and so do the roots of
   every earlier recorded checkpoint). Then the index says exactly which event belongs at
   which log position, and anything the store holds differently is located by it.
2. Each stored event is the one the tree holds at its position: same case, same version, and
   its chain hash, recomputed from its content, is the hash the leaf was made from. Otherwise
   the event was **edited** (content changed; unreadable rows too), **reordered** (another
   event sits at the position), **deleted** (a leaf with no row), or **inserted** (a row inside
   the covered range with no leaf). A log ending before the checkpoint's last leaf is
   **truncated**.
3. Each case's hash chain (versions 1, 2, ... in log order, each ``prev_hash`` the previous
   ``hash``): events after the checkpoint (not yet covered) are checked this way only, so a
   forged row appended to the store shows when its chain does not hold. A break that follows
   from a fault already named (the event before it deleted or edited) is not named twice.

What no check here can see: rows appended after the last checkpoint by someone who recomputes
their chain hashes correctly. The next checkpoint covers them; a witness holding the earlier
one (the province) still proves everything before it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

from domain import merkle, note
from domain.canonical import GENESIS_HASH, chain_hash
from domain.case import CASE_TOPICS, Case, case_id
from projections import merkle as tree_view

log = logging.getLogger("esup.integrity")


@dataclass
class Fault:
    kind: str  # edited, reordered, deleted, inserted, chain, truncated, checkpoint, index
    case_no: str | None
    version: int | None
    position: int | None
    detail: str

    def line(self) -> str:
        where = []
        if self.case_no is not None:
            where.append(f"case {self.case_no}")
        if self.version is not None:
            where.append(f"v{self.version}")
        if self.position is not None:
            where.append(f"log position {self.position}")
        return f"{self.kind}: {' '.join(where) + ': ' if where else ''}{self.detail}"


@dataclass
class Report:
    checkpoint: dict[str, Any] | None
    events: int = 0
    cases: int = 0
    leaves: int = 0
    uncovered: int = 0
    faults: list[Fault] = field(default_factory=list)
    access_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.faults

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checkpoint": self.checkpoint, "events": self.events, "cases": self.cases,
                "leaves": self.leaves, "uncovered": self.uncovered, "access_entries": self.access_entries, "faults": [asdict(f) for f in self.faults]}


class LedgerVerifier:
    def __init__(self, ledger: Any, views: Any, checkpoints: Any, batch: int = 2000,
                 access_checkpoints: Any = None) -> None:
        self.ledger = ledger
        self.views = views
        self.checkpoints = checkpoints
        self.batch = batch
        self.access_checkpoints = access_checkpoints  # also verify the access log's tree when given

    def _rows(self) -> Iterator[tuple[int, Any]]:
        """(position, notification) of every case event in the log, in order."""
        start = 0
        while True:
            batch = self.ledger.recorder.select_notifications(start=start, limit=self.batch, topics=CASE_TOPICS,
                                                              inclusive_of_start=False)
            if not batch:
                return
            for n in batch:
                yield n.id, n
            start = batch[-1].id

    def run(self, progress: Callable[[int], None] | None = None) -> Report:
        cp = self.checkpoints.latest()
        report = Report(None)
        faults = report.faults
        cp_size = cp_pos = 0
        if cp is not None:
            cp_size, cp_pos = cp.size, cp.position
            report.checkpoint = {"size": cp.size, "position": cp.position, "root": cp.root.hex(),
                                 "origin": self.checkpoints.origin}
            try:
                body = note.verify_checkpoint(cp.note, self.checkpoints.verifier)
                if (body.size, body.root) != (cp.size, cp.root):
                    raise note.NoteError("the recorded size or root differs from the signed note's")
            except note.NoteError as exc:
                faults.append(Fault("checkpoint", None, None, None, f"the latest checkpoint does not verify: {exc}"))
        recorded = {c.size: c.root for c in self.checkpoints.all()} if cp is not None else {}
        names = tree_view.case_numbers(self.views)
        head = tree_view.head(self.views)

        index = tree_view.iter_leaves(self.views, head.size)
        frontier = merkle.CompactRange()
        damaged: set[tuple[str, int]] = set()
        chains: dict[str, tuple[int, str]] = {}  # case id -> (last version, last hash) in log order
        last_row_position = 0
        index_end = head.position

        def name(oid: str, event: Any = None) -> str:
            if oid in names:
                return names[oid]
            if event is not None and getattr(event, "case_no", None):
                return event.case_no
            return oid

        def take_leaf() -> tuple[int, int, str, int, bytes] | None:
            leaf = next(index, None)
            if leaf is None:
                return None
            frontier.append(leaf[4])
            if frontier.size in recorded and frontier.root() != recorded[frontier.size]:
                faults.append(Fault("index", None, None, None, f"the tree's first {frontier.size} leaves do not give the "
                                    f"root of the checkpoint of that size: the leaf index was changed too"))
            return leaf

        def decode(n: Any) -> tuple[Any, str | None]:
            try:
                return self.ledger.mapper.to_domain_event(n), None
            except Exception as exc:  # any decoding failure is damage
                return None, f"unreadable ({type(exc).__name__})"

        def content_problem(e: Any, oid: str, case_no: str, n: Any) -> str | None:
            """Does the event's content give its own hash (and, for a first event, its case), and
            are the stored bytes exactly the encoding of that content (an edit that decodes to
            the same facts, say an offset -00:00 for +00:00, still shows)?"""
            if not isinstance(e, Case.Event):
                return "not a case event"
            try:
                if bytes(self.ledger.mapper.to_stored_event(e).state) != bytes(n.state):
                    return "its stored bytes are not the encoding of its content"
            except Exception as exc:
                return f"its content cannot be encoded again ({type(exc).__name__})"
            try:
                if chain_hash(e.prev_hash, e.hash_body(case_no)) != e.hash:
                    return "its content does not give its hash (content or hash changed)"
            except Exception as exc:
                return f"its content cannot be hashed ({type(exc).__name__})"
            if e.originator_version == 1:
                if getattr(e, "case_no", None) != case_no or str(case_id(case_no)) != oid:
                    return "its case number is not the case's"
                if getattr(e, "originator_topic", Case.TOPIC) != Case.TOPIC:
                    return "its aggregate topic was changed"
            return None

        def check_chain(oid: str, e: Any, position: int, case_no: str) -> None:
            last_version, last_hash = chains.get(oid, (0, GENESIS_HASH))
            v = e.originator_version
            chains[oid] = (v, e.hash)
            if (oid, v - 1) in damaged or (oid, v) in damaged:
                return  # a consequence of a fault already named
            if v != last_version + 1:
                damaged.add((oid, v))
                faults.append(Fault("chain", case_no, v, position,
                                    f"follows version {last_version} in the log (versions missing or out of order)"))
            elif e.prev_hash != last_hash:
                damaged.add((oid, v))
                faults.append(Fault("chain", case_no, v, position, "its prev_hash is not the hash of the event before"))

        leaf = take_leaf()
        for position, n in self._rows():
            report.events += 1
            last_row_position = position
            # Leaves whose rows are gone.
            while leaf is not None and leaf[1] < position:
                _, lpos, loid, lver, _ = leaf
                damaged.add((loid, lver))
                faults.append(Fault("deleted", name(loid), lver, lpos, "the tree holds this event; the store has no row"))
                leaf = take_leaf()
            oid, version = str(n.originator_id), n.originator_version
            event, unreadable = decode(n)
            if leaf is not None and leaf[1] == position:
                _, lpos, loid, lver, lhash = leaf
                leaf = take_leaf()
                if (oid, version) != (loid, lver):
                    damaged.add((loid, lver))
                    damaged.add((oid, version))
                    faults.append(Fault("reordered", name(loid), lver, position,
                                        f"the tree has this event here; the store has case {name(oid, event)} "
                                        f"v{version} at this position"))
                    if event is not None:
                        chains[oid] = (version, getattr(event, "hash", ""))
                    continue
                problem = unreadable or content_problem(event, oid, name(oid, event), n)
                if problem is None and merkle.leaf_hash(bytes.fromhex(event.hash)) != lhash:
                    problem = "its hash is not the one the tree holds"
                if problem is not None:
                    damaged.add((oid, version))
                    faults.append(Fault("edited", name(loid), lver, position, problem))
                    if event is not None:
                        chains[oid] = (version, getattr(event, "hash", ""))
                    continue
                check_chain(oid, event, position, name(oid, event))
                continue
            # A row the tree does not hold.
            case_no = name(oid, event)
            inside = position <= index_end
            problem = unreadable or content_problem(event, oid, case_no, n)
            if inside:
                damaged.add((oid, version))
                faults.append(Fault("inserted", case_no, version, position,
                                    "a row the tree does not hold, inside the covered log" + (f": {problem}" if problem else "")))
                continue
            report.uncovered += 1
            if problem is not None:
                damaged.add((oid, version))
                faults.append(Fault("inserted", case_no, version, position,
                                    f"a row after the last checkpoint that is no genuine event: {problem}"))
                continue
            check_chain(oid, event, position, case_no)
        while leaf is not None:  # leaves past the store's last row
            _, lpos, loid, lver, _ = leaf
            faults.append(Fault("deleted", name(loid), lver, lpos, "the tree holds this event; the store has no row"))
            leaf = take_leaf()
        report.leaves = frontier.size
        report.cases = len(chains)
        if cp is not None:
            if frontier.size < cp_size:
                faults.append(Fault("index", None, None, None, f"the leaf index holds {frontier.size} leaves; the "
                                    f"checkpoint covers {cp_size}"))
            if last_row_position < cp_pos:
                faults.append(Fault("truncated", None, None, cp_pos, f"the log's case events end at position "
                                    f"{last_row_position}; the checkpoint covers {cp_size} events up to position {cp_pos}"))
        if self.access_checkpoints is not None:
            report.access_entries, more = verify_access_log(self.ledger, self.views, self.access_checkpoints,
                                                            self.batch)
            faults.extend(more)
        if progress:
            progress(report.events)
        return report


def verify_access_log(ledger: Any, views: Any, checkpoints: Any, batch: int = 2000) -> tuple[int, list[Fault]]:
    """The access log against its own tree and latest checkpoint: each entry is the one the tree
    holds at its log position (kinds ``access_edited``, ``access_deleted``, ``access_inserted``,
    ``access_truncated``, ``access_index``). Returns (entries read, faults)."""
    from domain.access_log import ACCESS_TOPICS, access_leaf_data

    faults: list[Fault] = []
    cp = checkpoints.latest()
    cp_pos = cp.position if cp is not None else 0
    if cp is not None:
        try:
            body = note.verify_checkpoint(cp.note, checkpoints.verifier)
            if (body.size, body.root) != (cp.size, cp.root):
                raise note.NoteError("the recorded size or root differs from the signed note's")
        except note.NoteError as exc:
            faults.append(Fault("checkpoint", None, None, None, f"the access log's checkpoint does not verify: {exc}"))
    recorded = {c.size: c.root for c in checkpoints.all()} if cp is not None else {}
    head = tree_view.head(views, "access", "access")
    index = tree_view.iter_leaves(views, head.size, prefix="access")
    frontier = merkle.CompactRange()

    def take() -> tuple[int, int, str, int, bytes] | None:
        leaf = next(index, None)
        if leaf is not None:
            frontier.append(leaf[4])
            if frontier.size in recorded and frontier.root() != recorded[frontier.size]:
                faults.append(Fault("access_index", None, None, None, f"the access tree's first {frontier.size} "
                                    "leaves do not give its checkpoint's root"))
        return leaf

    entries, last, start = 0, 0, 0
    leaf = take()
    while True:
        rows = ledger.recorder.select_notifications(start=start, limit=batch, topics=ACCESS_TOPICS,
                                                    inclusive_of_start=False)
        if not rows:
            break
        for n in rows:
            entries += 1
            last = n.id
            while leaf is not None and leaf[1] < n.id:
                faults.append(Fault("access_deleted", None, None, leaf[1], f"access-log entry {leaf[2]}: the tree "
                                    "holds it; the store has no row"))
                leaf = take()
            try:
                event = ledger.mapper.to_domain_event(n)
                digest = merkle.leaf_hash(access_leaf_data(event))
                exact = bytes(ledger.mapper.to_stored_event(event).state) == bytes(n.state)
            except Exception as exc:
                digest, exact = None, False
                problem = f"unreadable ({type(exc).__name__})"
            else:
                problem = None if exact else "its stored bytes are not the encoding of its content"
            if leaf is not None and leaf[1] == n.id:
                if str(n.originator_id) != leaf[2] or digest != leaf[4] or problem:
                    faults.append(Fault("access_edited", None, None, n.id, f"access-log entry {leaf[2]}: "
                                        + (problem or "not the entry the tree holds")))
                leaf = take()
            elif n.id <= head.position:
                faults.append(Fault("access_inserted", None, None, n.id, f"access-log entry {n.originator_id}: a row "
                                    "the tree does not hold"))
        start = rows[-1].id
    while leaf is not None:
        faults.append(Fault("access_deleted", None, None, leaf[1], f"access-log entry {leaf[2]}: the tree holds it; "
                            "the store has no row"))
        leaf = take()
    if cp is not None and last < cp_pos:
        faults.append(Fault("access_truncated", None, None, cp_pos, f"the access log ends at position {last}; its "
                            f"checkpoint covers {cp.size} entries up to position {cp_pos}"))
    return entries, faults
