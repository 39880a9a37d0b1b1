"""Running views over the ledger's notification log: catch up, follow live, rebuild.

Each view has its own tracking position, stored in the view store and committed in the same
transaction as the rows the batch changed: a crash anywhere leaves rows and position agreeing,
and the next run resumes after the position ("greater than", since ids may have gaps).

Why not the library's ``Projection`` / ``ProjectionRunner`` / ``TrackingRecorder``
(eventsourcing 9.5): there a projection handles one event at a time (``process_event(event,
tracking)``), each in its own call to its tracking recorder, and one runner follows one
projection with its own subscription. Here a batch of the log is one transaction across a
view's tables and its position (begin / apply / flush: the batch's rows read in one query per
table and written with ``executemany``); a rebuild replays several views in one pass, decoding
each event once, in a shadow store switched in atomically; a view that cannot apply an event
stops alone with the fault recorded; and two processes following the same view never apply
the same batch twice (the position row is locked). The library's subscription is still what
wakes us on PostgreSQL.

Following: on SQLite the log is polled. On PostgreSQL the library's LISTEN/NOTIFY subscription
wakes the runner as soon as something is saved, and a timer re-polls anyway, because a LISTEN
connection can die silently (eventsourcing issue #305).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.store import Cursor, ViewStore

log = logging.getLogger("esup.projections")


class View:
    """A read model: owns its tables; ``process`` runs inside the batch's transaction."""

    name = "view"
    version = 1  # of its tables' shape: a different stored version drops them and replays the log
    topics: tuple[str, ...] = ()  # the event topics it needs; empty means all
    tables: tuple[str, ...] = ()

    def create(self, cur: Cursor) -> None:
        raise NotImplementedError

    # A batch of the log is applied as ``begin`` (the batch's events: load what they touch, in
    # a few queries), ``apply`` per event (in memory), ``flush`` (write what changed, in bulk),
    # all in the batch's transaction. A view may instead define ``process``: SQL per event.

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        self._cur = cur

    def apply(self, event: Any, notification_id: int) -> None:
        self.process(self._cur, event, notification_id)

    def flush(self, cur: Cursor) -> None:
        """After the batch's last event, in the same transaction: write what the view gathered
        for the whole batch at once (e.g. one multi-row insert)."""

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        raise NotImplementedError

    def reset(self, cur: Cursor) -> None:
        for table in self.tables:
            cur.execute(f"DELETE FROM {table}")
        self.forget()

    def forget(self) -> None:
        """Drop anything cached from the tables (they were replaced, e.g. by a rebuild)."""


# Notifications per transaction in a rebuild: larger than a follower's batch (which bounds how
# long a live batch holds its views), since a case's row is read and written once per batch it
# appears in, and each batch has its fixed queries; 5,000 took about a sixth less CPU than
# 1,000 on the demo district.
REBUILD_BATCH = 5000

# What replaying each view costs beyond reading and decoding its events, relative (each view
# rebuilt alone on the demo district's 3,000 cases, SQLite), to split a rebuild into shares of
# about equal cost; a view not listed counts 1.
REPLAY_COST = {"anomalies": 12.0, "warning_thresholds": 11.0, "performance": 7.0, "assessment": 6.0, "case_board": 5.0,
               "merkle": 4.0, "warning_board": 1.0, "bundles": 0.5, "access_log": 0.2, "complaints": 0.2, "notices": 0.2}


