"""The item catalogue (事项目录): what can be applied for, with its limits and fee standard.

Each change to an item is an event. A case is judged by the item version in force when it
was accepted (``Item.version_at``), so revising a limit never rewrites history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from hashlib import sha1
from uuid import NAMESPACE_URL, UUID, SafeUUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput
from domain.limits import Limit, Unit

NAMESPACE = uuid5(NAMESPACE_URL, "urn:esup")
_NAMESPACE_BYTES = NAMESPACE.bytes
_NAMESPACE_SHA1 = sha1(_NAMESPACE_BYTES)
# uuid5's version and variant bits, as UUID(bytes=..., version=5) sets them.
_UUID5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID5_SET = (0x8000 << 48) | (5 << 76)


def esup_id(name: str) -> UUID:
    """``uuid5(NAMESPACE, name)``: the same UUID, made without ``UUID.__init__``'s argument
    checks (four fifths of uuid5's time; ingest makes two or three ids per step)."""
    h = _NAMESPACE_SHA1.copy()  # the namespace's bytes hashed once: a copy is cheaper than a new hash
    h.update(name.encode("utf-8"))
    n = int.from_bytes(h.digest()[:16], "big") & _UUID5_CLEAR | _UUID5_SET
    u = object.__new__(UUID)
    object.__setattr__(u, "int", n)
    object.__setattr__(u, "is_safe", _UNKNOWN)
    return u


_UNKNOWN = SafeUUID.unknown  # read once: an enum class's attributes are slow to read (EnumType.__getattr__)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


class ItemKind(str, Enum):
    LICENCE = "licence"  # 行政许可
    NON_LICENCE = "non_licence"  # 非行政许可审批
    PUBLIC_SERVICE = "public_service"  # 公共服务


_VALID_CODES: set[str] = set()  # codes already found valid (departments, windows, staff recur at every step)


def _code(raw: object, what: str) -> str:
    if type(raw) is str and raw in _VALID_CODES:
        return raw
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        raise InvalidInput(f"{what} must be a non-empty string of at most 64 characters", code="invalid_code")
    if _SPACE_OR_CONTROL.search(raw):
        raise InvalidInput(f"{what} must not contain spaces or control characters", code="invalid_code")
    if type(raw) is str:
        if len(_VALID_CODES) >= 65536:
            _VALID_CODES.clear()
        _VALID_CODES.add(raw)
    return raw


def _text(raw: object, what: str, limit: int = 200) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > limit:
        raise InvalidInput(f"{what} must be a non-empty string of at most {limit} characters", code="invalid_field")
    return raw.strip()


def parse_money(raw: object, what: str = "amount") -> Decimal:
    """Yuan with at most two decimals, non-negative, below 10^10."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str, float, Decimal)):
        raise InvalidInput(f"{what} must be a number of yuan", code="invalid_amount")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidInput(f"{what} must be a number of yuan", code="invalid_amount") from None
    if not value.is_finite() or value < 0 or value >= Decimal(10) ** 10 or value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"{what} must be between 0 and 10^10 yuan with at most 2 decimals", code="invalid_amount")
    return value.quantize(Decimal("0.01"))


def parse_date(raw: object, what: str) -> date | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput(f"{what} must be an ISO date (YYYY-MM-DD)", code="invalid_date")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{what} must be an ISO date (YYYY-MM-DD)", code="invalid_date") from None


@dataclass(frozen=True)
class ItemVersion:
    """One version of an item as it was (or will be) in force."""

    code: str
    name: str
    department: str
    kind: ItemKind
    legal_limit: Limit
    promised_limit: Limit
    on_the_spot: bool  # 即办件
    fee: Decimal  # fee standard in yuan; 0 means free of charge
    valid_from: date | None = None
    valid_to: date | None = None
    version: int = 1
    effective_from: datetime | None = None  # recording instant from which this version applies

    @classmethod
    def parse(cls, code: str, body: dict[str, Any]) -> ItemVersion:
        if not isinstance(body, dict):
            raise InvalidInput("an item is a JSON object", code="invalid_body")
        try:
            kind = ItemKind(body.get("kind"))
        except ValueError:
            raise InvalidInput(
                "kind must be one of " + ", ".join(k.value for k in ItemKind), code="invalid_field"
            ) from None
        on_the_spot = body.get("on_the_spot", False)
        if not isinstance(on_the_spot, bool):
            raise InvalidInput("on_the_spot must be true or false", code="invalid_field")
        legal = Limit.parse(body.get("legal_limit"))
        promised = Limit.parse(body.get("promised_limit"))
        if legal.unit == promised.unit and promised.value > legal.value:
            raise InvalidInput("the promised limit cannot exceed the legal limit", code="invalid_limit")
        item = cls(
            code=_code(code, "item code"),
            name=_text(body.get("name"), "name"),
            department=_code(body.get("department"), "department"),
            kind=kind,
            legal_limit=legal,
            promised_limit=promised,
            on_the_spot=on_the_spot,
            # "fee": null is how integrators say "no fee": a free item, like an absent fee.
            fee=parse_money(0 if body.get("fee") is None else body["fee"], "fee"),
            valid_from=parse_date(body.get("valid_from"), "valid_from"),
            valid_to=parse_date(body.get("valid_to"), "valid_to"),
        )
        if item.valid_from and item.valid_to and item.valid_to < item.valid_from:
            raise InvalidInput("valid_to is before valid_from", code="invalid_date")
        return item

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "department": self.department,
            "kind": self.kind._value_,  # _value_: .value is a Python-level property
            "legal_limit": self.legal_limit.as_dict(),
            "promised_limit": self.promised_limit.as_dict(),
            "on_the_spot": self.on_the_spot,
            "fee": str(self.fee),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "version": self.version,
            "effective_from": self.effective_from,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemVersion:
        return cls(
            code=d["code"],
            name=d["name"],
            department=d["department"],
            kind=ItemKind(d["kind"]),
            legal_limit=Limit(d["legal_limit"]["value"], Unit(d["legal_limit"]["unit"])),
            promised_limit=Limit(d["promised_limit"]["value"], Unit(d["promised_limit"]["unit"])),
            on_the_spot=d["on_the_spot"],
            fee=Decimal(d["fee"]),
            valid_from=date.fromisoformat(d["valid_from"]) if d.get("valid_from") else None,
            valid_to=date.fromisoformat(d["valid_to"]) if d.get("valid_to") else None,
            version=d.get("version", 1),
            effective_from=d.get("effective_from"),
        )

    def same_terms(self, other: ItemVersion) -> bool:
        a, b = self.as_dict(), other.as_dict()
        for k in ("version", "effective_from"):
            a.pop(k), b.pop(k)
        return a == b

    def in_force_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)

    @property
    def speed_up(self) -> Decimal | None:
        """承诺提速率 = (legal - promised) / legal, when both count the same unit."""
        if self.legal_limit.unit != self.promised_limit.unit or self.legal_limit.value == 0:
            return None
        return Decimal(self.legal_limit.value - self.promised_limit.value) / Decimal(self.legal_limit.value)


def item_id(code: str) -> UUID:
    return esup_id(f"item:{code}")


class Item(Aggregate):
    """A catalogue item and every version of it."""

    TOPIC = "esup.catalogue:Item"

    class Event(Aggregate.Event):
        pass

    class Registered(Aggregate.Created, Event):
        TOPIC = "esup.catalogue:Item.Registered"
        terms: dict[str, Any]

    class Revised(Event):
        TOPIC = "esup.catalogue:Item.Revised"
        terms: dict[str, Any]

        def apply(self, item: Item) -> None:
            item.versions.append(ItemVersion.from_dict(self.terms))

    Created = Registered  # so the library does not define an untopicked Created

    def __init__(self, terms: dict[str, Any]) -> None:
        self.versions: list[ItemVersion] = [ItemVersion.from_dict(terms)]

    @staticmethod
    def create_id(terms: dict[str, Any]) -> UUID:
        return item_id(terms["code"])

    @classmethod
    def register(cls, terms: ItemVersion, at: datetime) -> Item:
        stamped = ItemVersion(**{**terms.__dict__, "version": 1, "effective_from": at})
        return cls._create(cls.Registered, terms=stamped.as_dict(), timestamp=at)

    def revise(self, terms: ItemVersion, at: datetime) -> bool:
        """Record a new version; returns False (and records nothing) if nothing changed."""
        if self.current.same_terms(terms):
            return False
        stamped = ItemVersion(**{**terms.__dict__, "version": len(self.versions) + 1, "effective_from": at})
        self.trigger_event(self.Revised, terms=stamped.as_dict(), timestamp=at)
        return True

    @property
    def current(self) -> ItemVersion:
        return self.versions[-1]

    def version_at(self, instant: datetime) -> ItemVersion:
        """The version in force at ``instant`` (the first version if the case predates them all)."""
        chosen = self.versions[0]
        for v in self.versions:
            if v.effective_from is not None and v.effective_from <= instant:
                chosen = v
        return chosen
