"""Injectable time: the app asks its clock, so tests and the simulator can move the day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


def local_today(clock: Clock, tz: ZoneInfo) -> date:
    """The clinic's calendar date now (the day changes at local midnight, not UTC)."""
    return clock.now().astimezone(tz).date()


class ClinicTime:
    """For a dataclass with ``now`` and ``tz``: the clinic's day and wall-clock time."""

    __slots__ = ()
    now: datetime
    tz: ZoneInfo

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    @property
    def local_time(self) -> time:
        return self.now.astimezone(self.tz).time()
