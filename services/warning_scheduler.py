"""The warning scheduler: issues warnings when the clock passes a threshold, not when an event
happens to arrive.

``check(now)`` issues every warning whose threshold is at or before ``now``: an index range scan
of ``warning_thresholds`` by instant (``WHERE due_at <= ? ORDER BY due_at LIMIT n``), never a
scan of the open cases. It is idempotent: a warning's id comes from its case and rule, so a
second issue collides in the ledger and is counted as already issued.

Before issuing, the thresholds must be current for the case: with the projection runner, the
thresholds view is caught up first, and a case with a step stored after the view's position
(one query for the notifications after it, usually none) waits for the projection, which replans
or deletes its rows; without a runner, each due case's last stored version is compared with the
version its thresholds were planned from.

Saving is guarded (``infra.recorders``): each warning is saved on the condition, checked inside
the insert's transaction under the store's write lock, that its case's last stored version is the
one its threshold was planned from. A step that lands between the check above and the save makes
the save fail (``CaseMoved``); that threshold waits for the projection to replan it. So no card is
issued on a case whose log, when the card is saved, shows its threshold was never reached.

A card issued on what the log held, which a step keyed in later shows was never earned (the case
concluded, refused, withdrawn or suspended, by business time, no later than the threshold), is
withdrawn: the warning board lists it in ``warning_withdrawals`` and ``check()`` records the
``Withdrawn`` act with that step as evidence.

Serving mode (``start()``): a thread sleeps until the earliest pending threshold (or at most
``max_sleep``), or until nudged: the projection runner nudges it after each commit of the
thresholds view, since a new threshold may be earlier than the one it sleeps for. Tests drive
``check()`` directly with a ``ManualClock``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.clock import Clock
from domain.steps import STEP_ZH, Step
from domain.warning import CaseWarning
from infra.logs import notifications_after
from infra.recorders import CaseMoved
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections import warnings as thresholds
from projections.warnings import BOARD_VIEW, CASE_TOPICS, THRESHOLDS_VIEW, from_us, pending_withdrawals, us

log = logging.getLogger("esup.warnings")




WITHDRAWAL_REASON = "补录的{step}（业务时间 {occurred}）早于预警阈值（{threshold}）：该预警从未达到，自动撤销"


class WarningScheduler:
    def __init__(self, ledger: Any, store: ViewStore, clock: Clock, runner: ProjectionRunner | None = None,
                 batch: int = 500, max_sleep: float = 60.0) -> None:
        self.ledger = ledger
        self.store = store
        self.clock = clock
        self.runner = runner
        self.batch = batch
        self.max_sleep = max_sleep
        self.waiting = 0  # thresholds due but held back at the last check (projection behind)
        self.observers: list[Callable[[list[CaseWarning]], None]] = []  # told each batch just committed
        self._check_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if runner is not None:
            runner.listeners.append(self._on_commit)

    # -- the queue --------------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest pending threshold instant (the index's first entry)."""
        with self.store.read() as cur:
            first = thresholds.next_due(cur)
        return from_us(first) if first is not None else None

    def due(self, now: datetime, limit: int = 100, after: tuple[int, str, str] | None = None) -> list[dict[str, Any]]:
        """Thresholds at or before ``now``, earliest first (keyset-paged after ``after``)."""
        with self.store.read() as cur:
            return thresholds.due(cur, us(now), limit, after)

    # -- issuing ----------------------------------------------------------------------------------

    def check(self, now: datetime | None = None) -> list[CaseWarning]:
        """Issue every warning due at ``now`` (default: the clock's now); returns those issued."""
        explicit = now is not None
        now = now or self.clock.now()
        with self._check_lock:
            position = None
            if self.runner is not None:
                self.runner.catch_up([THRESHOLDS_VIEW, BOARD_VIEW])
                position = self.runner.position(THRESHOLDS_VIEW)
            withdrawn = self.withdraw(now if explicit else None)
            issued: list[CaseWarning] = []
            waiting = 0
            after: tuple[int, str, str] | None = None
            while True:
                rows = self.due(now, self.batch, after)
                if not rows:
                    break
                after = (rows[-1]["due_at"], rows[-1]["case_id"], rows[-1]["rule"])
                ready, done = [], []
                moved = self._moved_since(position) if position is not None else None
                for row in rows:
                    if moved is not None:  # the projection is current up to its position
                        if row["case_id"] in moved:  # the case moved since: wait for the projection
                            waiting += 1
                        else:
                            ready.append(row)
                        continue
                    last = self._last_version(row["case_id"])
                    if last is None:  # no such case: a stale row
                        done.append(row)
                    elif last != row["case_version"]:  # the case moved: wait for the projection
                        waiting += 1
                    else:
                        ready.append(row)
                at = now if explicit else self.clock.now()
                saved, moved = self._save(ready, at)
                waiting += len(moved)
                for observer in self.observers:
                    observer(saved)
                issued += saved
                self._forget(done + [row for row in ready if (row["case_id"], row["rule"]) not in moved])
                if len(rows) < self.batch:
                    break
            self.waiting = waiting
            if (issued or withdrawn) and self.runner is not None:
                self.runner.catch_up([THRESHOLDS_VIEW, BOARD_VIEW])
            return issued

    def withdraw(self, now: datetime | None = None) -> list[CaseWarning]:
        """Record the withdrawal of every card a later step showed was never earned."""
        done: list[CaseWarning] = []
        with self.store.read() as cur:
            pending = pending_withdrawals(cur)
        for wid, evidence in pending:
            try:
                w: CaseWarning = self.ledger.repository.get(UUID(wid))
            except Exception:  # pragma: no cover - a listed card always exists
                log.exception("cannot load warning %s to withdraw it", wid)
                continue
            reason = WITHDRAWAL_REASON.format(step=STEP_ZH.get(Step(evidence["step"]), evidence["step"]),
                                              occurred=evidence["occurred_at"], threshold=evidence["threshold_at"])
            if w.withdraw(reason, evidence, now or self.clock.now()):
                try:
                    self.ledger.save(w)
                    done.append(w)
                except IntegrityError:  # another process withdrew it (or acted on it) first: next round
                    pass
        if done:
            for observer in self.observers:
                observer(done)
        return done

    @staticmethod
    def _warning(row: dict[str, Any], at: datetime) -> CaseWarning:
        return CaseWarning.issue(
            generation=row["generation"] or 0,
            case_no=row["case_no"], case_id=row["case_id"], case_version=row["case_version"],
            department=row["department"], item_code=row["item_code"], level=row["level"], rule=row["rule"],
            threshold_at=from_us(row["due_at"]), promised_due_at=from_us(row["promised_due_at"]),  # type: ignore[arg-type]
            legal_due_at=from_us(row["legal_due_at"]), basis=row["basis"], at=at,
        )

    def _moved_since(self, position: int) -> set[str]:
        """Cases with a step stored after the thresholds view's position (usually none): their
        rows may be stale until the projection processes those steps."""
        return {str(n.originator_id) for n in notifications_after(self.ledger.recorder, position, CASE_TOPICS)}

    def _last_version(self, case_id: str) -> int | None:
        stored = self.ledger.recorder.select_events(UUID(case_id), desc=True, limit=1)
        return stored[0].originator_version if stored else None

    def _save(self, rows: list[dict[str, Any]], at: datetime) -> tuple[list[CaseWarning], set[tuple[str, str]]]:
        """Issue and save the rows' warnings, each guarded by its case's planned version. Returns
        those saved and the (case, rule) of those whose case moved meanwhile (left for the
        projection to replan)."""
        if not rows:
            return [], set()
        warnings = [self._warning(row, at) for row in rows]
        guard = sorted({(row["case_id"], row["case_version"]) for row in rows})
        try:
            self.ledger.save(*warnings, guard=guard)
            return warnings, set()
        except (IntegrityError, CaseMoved):
            # One was issued before (a crash after saving, another process), or a case moved
            # between the check and the save: one at a time, to save all the others. (A failed
            # save has taken the aggregates' pending events: issue them afresh.)
            saved, moved = [], set()
            for row in rows:
                w = self._warning(row, at)
                try:
                    self.ledger.save(w, guard=[(row["case_id"], row["case_version"])])
                    saved.append(w)
                except IntegrityError:
                    pass
                except CaseMoved:
                    moved.add((row["case_id"], row["rule"]))
            return saved, moved

    def _forget(self, rows: list[dict[str, Any]]) -> None:
        """Drop handled thresholds (unless replanned meanwhile: the version guards that)."""
        if not rows:
            return
        with self.store.transaction() as cur:
            thresholds.forget(self.store, cur, rows)

    # -- serving ------------------------------------------------------------------------------------

    def _on_commit(self, view: str, position: int) -> None:
        if view in (THRESHOLDS_VIEW, BOARD_VIEW):  # a new threshold, or a card to withdraw
            self._wake.set()

    def nudge(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="esup-warnings", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            backoff = False
            try:
                self.check()
                backoff = self.waiting > 0
            except Exception:
                log.exception("warning check failed; retrying")
                backoff = True
            try:
                nxt = self.next_due()
            except Exception:
                log.exception("cannot read the next threshold")
                nxt, backoff = None, True
            timeout = self.max_sleep
            if nxt is not None:
                timeout = min(self.max_sleep, max(0.0, (nxt - self.clock.now()).total_seconds()))
            if backoff:
                timeout = max(timeout, 0.5)
            self._wake.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
