"""Recording officers' reads (查阅留痕) and listing them for the commission's admin.

A read is recorded before its answer leaves: if it cannot be recorded, the read fails (an
officer never sees personal data the log does not show they saw).
"""

from __future__ import annotations

from typing import Any

from domain.access_log import ACTIONS, AccessRecord
from domain.clock import Clock
from domain.errors import InvalidInput
from projections import access_log as view


class AccessLog:
    def __init__(self, ledger: Any, views: Any, clock: Clock) -> None:
        self.ledger = ledger
        self.views = views
        self.clock = clock

    def record(self, principal: Any, action: str, case_no: str | None, detail: dict[str, Any] | None = None,
               remote: str | None = None) -> None:
        actor = {"key": getattr(principal, "key", None),
                 "role": getattr(getattr(principal, "role", None), "value", None),
                 }  # the key's public id and its role
        self.ledger.save(AccessRecord.record(actor=actor, action=action, case_no=case_no, detail=detail or {},
                                             remote=remote, at=self.clock.now()))

    def entries(self, *, case_no: str | None = None, key: str | None = None, action: str | None = None,
                limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        if action is not None and action not in ACTIONS:
            raise InvalidInput(f"action is one of {', '.join(ACTIONS)}", code="invalid_query")
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit is 1 to 1000", code="invalid_query")
        return view.entries(self.views, case_no=case_no, actor=key, action=action, limit=limit, before=before)
