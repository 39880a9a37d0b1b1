"""Time limits (时限) and their units, as the item catalogue states them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain.errors import InvalidInput


class Unit(str, Enum):
    WORKING_DAYS = "working_days"  # 工作日: statutory holidays excluded, 调休 make-up days counted
    WORKING_HOURS = "working_hours"  # 工作小时: office sessions only
    CALENDAR_DAYS = "calendar_days"  # 自然日


@dataclass(frozen=True)
class Limit:
    """A limit such as 20 working days. ``value`` may be 0 (即办: concluded on the spot)."""

    value: int
    unit: Unit

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise InvalidInput("limit value must be an integer", code="invalid_limit")
        if self.value < 0 or self.value > 3650:
            raise InvalidInput("limit value must be between 0 and 3650", code="invalid_limit")
        if not isinstance(self.unit, Unit):
            raise InvalidInput(f"unknown limit unit {self.unit!r}", code="invalid_limit")

    @classmethod
    def parse(cls, raw: object) -> Limit:
        if not isinstance(raw, dict):
            raise InvalidInput('a limit is {"value": N, "unit": "working_days"}', code="invalid_limit")
        try:
            unit = Unit(raw.get("unit"))
        except ValueError:
            raise InvalidInput(
                f"unknown limit unit {raw.get('unit')!r}; use one of "
                + ", ".join(u.value for u in Unit),
                code="invalid_limit",
            ) from None
        return cls(raw.get("value"), unit)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": self.unit._value_}  # _value_: .value is a Python-level property

    def plus(self, amount: int) -> Limit:
        return Limit(self.value + amount, self.unit)
