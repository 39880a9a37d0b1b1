"""Warnings (预警纠错): policy, the official acts on a warning, and the board.

Policy: ``ESUP_WARNING_POLICY`` (JSON) gives the default, and may carry per-center and per-item
overrides (``{"default": {...}, "centers": {...}, "items": {...}}``); overrides stored as reference
data (``PUT /api/v1/warning-policies/{centers|items}/{code}``) take precedence over the
environment's. See ``domain.thresholds`` for the keys and defaults.

A changed override replans the pending thresholds of the open cases it covers, at once.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.access import Role
from domain.calendar import WorkingCalendar
from domain.clock import Clock
from domain.errors import InvalidInput, NotFound
from domain.limits import Limit
from domain.organisation import UnitKind
from domain.thresholds import Level, PolicyBook, WarningPolicy
from domain.warning import OPEN_STATUSES, POLICY_TOPICS, STATUSES, CaseWarning, PolicyOverride, policy_override_id
from projections.runner import ProjectionRunner
from projections.store import ViewStore
from projections.warnings import BOARD_VIEW, THRESHOLDS_VIEW, WarningThresholds, board, board_by_occurred
from services.ingest import Forbidden, Principal
from infra.logs import notifications_after
from services.reference import ReferenceService
from services.warning_scheduler import WarningScheduler

ENV_VAR = "ESUP_WARNING_POLICY"


def policy_book_from_env(environ: Mapping[str, str] | None = None) -> PolicyBook:
    raw = (os.environ if environ is None else environ).get(ENV_VAR)
    if not raw:
        return PolicyBook()
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{ENV_VAR} is not valid JSON: {exc}", code="invalid_policy") from None
    return PolicyBook.parse(parsed)


class WarningPlanner:
    """Reference data for thresholds: centers, calendars, and the policy book (environment plus
    stored overrides, cached and refreshed from the reference log)."""

    def __init__(self, reference: ReferenceService, reference_app: Any, env_book: PolicyBook | None = None) -> None:
        self.reference = reference
        self.app = reference_app
        self.env_book = env_book or PolicyBook()
        self._lock = threading.Lock()
        self._position: int | None = -1
        self._overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self._book = self.env_book

    def refresh(self) -> None:
        head = self.app.recorder.max_notification_id()
        with self._lock:
            if head == self._position:
                return
            start = 0 if self._position in (None, -1) else self._position
            for n in notifications_after(self.app.recorder, start, POLICY_TOPICS):
                agg: PolicyOverride = self.app.repository.get(n.originator_id)
                self._overrides[(agg.scope, agg.code)] = agg.policy
            book = self.env_book
            for (scope, code), partial in sorted(self._overrides.items()):
                base = book.centers.get(code, {}) if scope == "center" else book.items.get(code, {})
                book = book.with_override(scope, code, {**base, **partial})
            self._book = book
            self._position = head

    def book(self) -> PolicyBook:
        self.refresh()
        return self._book

    def overrides(self) -> dict[str, dict[str, Any]]:
        self.refresh()
        return {f"{scope}:{code}": p for (scope, code), p in sorted(self._overrides.items())}

    # -- the Planner protocol of projections.warnings ---------------------------------------------------
    # Lookups do not refresh: the view calls ``sync()`` once per batch of events, services before use.

    def sync(self) -> None:
        """Bring reference data and policy overrides up to date (one cheap query when unchanged)."""
        self.reference.refresh()
        self.refresh()

    def center_of(self, department: str, window: str | None) -> str | None:
        return self.reference.center_of(department, window, refresh=False)

    def calendar(self, center: str | None) -> WorkingCalendar:
        return self.reference.calendar(center, refresh=False)

    def policy_for(self, center: str | None, item_code: str | None) -> WarningPolicy:
        return self._book.policy_for(center, item_code)

    def put_override(self, scope: str, code: str, raw: object, at: datetime) -> tuple[dict[str, Any], bool, bool]:
        if scope not in ("center", "item"):
            raise InvalidInput("a policy override is per center or per item", code="invalid_policy")
        partial = WarningPolicy.check_partial(raw)
        if scope == "center" and self.reference.unit(UnitKind.CENTER, code) is None:
            raise NotFound(f"no center {code}", code="unknown_center")
        if scope == "item" and self.reference.item(code) is None:
            raise NotFound(f"no item {code}", code="unknown_item")
        try:
            agg: PolicyOverride = self.app.repository.get(policy_override_id(scope, code))
        except AggregateNotFoundError:
            self.app.save(PolicyOverride.set(scope, code, partial, at))
            return partial, True, True
        changed = agg.change(partial, at)
        if changed:
            self.app.save(agg)
        return partial, False, changed


class WarningService:
    def __init__(self, ledger: Any, reference: ReferenceService, planner: WarningPlanner, store: ViewStore,
                 runner: ProjectionRunner, clock: Clock, scheduler: WarningScheduler | None = None) -> None:
        self.ledger = ledger
        self.reference = reference
        self.planner = planner
        self.store = store
        self.runner = runner
        self.clock = clock
        self.scheduler = scheduler or WarningScheduler(ledger, store, clock, runner)

    def check(self, now: datetime | None = None) -> list[CaseWarning]:
        return self.scheduler.check(now)

    # -- the board --------------------------------------------------------------------------------

    def board(self, principal: Principal, *, level: str | None = None, department: str | None = None,
              status: str | None = None, as_of: datetime | None = None, case_no: str | None = None,
              limit: int = 1000, offset: int = 0, by: str = "recorded") -> list[dict[str, Any]]:
        if level is not None and level not in {lv.value for lv in Level}:
            raise InvalidInput("level is yellow, red or severe", code="invalid_query")
        known = (*STATUSES, "earned") if by == "occurred" else STATUSES
        if status is None:
            statuses: tuple[str, ...] = (*OPEN_STATUSES, "earned") if by == "occurred" else OPEN_STATUSES
        elif status == "all":
            statuses = known
        else:
            statuses = tuple(s.strip() for s in status.split(",") if s.strip())
            if not statuses or set(statuses) - set(known):
                raise InvalidInput(f"status is all, or a comma-separated list of {', '.join(known)}",
                                   code="invalid_query")
        if not 1 <= limit <= 10_000 or not 0 <= offset < 2**31:  # the store's integers are 64-bit at most
            raise InvalidInput("limit is 1 to 10000 and offset 0 to 2147483647", code="invalid_query")
        departments: list[str] | None = None
        if principal.role is Role.DEPARTMENT:
            if department is not None and department not in principal.departments:
                raise Forbidden(f"this key may not read department {department}'s warnings", code="forbidden_department")
            departments = [department] if department else sorted(principal.departments)
        elif department is not None:
            departments = [department]
        with self.store.read() as cur:
            if by == "occurred" and as_of is not None:
                return board_by_occurred(cur, as_of=as_of, level=level, departments=departments, statuses=statuses,
                                         case_no=case_no, limit=limit, offset=offset)
            return board(cur, as_of=as_of, level=level, departments=departments, statuses=statuses, case_no=case_no,
                         limit=limit, offset=offset)

    def get(self, warning: str, principal: Principal) -> dict[str, Any]:
        w = self._load(warning, principal)
        history = [
            {"act": type(e).__name__.lower(), "at": e.timestamp, "by": e.by,
             **{k: getattr(e, k) for k in ("explanation", "note", "due_at") if hasattr(e, k)}}
            for e in self.ledger.events.get(w.id)
        ]
        return {**w.as_dict(), "history": history}

    # -- acts ---------------------------------------------------------------------------------------

    def answer(self, warning: str, explanation: object, principal: Principal) -> dict[str, Any]:
        w = self._load(warning, principal)
        w.answer(explanation, _by(principal), self.clock.now())
        return self._save(w)

    def escalate(self, warning: str, principal: Principal, *, due_at: datetime | None = None,
                 within: object = None, note: object = None) -> dict[str, Any]:
        w = self._load(warning, principal)
        now = self.clock.now()
        if due_at is None:
            self.planner.sync()
            center = self._center_of(w)
            limit = Limit.parse(within) if within is not None else self.planner.policy_for(center, w.item_code).escalation
            due_at = self.reference.calendar(center).deadline_for(now, limit.value, limit.unit)
        w.escalate(due_at, note, _by(principal), now)
        return self._save(w)

    def close(self, warning: str, principal: Principal, note: object = None) -> dict[str, Any]:
        w = self._load(warning, principal)
        w.close(note, _by(principal), self.clock.now())
        return self._save(w)

    def _load(self, warning: str, principal: Principal) -> CaseWarning:
        try:
            wid = UUID(str(warning))
            w: CaseWarning = self.ledger.repository.get(wid)
        except (ValueError, AggregateNotFoundError):
            raise NotFound(f"no warning {warning}", code="unknown_warning") from None
        if not isinstance(w, CaseWarning) or not principal.may_read(w.department):
            raise NotFound(f"no warning {warning}", code="unknown_warning")
        return w

    def _save(self, w: CaseWarning) -> dict[str, Any]:
        self.ledger.save(w)
        self.runner.catch_up([BOARD_VIEW])  # read your writes on the board
        return w.as_dict()

    def _center_of(self, w: CaseWarning) -> str | None:
        try:
            case = self.ledger.repository.get(UUID(w.case_id))
            return self.reference.center_of(case.department, case.window)
        except AggregateNotFoundError:  # pragma: no cover - a warning always has its case
            return self.reference.center_of(w.department, None)

    # -- policy ---------------------------------------------------------------------------------------

    def put_policy(self, scope: str, code: str, raw: object) -> dict[str, Any]:
        partial, created, changed = self.planner.put_override(scope, code, raw, self.clock.now())
        replanned = self.replan(**{scope: code}) if changed else 0
        return {"scope": scope, "code": code, "override": partial, "created": created, "changed": changed,
                "replanned_cases": replanned}

    def effective_policy(self, center: str | None = None, item_code: str | None = None) -> dict[str, Any]:
        self.planner.sync()
        return {"center": center, "item_code": item_code, "policy": self.planner.policy_for(center, item_code).as_dict(),
                "default": self.planner.book().default.as_dict(), "overrides": self.planner.overrides()}

    def replan(self, center: str | None = None, item: str | None = None) -> int:
        """Recompute the pending thresholds of the open, accepted cases of a center or an item."""
        view: WarningThresholds = self.runner.view(THRESHOLDS_VIEW)  # type: ignore[assignment]
        # Cases the projection has not seen yet get the new policy when it does (it is saved already).
        self.runner.catch_up([THRESHOLDS_VIEW])
        with self.runner.lock, self.store.transaction() as cur:
            self.store.lock_position(cur, THRESHOLDS_VIEW)
            n = view.replan_scope(cur, center, item)
        self.scheduler.nudge()
        return n


def _by(principal: Principal) -> dict[str, Any]:
    return {"role": principal.role.value, "key": principal.key}
