"""Access: API keys bound to roles. Keys are stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from enum import Enum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE
from dataclasses import dataclass

from domain.errors import DomainError, InvalidInput


class Role(str, Enum):
    DEPARTMENT = "department"  # 窗口单位: reports and reads only its own departments' cases
    OFFICER = "officer"  # 监察人员: reads everything, sees personal data
    PROVINCE = "province"  # 省级电子监察系统: reads everything, personal data masked
    ADMIN = "admin"  # catalogue, calendar, organisation, keys


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's role and, for departments, the departments it is bound to. The
    department scope rule lives here, once: a department key reads and reports only for its own
    departments; the other roles read every department."""

    role: Role
    departments: frozenset[str] = frozenset()
    key: str = "system"

    def may_report_for(self, department: str) -> bool:
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.DEPARTMENT and department in self.departments

    def may_read(self, department: str) -> bool:
        return self.role is not Role.DEPARTMENT or department in self.departments

    def scope(self, requested: str | None = None) -> frozenset[str] | None:
        """The departments a read covers (None: all). A department key asking for another
        department is refused (403 ``forbidden_department``)."""
        if self.role is Role.DEPARTMENT:
            if requested is not None:
                if requested not in self.departments:
                    raise Forbidden(f"this key may not read department {requested}", code="forbidden_department")
                return frozenset({requested})
            return frozenset(self.departments)
        return frozenset({requested}) if requested is not None else None

    def only_readable(self, by_department: dict[str, Any]) -> dict[str, Any]:
        """A mapping keyed by department, less what this key may not read."""
        return {k: v for k, v in by_department.items() if self.may_read(k)}

    @property
    def sees_personal_data(self) -> bool:
        return self.role is Role.OFFICER


SYSTEM = Principal(Role.ADMIN)

KEY_PREFIX = "esup"


def key_id(public_id: str) -> UUID:
    return uuid5(NAMESPACE, f"apikey:{public_id}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """A key reads ``esup_<public id>_<secret>``; the public id finds it, the secret proves it."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKey(Aggregate):
    TOPIC = "esup.access:ApiKey"

    class Event(Aggregate.Event):
        pass

    class Issued(Aggregate.Created, Event):
        TOPIC = "esup.access:ApiKey.Issued"
        public_id: str
        secret_digest: str
        role: str
        departments: list[str]
        label: str | None

    class Revoked(Event):
        TOPIC = "esup.access:ApiKey.Revoked"

        def apply(self, key: ApiKey) -> None:
            key.revoked = True

    Created = Issued

    def __init__(self, public_id: str, secret_digest: str, role: str, departments: list[str], label: str | None) -> None:
        self.public_id = public_id
        self.secret_digest = secret_digest
        self.role = Role(role)
        self.departments = list(departments)
        self.label = label
        self.revoked = False

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return key_id(public_id)

    @classmethod
    def issue(cls, public_id: str, secret: str, role: Role, departments: list[str], label: str | None, at: datetime) -> ApiKey:
        if role is Role.DEPARTMENT and not departments:
            raise InvalidInput("a department key must be bound to at least one department", code="invalid_key")
        if role is not Role.DEPARTMENT and departments:
            raise InvalidInput("only department keys are bound to departments", code="invalid_key")
        return cls._create(
            cls.Issued, public_id=public_id, secret_digest=digest(secret), role=role.value,
            departments=sorted(set(departments)), label=label, timestamp=at,
        )

    def revoke(self, at: datetime) -> None:
        if not self.revoked:
            self.trigger_event(self.Revoked, timestamp=at)

    def verifies(self, secret: str) -> bool:
        return not self.revoked and hmac.compare_digest(self.secret_digest, digest(secret))
