"""The clinic's wall clock beside the instants people read (boards, her page, visits).

Every instant in an answer is an ISO 8601 date-time with its offset (UTC, ``Z``): the client
computes with those. Where a person reads a time off a screen - a TV's "called 14:05", her
page's "not before 10:30", the desk's visit list - the answer also gives it as the clinic's
wall clock, ``HH:MM`` in ``clinic_timezone``, so that no screen converts zones on its own (a
phone set to another zone would show another hour). The fields are named ``<field>_local``.

The zone is the deployment's setting, fixed when the app is made (``use_clinic_zone``); the
schemas read it when they are serialised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import computed_field

_zone: ZoneInfo = ZoneInfo("Asia/Shanghai")  # the settings' default, until the app says

LOCAL_DESCRIPTION = "the clinic's wall clock (clinic_timezone), HH:MM"


def use_clinic_zone(zone: ZoneInfo) -> None:
    """Called once by create_app with settings.tz."""
    global _zone
    _zone = zone


def clinic_zone() -> ZoneInfo:
    return _zone


def clinic_hhmm(at: datetime | None) -> str | None:
    """``at`` on the clinic's wall clock, ``HH:MM`` (None stays None). A naive datetime (as
    SQLite hands them back) is UTC, as everything is stored."""
    if at is None:
        return None
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(_zone).strftime("%H:%M")


def local_of(field: str) -> Any:
    """A read-only ``<field>_local`` for a response model: ``called_at_local: ClassVar[Any] =
    local_of("called_at")`` gives called_at on the clinic's wall clock, in the answer and in
    OpenAPI (ClassVar: not a field the model is given, for pydantic and the type checkers)."""

    def value(self: object) -> str | None:
        at = getattr(self, field)
        return clinic_hhmm(at) if isinstance(at, datetime) else None

    value.__name__ = f"{field}_local"
    return computed_field(  # type: ignore[call-overload]
        property(value),
        return_type=str | None,
        description=f"{field} on {LOCAL_DESCRIPTION}",
        examples=["14:05"],
    )
