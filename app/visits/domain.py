"""Visit rules: the FHIR-Appointment-like status machine and session slots. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class VisitStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"  # FHIR Appointment "arrived"/"checked-in"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # FHIR "fulfilled"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"  # FHIR "noshow"


ACTIVE = frozenset({VisitStatus.BOOKED, VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS})
TERMINAL = frozenset({VisitStatus.COMPLETED, VisitStatus.CANCELLED, VisitStatus.NO_SHOW})

TRANSITIONS: dict[VisitStatus, frozenset[VisitStatus]] = {
    VisitStatus.BOOKED: frozenset(
        {VisitStatus.CHECKED_IN, VisitStatus.CANCELLED, VisitStatus.NO_SHOW}
    ),
    # She may leave before any exam (cancelled) or finish without a separate start.
    VisitStatus.CHECKED_IN: frozenset(
        {VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED, VisitStatus.CANCELLED}
    ),
    VisitStatus.IN_PROGRESS: frozenset({VisitStatus.COMPLETED}),
    VisitStatus.COMPLETED: frozenset(),
    VisitStatus.CANCELLED: frozenset(),
    VisitStatus.NO_SHOW: frozenset(),
}


class IllegalTransitionError(ValueError):
    def __init__(self, current: VisitStatus, requested: VisitStatus) -> None:
        super().__init__(f"a {current.value} visit cannot become {requested.value}")
        self.current = current
        self.requested = requested


def check_transition(current: VisitStatus, requested: VisitStatus) -> None:
    if requested not in TRANSITIONS[current]:
        raise IllegalTransitionError(current, requested)


@dataclass(frozen=True, slots=True)
class SessionShape:
    """A clinic session's day, opening hours and hourly capacity."""

    session_date: date
    starts_at: time
    ends_at: time
    per_hour: int

    def slots(self) -> list[time]:
        """The start of each hour-long booking slot."""
        out = []
        current = datetime.combine(self.session_date, self.starts_at)
        end = datetime.combine(self.session_date, self.ends_at)
        while current < end:
            out.append(current.time())
            current += timedelta(hours=1)
        return out

    @property
    def capacity(self) -> int:
        return len(self.slots()) * self.per_hour

    def slot_of(self, at: time) -> time | None:
        """The slot a local time falls in, or None when the session is closed then."""
        if not self.starts_at <= at < self.ends_at:
            return None
        slots = self.slots()
        return max(s for s in slots if s <= at)


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A clinic wall-clock time as the UTC instant the API and database speak."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def first_free_slot(
    shape: SessionShape, booked_per_slot: dict[time, int], *, earliest: time | None = None
) -> time | None:
    """The first hour with room, not before ``earliest`` (the current hour on the day itself)."""
    return next(iter(free_slots(shape, booked_per_slot, earliest=earliest)), None)


def free_slots(
    shape: SessionShape, booked_per_slot: dict[time, int], *, earliest: time | None = None
) -> list[time]:
    """Every hour with room, in order, not before ``earliest``."""
    return [
        slot
        for slot in shape.slots()
        if (earliest is None or slot >= earliest) and booked_per_slot.get(slot, 0) < shape.per_hour
    ]


def nearest_first(slots: list[time], asked: time) -> list[time]:
    """``slots`` other than ``asked``, the nearest to it first (a later hour before an earlier
    one as near)."""
    base = datetime.combine(date.min, asked)
    return sorted(
        (s for s in slots if s != asked),
        key=lambda s: (abs(datetime.combine(date.min, s) - base), s < asked),
    )
