"""API keys: issue, authenticate, revoke. Only digests are stored."""

from __future__ import annotations

import secrets
import threading
import time

from eventsourcing.application import AggregateNotFoundError

from domain.access import KEY_PREFIX, ApiKey, Role, key_id, split_key
from domain.clock import Clock
from domain.errors import DomainError, InvalidInput, NotFound
from domain.organisation import UnitKind
from services.apps import Access
from infra.logs import notifications_after
from services.ingest import Principal
from services.reference import ReferenceService


class Unauthorised(DomainError):
    code = "unauthorised"
    status = 401


class AccessService:
    CACHE_SECONDS = 30.0  # a revoked key stops working everywhere within this

    def __init__(self, app: Access, reference: ReferenceService, clock: Clock) -> None:
        self.app = app
        self.reference = reference
        self.clock = clock
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def create(self, role: str, departments: list[str] | None = None, label: str | None = None) -> str:
        try:
            r = Role(role)
        except ValueError:
            raise InvalidInput("role must be one of " + ", ".join(x.value for x in Role), code="invalid_role") from None
        for d in departments or []:
            if self.reference.unit(UnitKind.DEPARTMENT, d) is None:
                raise InvalidInput(f"unknown department {d}", code="unknown_department")
        public_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24).replace("_", "-")
        key = ApiKey.issue(public_id, secret, r, list(departments or []), label, self.clock.now())
        self.app.save(key)
        return f"{KEY_PREFIX}_{public_id}_{secret}"

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorised("send Authorization: Bearer <key>", code="missing_key")
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit and now - hit[0] < self.CACHE_SECONDS:
            return hit[1]
        parts = split_key(token)
        if parts is None:
            raise Unauthorised("malformed API key", code="invalid_key")
        try:
            key: ApiKey = self.app.repository.get(key_id(parts[0]))
        except AggregateNotFoundError:
            raise Unauthorised("unknown API key", code="invalid_key") from None
        if not key.verifies(parts[1]):
            raise Unauthorised("API key revoked or wrong", code="invalid_key")
        principal = Principal(key.role, frozenset(key.departments), key.public_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, principal)
        return principal

    def revoke(self, public_id: str) -> None:
        try:
            key: ApiKey = self.app.repository.get(key_id(public_id))
        except AggregateNotFoundError:
            raise NotFound(f"no key {public_id}", code="unknown_key") from None
        key.revoke(self.clock.now())
        self.app.save(key)
        with self._lock:
            self._cache.clear()

    def list(self) -> list[dict]:
        out = []
        for n in notifications_after(self.app.recorder, 0, [ApiKey.Issued.TOPIC]):
            key: ApiKey = self.app.repository.get(n.originator_id)
            out.append({"id": key.public_id, "role": key.role.value, "departments": key.departments,
                        "label": key.label, "revoked": key.revoked})
        return out
