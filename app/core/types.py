"""Shared field types: clinic wall-clock times and bounded instants."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, WithJsonSchema

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _wall_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give a clinic wall-clock time without an offset, e.g. 08:00")
    return value


def _bounded(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must lie between the years 1900 and 2200")
    return value.astimezone(UTC)


# A clinic wall-clock time, "08:00" or "08:00:00". Documented as a pattern: JSON Schema's
# "format: time" is RFC 3339's full-time, which needs an offset these times do not have.
WALL_CLOCK_SCHEMA = {
    "type": "string",
    "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?$",
    "examples": ["08:00"],
}
LocalTime = Annotated[time, AfterValidator(_wall_clock), WithJsonSchema(WALL_CLOCK_SCHEMA)]
Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
