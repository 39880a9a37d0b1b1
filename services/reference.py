"""Catalogue, organisation and calendar: small reference data, cached in memory.

The cache follows the reference application's own notification log: one cheap query for the
log's last id tells whether anything changed since (in this process or another).
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.calendar import DEFAULT_OFFICE_HOURS, OfficeHours, WorkingCalendar, YearSchedule
from domain.catalogue import Item, ItemVersion, item_id
from domain.channel import Channel, ChannelTerms, channel_id
from domain.clock import Clock
from domain.errors import InvalidInput
from domain.organisation import OrgUnit, UnitKind, parse_unit, unit_id
from domain.schedule import PublishedYear, schedule_id
from infra.calendar_source import schedules_from_chinesecalendar
from services.apps import Reference
from infra.logs import notifications_after


class ReferenceService:
    def __init__(self, app: Reference, clock: Clock, office_hours: OfficeHours = DEFAULT_OFFICE_HOURS) -> None:
        self.app = app
        self.clock = clock
        self._lock = threading.RLock()
        self._position: int | None = -1
        self._items: dict[str, Item] = {}
        self._channels: dict[str, Channel] = {}  # parallel-approval channels (并联审批通道)
        self._units: dict[tuple[UnitKind, str], OrgUnit] = {}
        self._published: dict[int, YearSchedule] = {}
        self._package = schedules_from_chinesecalendar()
        self._office_hours = office_hours
        self._calendars: dict[str | None, WorkingCalendar] = {}

    # -- cache ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the cache up to the reference log's head (cheap when nothing changed)."""
        head = self.app.recorder.max_notification_id()
        with self._lock:
            if head == self._position:
                return
            start = 0 if self._position in (None, -1) else self._position
            for n in notifications_after(self.app.recorder, start):
                self._load(n.originator_id, n.topic)
            self._position = head
            self._calendars = {}

    def _load(self, originator_id: UUID, topic: str) -> None:
        agg: Any = self.app.repository.get(originator_id)
        if isinstance(agg, Item):
            self._items[agg.current.code] = agg
        elif isinstance(agg, OrgUnit):
            self._units[(agg.kind, agg.code)] = agg
        elif isinstance(agg, Channel):
            self._channels[agg.current.code] = agg
        elif isinstance(agg, PublishedYear):
            self._published[agg.year] = YearSchedule.from_dict(agg.schedule)

    # -- catalogue -----------------------------------------------------------------------

    def item(self, code: str, *, refresh: bool = True) -> Item | None:
        if refresh:
            self.refresh()
        return self._items.get(code)

    def items(self) -> list[Item]:
        self.refresh()
        return sorted(self._items.values(), key=lambda i: i.current.code)

    def put_item(self, code: str, body: dict[str, Any]) -> tuple[ItemVersion, bool, bool]:
        """Register or revise an item; returns (current version, created, changed)."""
        terms = ItemVersion.parse(code, body)
        if self.unit(UnitKind.DEPARTMENT, terms.department) is None:
            raise InvalidInput(f"unknown department {terms.department}: PUT /api/v1/departments/{{code}} first", code="unknown_department")
        item, created, changed = self._upsert(
            item_id(code), lambda now: Item.register(terms, now), lambda agg, now: agg.revise(terms, now)
        )
        return item.current, created, changed

    # -- parallel-approval channels ------------------------------------------------------

    def channel(self, code: str, *, refresh: bool = True) -> Channel | None:
        if refresh:
            self.refresh()
        return self._channels.get(code)

    def channels(self) -> list[Channel]:
        self.refresh()
        return sorted(self._channels.values(), key=lambda c: c.current.code)

    def put_channel(self, code: str, body: Any) -> tuple[ChannelTerms, bool, bool]:
        """Register or revise a channel: its member items, coordinating department and center
        must exist; returns (current version, created, changed)."""
        terms = ChannelTerms.parse(code, body)
        if self.unit(UnitKind.DEPARTMENT, terms.department) is None:
            raise InvalidInput(f"unknown department {terms.department}", code="unknown_department")
        if terms.center and self.unit(UnitKind.CENTER, terms.center, refresh=False) is None:
            raise InvalidInput(f"unknown center {terms.center}", code="unknown_center")
        self.refresh()
        missing = [i for i in terms.items if i not in self._items]
        if missing:
            raise InvalidInput(f"unknown member items: {', '.join(missing)}", code="unknown_item", missing=missing)
        channel, created, changed = self._upsert(
            channel_id(code), lambda now: Channel.register(terms, now), lambda agg, now: agg.revise(terms, now)
        )
        return channel.current, created, changed

    # -- organisation --------------------------------------------------------------------

    def unit(self, kind: UnitKind, code: str, *, refresh: bool = True) -> OrgUnit | None:
        if refresh:
            self.refresh()
        return self._units.get((kind, code))

    def units(self, kind: UnitKind) -> list[OrgUnit]:
        self.refresh()
        return sorted((u for (k, _), u in self._units.items() if k is kind), key=lambda u: u.code)

    def put_unit(self, kind: UnitKind, code: str, body: Any) -> tuple[dict[str, Any], bool, bool]:
        attrs = parse_unit(kind, code, body)
        # Parents must exist: a window's hall, a staff member's department, ...
        for key, parent_kind in (("center", UnitKind.CENTER), ("hall", UnitKind.HALL), ("department", UnitKind.DEPARTMENT), ("window", UnitKind.WINDOW), ("parent", UnitKind.CENTER)):
            if attrs.get(key) and self.unit(parent_kind, attrs[key]) is None:
                raise InvalidInput(f"unknown {parent_kind.value} {attrs[key]}", code=f"unknown_{parent_kind.value}")
        if attrs.get("items"):
            self.refresh()
        missing = [i for i in attrs.get("items") or () if i not in self._items]
        if missing:  # a center's delegated items must be in the catalogue
            raise InvalidInput(f"unknown items: {', '.join(missing)}", code="unknown_item", missing=missing)
        unit, created, changed = self._upsert(
            unit_id(kind, code), lambda now: OrgUnit.define(kind, attrs, now), lambda agg, now: agg.change(attrs, now)
        )
        return unit.attrs, created, changed

    # -- calendar ------------------------------------------------------------------------

    def calendar(self, center: str | None = None, *, refresh: bool = True) -> WorkingCalendar:
        """The working calendar, with ``center``'s own office hours if it has them."""
        if refresh:
            self.refresh()
        with self._lock:
            cal = self._calendars.get(center)
            if cal is None:
                unit = self._units.get((UnitKind.CENTER, center)) if center else None
                hours = unit.attrs.get("office_hours") if unit else None
                office = OfficeHours.from_dict(hours) if hours else self._office_hours
                # Provisional: a date in a year with no schedule yet counts weekdays, and what
                # leans on it is flagged ``calendar_provisional`` (a fact is never refused for
                # want of our reference data); ``schedule(year)`` still refuses such a year.
                cal = WorkingCalendar({**self._package, **self._published}, office, provisional=True)
                self._calendars[center] = cal
            return cal

    def center_of(self, department: str, window: str | None, *, refresh: bool = True) -> str | None:
        """The center whose office hours apply: the window's hall's center, else the department's."""
        if refresh:
            self.refresh()
        if window:
            w = self._units.get((UnitKind.WINDOW, window))
            hall = self._units.get((UnitKind.HALL, w.attrs.get("hall"))) if w and w.attrs.get("hall") else None
            if hall and hall.attrs.get("center"):
                return hall.attrs["center"]
        d = self._units.get((UnitKind.DEPARTMENT, department))
        return d.attrs.get("center") if d else None

    def known_years(self) -> list[int]:
        """Every year with a schedule: packaged or published."""
        self.refresh()
        with self._lock:
            return sorted({*self._package, *self._published})

    def published_years(self) -> dict[int, YearSchedule]:
        self.refresh()
        return dict(self._published)

    def publish_year(self, year: int, body: Any) -> tuple[YearSchedule, bool, bool]:
        if not isinstance(body, dict):
            raise InvalidInput('a schedule is {"holidays": [...], "workdays": [...]}', code="invalid_body")
        schedule = YearSchedule.from_dict({"year": year, **body})
        _, created, changed = self._upsert(
            schedule_id(year),
            lambda now: PublishedYear.publish(year, schedule.as_dict(), now),
            lambda agg, now: agg.republish(schedule.as_dict(), now),
        )
        return schedule, created, changed

    def _upsert(self, agg_id: UUID, create: Any, change: Any) -> tuple[Any, bool, bool]:
        """Create the aggregate, or apply ``change`` to it (which says whether anything changed);
        saves only when something did. Returns (aggregate, created, changed)."""
        now = self.clock.now()
        try:
            agg = self.app.repository.get(agg_id)
        except AggregateNotFoundError:
            agg = create(now)
            self.app.save(agg)
            return agg, True, True
        changed = change(agg, now)
        if changed:
            self.app.save(agg)
        return agg, False, changed