def _die_with_parent() -> None:
    """A worker must not outlive a rebuild that was killed (it would go on writing the shadow
    that ``--resume`` continues): on Linux the kernel sends it SIGKILL when its parent dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends with its share as before
        pass


def split_by_cost(names: Sequence[str], shares: int) -> list[list[str]]:
    """Greedy: the costliest view first, into the cheapest share so far (order kept within)."""
    out: list[list[str]] = [[] for _ in range(max(1, min(shares, len(names))))]
    cost = [0.0] * len(out)
    for name in sorted(names, key=lambda n: -REPLAY_COST.get(n, 1.0)):
        i = cost.index(min(cost))
        out[i].append(name)
        cost[i] += REPLAY_COST.get(name, 1.0)
    order = {n: k for k, n in enumerate(names)}
    return [sorted(share, key=order.__getitem__) for share in out if share]


class EventId(UUID):
    """A decoded event's ``originator_id`` that keeps its text: every view keys its rows by
    ``str(event.originator_id)``, so an event applied to ten views would format its UUID ten
    times (a fifth of a view's per-event cost). Equal to, and hashing as, the plain UUID."""

    __slots__ = ("_text",)

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:  # e.g. unpickled: UUID's own state has no text
            return UUID.__str__(self)


def _with_text_id(event: Any, _new: Any = object.__new__, _set: Any = object.__setattr__) -> Any:
    """The decoded event, its ``originator_id`` an :class:`EventId` (the event was just made by
    the mapper, is this runner's own, and is never stored again)."""
    state = getattr(event, "__dict__", None)
    oid = state.get("originator_id") if state is not None else None
    if type(oid) is UUID:
        i = _new(EventId)
        _set(i, "int", oid.int)
        _set(i, "is_safe", oid.is_safe)
        _set(i, "_text", UUID.__str__(oid))
        state["originator_id"] = i
    return event


class ViewFault(Exception):
    """One event a view cannot apply: the view stops just before it; the others go on."""

    def __init__(self, view: str, notification: Notification, error: BaseException) -> None:
        self.view = view
        self.position = notification.id
        self.topic = notification.topic
        self.originator_id = str(notification.originator_id)
        self.originator_version = notification.originator_version
        self.error = f"{type(error).__name__}: {error}"
        super().__init__(f"view {view} cannot apply the event at log position {self.position} "
                         f"({self.topic}, {self.originator_id} v{self.originator_version}): {self.error}")


class ProjectionRunner:
    def __init__(self, ledger: Any, store: ViewStore, views: Sequence[View], batch: int = 1000,
                 factory: Callable[[ViewStore], Sequence[View]] | None = None,
                 skips_from: ViewStore | None = None, opener: Callable[[], Any] | None = None) -> None:
        self.ledger = ledger
        # Opens this system afresh (its own connections) in a rebuild's worker process.
        self.opener = opener
        self.store = store
        self.skips_from = skips_from or store  # where the operator's skipped events are listed
        self.faults: dict[str, int] = {}  # view -> the log position it is stuck at, as last seen here
        self.views = {v.name: v for v in views}
        self.batch = batch
        # Fresh views (bound like these) for a rebuild's shadow store; default: the same classes.
        self.factory = factory or (lambda _store: [type(v)() for v in views])
        self._generations: dict[str, int] = {}
        self._topics: dict[str, frozenset[str]] = {}
        self._committed: dict[str, int] = {}  # view -> the position this process last committed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.lock = threading.Lock()  # one catch-up at a time per process
        self.listeners: list[Callable[[str, int], None]] = []  # told (view, position) after each commit
        with store.transaction(pipeline=False) as cur:  # a fetch after DDL: no pipelining here
            cur.execute("CREATE TABLE IF NOT EXISTS view_schema (view TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            for v in views:
                found = cur.execute("SELECT version FROM view_schema WHERE view = ?", (v.name,)).fetchone()
                if found is None or found[0] != v.version:
                    if found is not None or store.position(v.name, cur) > 0:
                        # Tables of another shape: drop them; the view replays the log from the start.
                        log.warning("view %s: tables of version %s, code of version %s: replaying the log",
                                    v.name, found[0] if found else "1", v.version)
                        for table in v.tables:
                            cur.execute(f"DROP TABLE IF EXISTS {table}")
                        store.set_position(cur, v.name, 0)
                    cur.execute("DELETE FROM view_schema WHERE view = ?", (v.name,))
                    cur.execute("INSERT INTO view_schema (view, version) VALUES (?, ?)", (v.name, v.version))
                v.create(cur)
                # Every view has its tracking row from the start, so a writer can lock it.
                cur.execute("INSERT INTO view_tracking (view, position) VALUES (?, 0) ON CONFLICT (view) DO NOTHING",
                            (v.name,))

    def view(self, name: str) -> View:
        try:
            return self.views[name]
        except KeyError:
            raise KeyError(f"no view {name!r}; views: {', '.join(self.views)}") from None

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def position(self, name: str) -> int:
        return self.store.position(name)

    def step(self, name: str) -> int:
        """Process the next batch for one view; returns how many notifications it consumed.

        The position is read inside the batch's transaction and held (``lock_position``): two
        processes following the same views (a server and ``esup rebuild``'s switch-over, or two
        servers) never apply the same notifications twice."""
        view = self.views[name]
        if self.store.position(name) >= self.head():  # the cheap common case: nothing new
            return 0
        try:
            return self._step(name, view)
        except Exception as exc:
            # On PostgreSQL statements are pipelined: an error surfaces at a later statement,
            # not at the event that caused it. Find that event (nothing is committed meanwhile).
            fault = self._locate(name, view)
            if fault is None:
                raise
            raise fault from exc

    def _locate(self, name: str, view: View) -> ViewFault | None:
        found: list[ViewFault] = []

        class Abort(Exception):
            pass

        try:
            with self.store.transaction(pipeline=False) as cur:
                position = self.store.lock_position(cur, name)
                try:
                    self._apply(cur, name, view, self._read(view.topics, position)[0], diagnose=True)
                except ViewFault as fault:
                    found.append(fault)
                raise Abort  # a diagnosis never commits
        except Exception:  # Abort, or the aborted transaction's own complaint
            pass
        view.forget()
        return found[0] if found else None

    def _apply(self, cur: Cursor, name: str, view: View, notifications: Sequence[Notification],
               decoded: dict[int, Any] | None = None, diagnose: bool = False,
               shared: dict[Any, Any] | None = None, skipped: set[int] | None = None) -> None:
        """Apply the notifications the view takes (its topics, less the operator's skips); an
        event it cannot apply raises ``ViewFault`` naming that event. ``decoded``: events
        already decoded for another view of the same batch (a notification is decoded once).
        ``shared``: the batch's (notification, event) pairs per set of the batch's topics,
        already picked for another view taking the same of them (``None``: the batch's topics).
        ``diagnose``: write after each event, so a failing write names its event too.
        ``skipped``: the view's skipped events, if already read."""
        if skipped is None:
            skipped = self.skips_from.skips(name, cur if self.skips_from is self.store else None)
        topics = self._topics.get(name)
        if topics is None:
            topics = self._topics[name] = frozenset(view.topics)
        if shared is not None and not skipped:
            # The batch's topics this view takes: views taking different topic sets mostly take
            # the same of a given batch (its case events, say), and share one pick of it.
            present = shared.get(None)
            if present is None:
                present = shared[None] = frozenset(n.topic for n in notifications)  # type: ignore[index]
            wanted = present if not topics else present & topics
            items = shared.get(wanted) if wanted else []
            if items is None:
                items = shared[wanted] = self._pick(name, notifications, frozenset() if wanted == present else wanted,
                                                    skipped, decoded)
        else:
            items = self._pick(name, notifications, topics, skipped, decoded)
        if not items:
            return
        try:
            self._apply_items(cur, name, view, items, diagnose)
        except BaseException:
            view.forget()  # the transaction rolls back: nothing the view kept of this batch holds
            raise

    def _pick(self, name: str, notifications: Sequence[Notification], topics: frozenset[str], skipped: set[int],
              decoded: dict[int, Any] | None) -> list[tuple[Notification, Any]]:
        """The (notification, decoded event) pairs of the view's topics, skips left out (before
        decoding: an event skipped because it cannot be decoded is never decoded)."""
        decode = self.ledger.mapper.to_domain_event
        items: list[tuple[Notification, Any]] = []
        append = items.append
        for n in notifications:
            if topics and n.topic not in topics or skipped and n.id in skipped:
                continue
            event = decoded.get(n.id) if decoded is not None else None
            if event is None:
                try:
                    event = _with_text_id(decode(n))
                except Exception as exc:
                    raise ViewFault(name, n, exc) from exc
                if decoded is not None:
                    decoded[n.id] = event
            append((n, event))
        return items

    @staticmethod
    def _apply_items(cur: Cursor, name: str, view: View, items: Sequence[tuple[Notification, Any]],
                     diagnose: bool) -> None:
        if diagnose:
            for n, event in items:
                try:
                    view.begin(cur, [event])
                    view.apply(event, n.id)
                    view.flush(cur)
                except Exception as exc:
                    raise ViewFault(name, n, exc) from exc
            return
        view.begin(cur, [e for _, e in items])
        for n, event in items:
            try:
                view.apply(event, n.id)
            except Exception as exc:
                raise ViewFault(name, n, exc) from exc
        view.flush(cur)  # a failing write is traced to its event by ``_locate``

    def _step(self, name: str, view: View) -> int:
        with self.store.transaction() as cur:
            position = self.store.lock_position(cur, name)
            generation = self.store.generation(cur, name)
            if self._generations.get(name, generation) != generation:
                view.forget()  # a rebuild replaced the tables under this process
            elif self._committed.get(name, position) != position:
                view.forget()  # another process applied events to the view since this one did
            self._generations[name] = generation
            notifications, reached = self._read(view.topics, position)
            if reached <= position:
                return 0
            if notifications:
                self._apply(cur, name, view, notifications)  # a fault rolls the batch back
            self.store.set_position(cur, name, reached)
            # Past the event it was stuck at (repaired, or skipped): the fault is over.
            cur.execute("DELETE FROM view_faults WHERE view = ? AND position <= ?", (name, reached))
        self._committed[name] = reached
        for listener in self.listeners:
            listener(name, reached)
        return len(notifications)

    def _read(self, topics: Sequence[str], position: int) -> tuple[list[Notification], int]:
        """The next batch after ``position`` of these topics (filtered in SQL; empty: all), and
        the log position the batch brings its views to. A short batch read everything of those
        topics up to the head as it was before the read (ids commit in order), so the views
        move there, past the records they do not take."""
        head = self.head() if topics else 0
        notifications: list[Notification] = self.ledger.recorder.select_notifications(
            start=position, limit=self.batch, topics=topics, inclusive_of_start=False)
        last = notifications[-1].id if notifications else position
        return notifications, (max(last, head) if len(notifications) < self.batch else last)

    def catch_up(self, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None,
                 strict: bool = False) -> int:
        """Bring views up to the log's head as it is now (or further); returns notifications read.

        A view that cannot apply an event stops just before it, with the fault recorded (view,
        log position, event, error: ``view_faults``, shown by ``/healthz`` and ``esup views``);
        the other views go on, and the stuck one is tried again at each catch-up, so it resumes
        by itself once the cause is repaired (or the operator skips the event: ``esup views
        skip``). ``strict`` raises the ``ViewFault`` instead (a rebuild must not switch in a
        view that stopped short)."""
        total = 0
        with self.lock:
            for name in list(names or self.views):
                try:
                    while True:
                        n = self.step(name)
                        if progress:
                            progress(n)
                        total += n
                        if n < self.batch:
                            break
                except ViewFault as fault:
                    if strict:
                        raise
                    self._faulted(fault)
                    continue
                if name in self.faults and self.position(name) >= self.faults[name]:
                    log.warning("view %s is past the event it could not apply and follows the log again", name)
                    del self.faults[name]
        return total

    def replay(self, names: Sequence[str], progress: Callable[[int], None] | None = None) -> int:
        """Bring several views to the head together: each batch of the log is read and decoded
        once and applied to every view in one transaction (how a rebuild replays). A fault
        falls back to one view at a time, which names the event (``catch_up(strict=True)``)."""
        total = 0
        with self.lock:
            while True:
                try:
                    n, covered = self._replay_step(names)
                except Exception:
                    # Said, not swallowed: the one-view-at-a-time path below either names the
                    # event (a fault in a view) or goes on, slower, past what broke here.
                    log.exception("replay of %s together failed; replaying one view at a time", ", ".join(names))
                    for v in names:
                        self.views[v].forget()
                    break
                if progress:
                    progress(covered)
                total += n
                if n < self.batch:
                    return total
        return total + self.catch_up(names, progress=progress, strict=True)

    def _replay_step(self, names: Sequence[str]) -> tuple[int, int]:
        """One batch for all of ``names``; returns (notifications read, log positions covered).

        Only the topics the views take are read (filtered in SQL): about half the log is the
        ledger's idempotency records, which no view applies."""
        topics: tuple[str, ...] = ()
        if all(self.views[n].topics for n in names):
            topics = tuple(sorted({t for n in names for t in self.views[n].topics}))
        with self.store.transaction() as cur:
            positions = self.store.lock_positions(cur, names)  # one query, not one per view
            start = min(positions.values())
            notifications, reached = self._read(topics, start)
            if not notifications:  # nothing of these topics up to the head: the views are there
                for name in names:
                    if positions[name] < reached:
                        self.store.set_position(cur, name, reached)
                return 0, reached - start
            decoded: dict[int, Any] = {}
            shared: dict[Any, Any] = {}  # picks of the whole batch, by the topics they take
            first, last = notifications[0].id, notifications[-1].id
            # The operator's skips, read once for the batch (from the live store in a rebuild).
            skips = self.skips_from.all_skips(cur if self.skips_from is self.store else None)
            for name in names:
                if positions[name] >= last:
                    if positions[name] < reached:
                        self.store.set_position(cur, name, reached)
                    continue
                if positions[name] < first:  # the usual case: the view takes the whole batch
                    self._apply(cur, name, self.views[name], notifications, decoded, shared=shared,
                                skipped=skips.get(name, set()))
                else:
                    pending = [n for n in notifications if n.id > positions[name]]
                    self._apply(cur, name, self.views[name], pending, decoded, skipped=skips.get(name, set()))
                self.store.set_position(cur, name, reached)
        return len(notifications), reached - start

    def _faulted(self, fault: ViewFault) -> None:
        new = self.store.record_fault(fault)
        if new or self.faults.get(fault.view) != fault.position:
            log.error("%s; the other views go on. See `esup views`; once the cause is repaired the view "
                      "resumes by itself, or skip the event with `esup views skip %s`.", fault, fault.view)
        self.faults[fault.view] = fault.position

    def health(self) -> dict[str, Any]:
        """Each view's position and lag behind the log, and the faults that stop any."""
        head = self.head()
        faults = self.store.faults()
        return {
            "head": head,
            "views": {n: {"position": self.position(n), "lag": max(0, head - self.position(n)),
                          **({"fault": faults[n]} if n in faults else {})} for n in self.views},
            "faults": [faults[n] for n in sorted(faults)],
        }

    def rebuild(self, names: Iterable[str] | None = None, progress: Callable[[str, int], None] | None = None,
                resume: bool = False, workers: int = 1, batch: int | None = None) -> int:
        """Replay the whole log into fresh copies of the views, beside the live ones, then switch
        them in, in one transaction. The live views keep serving (and following the log, in this
        process or a server) until the switch, so nobody ever reads a half-built view; ingest may
        go on meanwhile. ``resume`` continues an interrupted rebuild from its shadow's positions.
        ``progress(view, n)`` is told each batch. ``workers``: replay the views in that many
        processes at once, each taking a share of the views (the first pass only; see
        ``_replay_forked``). ``batch``: notifications per transaction of the replay (default
        ``REBUILD_BATCH``). Returns the notifications replayed."""
        names = [self.view(n).name for n in (names or self.views)]
        shadow = self.store.shadow(fresh=not resume)
        views = {v.name: v for v in self.factory(shadow) if v.name in names}
        helper = ProjectionRunner(self.ledger, shadow, list(views.values()), batch=batch or REBUILD_BATCH,
                                  skips_from=self.store)
        total = 0
        try:
            if workers > 1 and self.opener is not None and len(names) > 1 and hasattr(os, "fork"):
                total += self._replay_forked(helper, names, workers, progress, resume)
            # Replay to the head, then close the gap the replay left (ingest went on) a few times:
            # under a heavy flow the log may grow as fast as the replay goes, so what is left is
            # applied in the switch-over itself, or by the server after it.
            for _ in range(3):
                head = self.head()
                label = ", ".join(names)
                moved = helper.replay(names, progress=(lambda n: progress(label, n)) if progress else None)
                total += moved
                if moved < helper.batch or all(helper.position(n) >= head for n in names):
                    break
            positions = {n: helper.position(n) for n in names}
            with self.lock, self.store.switch(shadow) as cur:
                for n in names:
                    live = self.store.lock_position(cur, n)  # waits for a server's batch of the view
                    view = self.views[n]
                    for table in view.tables:
                        self.store.copy_in(cur, table)
                    view.forget()
                    # The live view may have gone further while the shadow finished: apply the
                    # difference here, so no reader ever sees the view go back in time.
                    position = positions[n]
                    while position < live:
                        batch = self.ledger.recorder.select_notifications(
                            start=position, limit=self.batch, stop=live, inclusive_of_start=False)
                        if not batch:
                            break
                        self._apply(cur, n, view, batch)
                        position = batch[-1].id
                    self.store.set_position(cur, n, max(position, live))
                    self.store.bump_generation(cur, n)
            self.store.drop_shadow(shadow)
        finally:
            shadow.close()
        return total

    def _replay_forked(self, helper: ProjectionRunner, names: list[str], workers: int,
                       progress: Callable[[str, int], None] | None, resume: bool = False) -> int:
        """The views are split into ``workers`` shares of about equal cost; each share but the
        first is replayed in a forked process that opens the system afresh (its own
        connections: none is shared across the fork, and the child leaves with ``os._exit`` so
        nothing of the parent's is finalised there), into its part of the shadow store
        (``shadow(part=k)``: on SQLite a file of its own, since one file has one writer at a
        time; on PostgreSQL the shadow itself), taken into the shadow once it is done. Each
        view still replays the whole log in order, exactly as alone; only different views run
        side by side. Python runs one thread at a time, so processes are what uses a second core."""
        shares = split_by_cost(names, workers)
        children: list[tuple[int, int, list[str]]] = []
        for k, share in enumerate(shares[1:], start=1):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(read_end)
                _die_with_parent()
                code = 0
                try:
                    system = self.opener()
                    shadow = system.views.shadow(fresh=not resume, part=k)
                    mine = [v for v in system.runner.factory(shadow) if v.name in share]
                    ProjectionRunner(system.ledger, shadow, mine, batch=helper.batch, skips_from=system.views).replay(share)
                except BaseException as exc:  # told to the parent, which raises it
                    os.write(write_end, f"{type(exc).__name__}: {exc}".encode()[:4000])
                    code = 1
                os._exit(code)
            os.close(write_end)
            children.append((pid, read_end, share))
        label = ", ".join(shares[0])
        failures: list[str] = []
        try:
            done = helper.replay(shares[0], progress=(lambda n: progress(label, n)) if progress else None)
        finally:
            for pid, read_end, share in children:
                _, status = os.waitpid(pid, 0)
                with os.fdopen(read_end, "rb") as pipe:
                    said = pipe.read().decode(errors="replace")
                if status != 0:
                    failures.append(f"views {', '.join(share)}: {said or f'worker exit status {status}'}")
        if failures:
            raise RuntimeError("rebuild worker failed: " + "; ".join(failures))
        for k, share in enumerate(shares[1:], start=1):
            helper.store.take_part(k, {view: helper.views[view].tables for view in share})
            for view in share:
                helper.views[view].forget()  # another process wrote its tables
        return done

    # -- following ---------------------------------------------------------------------------

    def start(self, poll_seconds: float = 0.25, repoll_seconds: float = 2.0) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        listening = self._start_listener()
        interval = repoll_seconds if listening else poll_seconds
        self._thread = threading.Thread(target=self._follow, args=(interval,), name="esup-projections", daemon=True)
        self._thread.start()

    def _start_listener(self) -> bool:
        try:
            subscription = self.ledger.recorder.subscribe(gt=self.head())
        except NotImplementedError:  # SQLite: poll
            return False

        def listen() -> None:
            try:
                with subscription:
                    for _ in subscription:
                        self._wake.set()
                        if self._stop.is_set():
                            return
            except Exception:  # the timer re-poll keeps us going
                log.warning("LISTEN subscription ended; relying on re-polling", exc_info=True)

        self._subscription = subscription
        self._listener = threading.Thread(target=listen, name="esup-listen", daemon=True)
        self._listener.start()
        return True

    def _follow(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception:
                log.exception("projection catch-up failed; retrying")
            self._wake.wait(interval)
            self._wake.clear()

    def nudge(self) -> None:
        """Something was just saved in this process: catch up now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        sub = getattr(self, "_subscription", None)
        if sub is not None:
            sub.stop()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._listener is not None:
            self._listener.join(10)
            self._listener = None

    def wait(self, position: int, timeout: float = 10.0) -> bool:
        """Read-your-writes: wait until every view has processed ``position``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.store.position(n) >= position for n in self.views):
                return True
            self.nudge()
            time.sleep(0.02)
        return False
