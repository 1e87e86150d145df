"""Positions: a station's waiting mothers in call order, and their estimated waits as of the
queue's last change (so that they move only with it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.queues.domain import Busy, Candidate, Estimate, estimate_waits, sort_key
from app.queues.models import QueueEntry, Station
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository


async def ordered_waiting(session: AsyncSession, station: Station, ctx: Ctx) -> list[QueueEntry]:
    """The station's waiting entries in call order (the documented sort key)."""
    return (await waiting_in_call_order(session, station, ctx))[0]


async def waiting_in_call_order(
    session: AsyncSession, station: Station, ctx: Ctx
) -> tuple[list[QueueEntry], dict[uuid.UUID, datetime]]:
    """The waiting entries in call order, and each mother's next timed draw."""
    repo = QueueRepository(session)
    rows = await repo.waiting_today(station.id, ctx.today)
    urgent = {e.id for e, flag in rows if flag}
    # Her earliest pending timed draw (nothing else may keep her past it) and her latest
    # (until then she must stay anyway).
    dues = await repo.timed_dues([e.mother_id for e, _flag in rows])

    def key(e: QueueEntry) -> tuple[object, ...]:
        gap = dues.get(e.mother_id)
        return sort_key(
            _candidate(e, urgent=e.id in urgent, gap_until=gap[1] if gap else None),
            now=ctx.now,
            routing=ctx.policy.routing,
            ageing=ctx.policy.ageing,
        )

    ordered = sorted((e for e, _flag in rows), key=key)
    return ordered, {m: d[0] for m, d in dues.items()}


def callable_now(
    ordered: list[QueueEntry],
    timed: dict[uuid.UUID, datetime],
    busy: set[uuid.UUID],
    now: datetime,
) -> list[QueueEntry]:
    """The waiting entries call-next may call now, in the order it tries them: in call order,
    free now (not a timed draw or a rejoin still ahead), she is not called or served elsewhere,
    and it would not keep her past her next timed draw. ``call_next`` and the waiting-room
    board both read this: the board's next ticket is the one call-next calls."""
    out = []
    for entry in ordered:
        if entry.available_at > now or entry.mother_id in busy:
            continue
        due = timed.get(entry.mother_id)
        if (
            entry.due_at is None
            and due is not None
            and now + timedelta(minutes=entry.expected_minutes) > due
        ):
            continue  # her timed draw comes first; this would keep her past it
        out.append(entry)
    return out


def _candidate(e: QueueEntry, *, urgent: bool, gap_until: datetime | None = None) -> Candidate:
    return Candidate(
        id=e.id,
        ticket_number=e.ticket_number,
        ref_time=e.ref_time,
        entered_at=e.entered_at,
        available_at=e.available_at,
        due_at=e.due_at,
        urgent=urgent,
        fasting=e.fasting,
        station_type=e.station_type,
        gap_until=gap_until if e.due_at is None else None,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    station: Station
    ordered: list[QueueEntry]
    busy: list[QueueEntry]
    estimates: dict[uuid.UUID, Estimate]


async def snapshot(session: AsyncSession, station: Station, ctx: Ctx) -> Snapshot:
    """Positions and waits as of the queue's last change (so that they move only with it)."""
    at = station.queue_changed_at or ctx.now
    as_of = replace(ctx, now=at)
    ordered = await ordered_waiting(session, station, as_of)
    busy = await QueueRepository(session).busy_entries(station.id)
    return Snapshot(station, ordered, list(busy), estimates_in_order(station, busy, ordered, at))


def estimates_in_order(
    station: Station, busy: Sequence[QueueEntry], ordered: Sequence[QueueEntry], at: datetime
) -> dict[uuid.UUID, Estimate]:
    """Each entry's position and estimated wait, ``ordered`` taken in that order, as of
    ``at`` (the rooms in service count their expected remaining minutes)."""
    busy_minutes = [
        Busy(
            max(
                0.0,
                e.expected_minutes
                - ((at - e.started_at).total_seconds() / 60 if e.started_at else 0),
            )
        )
        for e in busy
    ]
    return estimate_waits(
        station.servers,
        busy_minutes,
        [
            (e.id, max(0.0, (e.available_at - at).total_seconds() / 60), e.expected_minutes)
            for e in ordered
        ],
    )
