"""Running views over the ledger's notification log: catch up, follow live, rebuild.

Each view has its own tracking position, stored in the view store and committed in the same
transaction as the rows the batch changed: a crash anywhere leaves rows and position agreeing,
and the next run resumes after the position ("greater than", since ids may have gaps).

Following: on SQLite the log is polled. On PostgreSQL the library's LISTEN/NOTIFY subscription
wakes the runner as soon as something is saved, and a timer re-polls anyway, because a LISTEN
connection can die silently (eventsourcing issue #305).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Sequence

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

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        raise NotImplementedError

    def flush(self, cur: Cursor) -> None:
        """After the batch's last ``process``, in the same transaction: write what the view
        gathered for the whole batch at once (e.g. one multi-row insert)."""

    def reset(self, cur: Cursor) -> None:
        for table in self.tables:
            cur.execute(f"DELETE FROM {table}")
        self.forget()

    def forget(self) -> None:
        """Drop anything cached from the tables (they were replaced, e.g. by a rebuild)."""


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
                 skips_from: ViewStore | None = None) -> None:
        self.ledger = ledger
        self.store = store
        self.skips_from = skips_from or store  # where the operator's skipped events are listed
        self.faults: dict[str, int] = {}  # view -> the log position it is stuck at, as last seen here
        self.views = {v.name: v for v in views}
        self.batch = batch
        # Fresh views (bound like these) for a rebuild's shadow store; default: the same classes.
        self.factory = factory or (lambda _store: [type(v)() for v in views])
        self._generations: dict[str, int] = {}
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
                    self._apply(cur, name, view, self.ledger.recorder.select_notifications(
                        start=position, limit=self.batch, inclusive_of_start=False))
                except ViewFault as fault:
                    found.append(fault)
                raise Abort  # a diagnosis never commits
        except Exception:  # Abort, or the aborted transaction's own complaint
            pass
        view.forget()
        return found[0] if found else None

    def _apply(self, cur: Cursor, name: str, view: View, notifications: Sequence[Notification]) -> None:
        """Apply the notifications the view takes (its topics, less the operator's skips); an
        event it cannot apply raises ``ViewFault`` naming that event."""
        skipped = self.skips_from.skips(name, cur if self.skips_from is self.store else None)
        for n in notifications:
            if view.topics and n.topic not in view.topics or n.id in skipped:
                continue
            try:
                view.process(cur, self.ledger.mapper.to_domain_event(n), n.id)
            except Exception as exc:
                raise ViewFault(name, n, exc) from exc
        view.flush(cur)

    def _step(self, name: str, view: View) -> int:
        with self.store.transaction() as cur:
            position = self.store.lock_position(cur, name)
            generation = self.store.generation(cur, name)
            if self._generations.get(name, generation) != generation:
                view.forget()  # a rebuild replaced the tables under this process
            elif self._committed.get(name, position) != position:
                view.forget()  # another process applied events to the view since this one did
            self._generations[name] = generation
            notifications: list[Notification] = self.ledger.recorder.select_notifications(
                start=position, limit=self.batch, inclusive_of_start=False
            )
            if not notifications:
                return 0
            self._apply(cur, name, view, notifications)  # a fault rolls the batch back
            self.store.set_position(cur, name, notifications[-1].id)
            # Past the event it was stuck at (repaired, or skipped): the fault is over.
            cur.execute("DELETE FROM view_faults WHERE view = ? AND position <= ?", (name, notifications[-1].id))
        self._committed[name] = notifications[-1].id
        for listener in self.listeners:
            listener(name, notifications[-1].id)
        return len(notifications)

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
                resume: bool = False) -> int:
        """Replay the whole log into fresh copies of the views, beside the live ones, then switch
        them in, in one transaction. The live views keep serving (and following the log, in this
        process or a server) until the switch, so nobody ever reads a half-built view; ingest may
        go on meanwhile. ``resume`` continues an interrupted rebuild from its shadow's positions.
        ``progress(view, n)`` is told each batch. Returns the notifications replayed."""
        names = [self.view(n).name for n in (names or self.views)]
        shadow = self.store.shadow(fresh=not resume)
        views = {v.name: v for v in self.factory(shadow) if v.name in names}
        helper = ProjectionRunner(self.ledger, shadow, list(views.values()), batch=self.batch, skips_from=self.store)
        total = 0
        try:
            # Replay to the head, then close the gap the replay left (ingest went on) a few times:
            # under a heavy flow the log may grow as fast as the replay goes, so what is left is
            # applied in the switch-over itself, or by the server after it.
            for _ in range(3):
                head = self.head()
                moved = 0
                for name in names:
                    moved += helper.catch_up([name], progress=(lambda n, v=name: progress(v, n)) if progress else None,
                                             strict=True)
                total += moved
                if moved < self.batch or all(helper.position(n) >= head for n in names):
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
