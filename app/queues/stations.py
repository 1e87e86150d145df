"""The clinic's stations as the admin keeps them: add one, change its rooms and hours, close it
(its waiting mothers move to a sibling) or open it again."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, invalid_field
from app.queues.changes import queue_changed
from app.queues.domain import Catalogue
from app.queues.models import QueueEntry, Station
from app.queues.operations import close_station
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository
from app.queues.schemas import StationCreate


async def stations(session: AsyncSession) -> list[Station]:
    """Every station, by code."""
    return await QueueRepository(session).stations_by_code()


async def create_station(session: AsyncSession, data: StationCreate, ctx: Ctx) -> Station:
    if await QueueRepository(session).station_code_taken(data.code):
        raise Conflict(f"Station {data.code} exists already.")
    station = Station(**data.model_dump(), is_open=True, updated_at=ctx.now, version=1)
    session.add(station)
    await session.flush()
    return station


async def update_station(
    session: AsyncSession,
    station: Station,
    changes: dict[str, Any],
    catalogue: Catalogue,
    ctx: Ctx,
    *,
    closer: Ctx,
) -> tuple[list[QueueEntry], list[str]]:
    """Apply an admin's changes; closing moves its waiting mothers (as ``closer``). Returns the
    places moved and the fields changed."""
    changes = dict(changes)
    is_open = changes.pop("is_open", None)
    closing = is_open is False and station.is_open
    if is_open is True:
        station.is_open = True
    for field, value in changes.items():
        setattr(station, field, value)
    if station.closes_at <= station.opens_at:
        raise invalid_field("closes_at", "must be after opens_at")
    busy_rooms = await QueueRepository(session).highest_busy_room(station.id)
    if busy_rooms and station.servers < busy_rooms:
        raise Conflict(f"Room {busy_rooms} is busy; finish its mother before removing the room.")
    station.version += 1
    station.updated_at = ctx.now
    moved: list[QueueEntry] = []
    if closing:
        moved = await close_station(session, station, catalogue, closer)
    else:
        await queue_changed(session, [station], ctx)
    fields = sorted([*changes, *(["is_open"] if is_open is not None else [])])
    return moved, fields
