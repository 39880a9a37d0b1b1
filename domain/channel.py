"""Parallel-approval channels (并联审批通道): reference data, like the item catalogue.

A channel (e.g. 企业设立并联审批, 项目报建并联审批) names its member items (the ordinary items
its parts are cases of, handled by several departments at the same time), the department that
coordinates it (the channel window's), the center whose office hours its clock follows, and the
bundle's own promised and legal limits: enterprise setup promised in 4 working hours,
construction projects in 17 working days (down from 68, the serial sum before the channel).

Each change is a new version; a bundle is judged by the channel version in force when it was
submitted (its terms are copied onto the bundle's ``Submitted`` event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE, _code, _text
from domain.errors import InvalidInput
from domain.limits import Limit, Unit

CHANNEL_FIELDS = {"name", "department", "center", "items", "promised_limit", "legal_limit", "serial_limit"}


@dataclass(frozen=True)
class ChannelTerms:
    code: str
    name: str
    department: str  # the coordinating department (the channel window's)
    center: str | None  # whose office hours the bundle's clock follows
    items: tuple[str, ...]  # member items
    promised_limit: Limit  # the bundle's own promise
    legal_limit: Limit  # the bundle's own legal limit
    serial_limit: Limit | None = None  # what the same items took one after another (documentation)
    version: int = 1
    effective_from: datetime | None = None

    @classmethod
    def parse(cls, code: str, body: object) -> ChannelTerms:
        if not isinstance(body, dict):
            raise InvalidInput("a channel is a JSON object", code="invalid_body")
        unknown = set(body) - CHANNEL_FIELDS
        if unknown:
            raise InvalidInput(f"unknown fields for a channel: {', '.join(sorted(unknown))}", code="unknown_field")
        missing = [k for k in ("name", "department", "items", "promised_limit", "legal_limit") if body.get(k) is None]
        if missing:
            raise InvalidInput(f"required: {', '.join(missing)}", code="missing_field", field=missing[0], missing=missing)
        items = body["items"]
        if not isinstance(items, list) or len(items) < 2 or len(items) > 200:
            raise InvalidInput("items must list 2 to 200 member item codes", code="invalid_field")
        codes = tuple(_code(i, "item code") for i in items)
        if len(set(codes)) != len(codes):
            raise InvalidInput("items lists an item twice", code="invalid_field")
        promised = Limit.parse(body["promised_limit"])
        legal = Limit.parse(body["legal_limit"])
        if promised.unit == legal.unit and promised.value > legal.value:
            raise InvalidInput("the promised limit cannot exceed the legal limit", code="invalid_limit")
        serial = Limit.parse(body["serial_limit"]) if body.get("serial_limit") is not None else None
        return cls(
            code=_code(code, "channel code"), name=_text(body["name"], "name"),
            department=_code(body["department"], "department"),
            center=_code(body["center"], "center") if body.get("center") is not None else None,
            items=codes, promised_limit=promised, legal_limit=legal, serial_limit=serial,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "name": self.name, "department": self.department, "center": self.center,
            "items": list(self.items), "promised_limit": self.promised_limit.as_dict(),
            "legal_limit": self.legal_limit.as_dict(),
            "serial_limit": self.serial_limit.as_dict() if self.serial_limit else None,
            "version": self.version, "effective_from": self.effective_from,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelTerms:
        def limit(raw: dict[str, Any] | None) -> Limit | None:
            return Limit(raw["value"], Unit(raw["unit"])) if raw else None

        return cls(
            code=d["code"], name=d["name"], department=d["department"], center=d.get("center"),
            items=tuple(d["items"]), promised_limit=limit(d["promised_limit"]),  # type: ignore[arg-type]
            legal_limit=limit(d["legal_limit"]), serial_limit=limit(d.get("serial_limit")),  # type: ignore[arg-type]
            version=d.get("version", 1), effective_from=d.get("effective_from"),
        )

    def same_terms(self, other: ChannelTerms) -> bool:
        a, b = self.as_dict(), other.as_dict()
        for k in ("version", "effective_from"):
            a.pop(k), b.pop(k)
        return a == b


def channel_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"channel:{code}")


class Channel(Aggregate):
    """A parallel-approval channel and every version of it."""

    TOPIC = "esup.channel:Channel"

    class Event(Aggregate.Event):
        TOPIC = "esup.channel:Channel.Event"

    class Registered(Aggregate.Created, Event):
        TOPIC = "esup.channel:Channel.Registered"
        terms: dict[str, Any]

    class Revised(Event):
        TOPIC = "esup.channel:Channel.Revised"
        terms: dict[str, Any]

        def apply(self, channel: Channel) -> None:
            channel.versions.append(ChannelTerms.from_dict(self.terms))

    Created = Registered

    def __init__(self, terms: dict[str, Any]) -> None:
        self.versions: list[ChannelTerms] = [ChannelTerms.from_dict(terms)]

    @staticmethod
    def create_id(terms: dict[str, Any]) -> UUID:
        return channel_id(terms["code"])

    @classmethod
    def register(cls, terms: ChannelTerms, at: datetime) -> Channel:
        stamped = ChannelTerms(**{**terms.__dict__, "version": 1, "effective_from": at})
        return cls._create(cls.Registered, terms=stamped.as_dict(), timestamp=at)

    def revise(self, terms: ChannelTerms, at: datetime) -> bool:
        if self.current.same_terms(terms):
            return False
        stamped = ChannelTerms(**{**terms.__dict__, "version": len(self.versions) + 1, "effective_from": at})
        self.trigger_event(self.Revised, terms=stamped.as_dict(), timestamp=at)
        return True

    @property
    def current(self) -> ChannelTerms:
        return self.versions[-1]

    def version_at(self, instant: datetime) -> ChannelTerms:
        chosen = self.versions[0]
        for v in self.versions:
            if v.effective_from is not None and v.effective_from <= instant:
                chosen = v
        return chosen
