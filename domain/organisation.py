"""Organisation (组织机构): centers of three tiers, halls, windows, departments, staff.

One small aggregate per unit, addressed by kind and code. Units are reference data: steps
name their department (required), window and staff (optional) by code.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE, _code, _text
from domain.errors import InvalidInput


class UnitKind(str, Enum):
    CENTER = "center"  # 政务服务中心 (district / street / community tier)
    HALL = "hall"  # 大厅
    WINDOW = "window"  # 窗口
    DEPARTMENT = "department"  # 部门
    STAFF = "staff"  # 窗口工作人员


class Tier(str, Enum):
    DISTRICT = "district"  # 区级政务服务中心
    STREET = "street"  # 街道社会事务服务中心
    COMMUNITY = "community"  # 社区便民服务中心


class WindowKind(str, Enum):
    STANDARD = "standard"  # 标准件通道
    ENTERPRISE_PARALLEL = "enterprise_parallel"  # 企业设立并联审批通道
    CONSTRUCTION_PARALLEL = "construction_parallel"  # 项目报建并联审批通道
    INTERMEDIARY = "intermediary"  # 中介服务通道
    DEPARTMENT = "department"  # 部门窗口 (tax, social security, ...)


class StaffKind(str, Enum):
    CIVIL_SERVANT = "civil_servant"  # 在编干部
    COMMITTEE_HIRED = "committee_hired"  # 管委会聘用
    SELF_HIRED = "self_hired"  # 单位自聘


# Which attributes each kind takes, and their allowed values (None: free text code).
_ATTRS: dict[UnitKind, dict[str, type | None]] = {
    # ``items``: the catalogue items delegated to the center (下放事项): enterprise items at the
    # district, personal and convenience items at the street and community centers.
    UnitKind.CENTER: {"tier": Tier, "parent": None, "office_hours": dict, "items": list},
    UnitKind.HALL: {"center": None},
    UnitKind.WINDOW: {"hall": None, "window_kind": WindowKind, "department": None},
    UnitKind.DEPARTMENT: {"center": None},
    UnitKind.STAFF: {"department": None, "window": None, "staff_kind": StaffKind},
}


def unit_id(kind: UnitKind, code: str) -> UUID:
    return uuid5(NAMESPACE, f"{kind.value}:{code}")


def parse_unit(kind: UnitKind, code: str, body: object) -> dict[str, Any]:
    """Validate a unit definition: ``{"name": ..., <kind's attributes>}``."""
    if not isinstance(body, dict):
        raise InvalidInput("a unit is a JSON object", code="invalid_body")
    allowed = _ATTRS[kind]
    unknown = set(body) - set(allowed) - {"name"}
    if unknown:
        raise InvalidInput(f"unknown fields for a {kind.value}: {', '.join(sorted(unknown))}", code="unknown_field")
    attrs: dict[str, Any] = {"code": _code(code, f"{kind.value} code"), "name": _text(body.get("name"), "name")}
    for key, enum in allowed.items():
        raw = body.get(key)
        if raw is None:
            attrs[key] = None
        elif enum is list:
            if not isinstance(raw, list) or len(raw) > 2000:
                raise InvalidInput(f"{key} must be a list of codes", code="invalid_field")
            attrs[key] = sorted({_code(c, key) for c in raw})
        elif enum is dict:
            # A center's own office hours (作息时间), validated by the calendar's rules.
            from domain.calendar import OfficeHours

            attrs[key] = OfficeHours.from_dict(raw).as_dict()
        elif enum is None:
            attrs[key] = _code(raw, key)
        else:
            try:
                attrs[key] = enum(raw).value  # type: ignore[misc]
            except ValueError:
                raise InvalidInput(
                    f"{key} must be one of " + ", ".join(e.value for e in enum), code="invalid_field"  # type: ignore[attr-defined]
                ) from None
    return attrs


class OrgUnit(Aggregate):
    TOPIC = "esup.organisation:OrgUnit"

    class Event(Aggregate.Event):
        pass

    class Defined(Aggregate.Created, Event):
        TOPIC = "esup.organisation:OrgUnit.Defined"
        kind: str
        attrs: dict[str, Any]

    class Changed(Event):
        TOPIC = "esup.organisation:OrgUnit.Changed"
        attrs: dict[str, Any]

        def apply(self, unit: OrgUnit) -> None:
            unit.attrs = dict(self.attrs)

    Created = Defined  # so the library does not define an untopicked Created

    def __init__(self, kind: str, attrs: dict[str, Any]) -> None:
        self.kind = UnitKind(kind)
        self.attrs = dict(attrs)

    @staticmethod
    def create_id(kind: str, attrs: dict[str, Any]) -> UUID:
        return unit_id(UnitKind(kind), attrs["code"])

    @classmethod
    def define(cls, kind: UnitKind, attrs: dict[str, Any], at: datetime) -> OrgUnit:
        return cls._create(cls.Defined, kind=kind.value, attrs=attrs, timestamp=at)

    def change(self, attrs: dict[str, Any], at: datetime) -> bool:
        if attrs == self.attrs:
            return False
        self.trigger_event(self.Changed, attrs=attrs, timestamp=at)
        return True

    @property
    def code(self) -> str:
        return self.attrs["code"]

    @property
    def name(self) -> str:
        return self.attrs["name"]
