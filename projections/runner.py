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

    def reset(self, cur: Cursor) -> None:
        for table in self.tables:
            cur.execute(f"DELETE FROM {table}")


class ProjectionRunner:
    def __init__(self, ledger: Any, store: ViewStore, views: Sequence[View], batch: int = 1000) -> None:
        self.ledger = ledger
        self.store = store
        self.views = {v.name: v for v in views}
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.lock = threading.Lock()  # one catch-up at a time per process
        self.listeners: list[Callable[[str, int], None]] = []  # told (view, position) after each commit
        with store.transaction() as cur:
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
        """Process the next batch for one view; returns how many notifications it consumed."""
        view = self.views[name]
        position = self.store.position(name)
        notifications: list[Notification] = self.ledger.recorder.select_notifications(
            start=position, limit=self.batch, inclusive_of_start=False
        )
        if not notifications:
            return 0
        with self.store.transaction() as cur:
            for n in notifications:
                if view.topics and n.topic not in view.topics:
                    continue
                view.process(cur, self.ledger.mapper.to_domain_event(n), n.id)
            self.store.set_position(cur, name, notifications[-1].id)
        for listener in self.listeners:
            listener(name, notifications[-1].id)
        return len(notifications)

    def catch_up(self, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Bring views up to the log's head as it is now (or further); returns notifications read."""
        total = 0
        with self.lock:
            for name in list(names or self.views):
                while True:
                    n = self.step(name)
                    if progress:
                        progress(n)
                    total += n
                    if n < self.batch:
                        break
        return total

    def rebuild(self, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Empty the views and replay the whole log into them (ingest may go on meanwhile)."""
        names = list(names or self.views)
        with self.lock, self.store.transaction() as cur:
            for name in names:
                self.views[name].reset(cur)
                self.store.set_position(cur, name, 0)
        return self.catch_up(names, progress)

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
