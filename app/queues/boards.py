"""What a station's screens show: its queue (who is served, who waits in call order with
estimated waits, whose glucose drink is not yet recorded), the answer to a call, and the
waiting-room display (tickets and masked names only)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.mothers.domain import mask_name
from app.queues.domain import GLUCOSE_DRINK, TIMING_EVENTS, Catalogue
from app.queues.models import EntryState, ExamStep, QueueEntry, Station
from app.queues.policy import Ctx
from app.queues.positions import snapshot
from app.queues.repository import QueueRepository
from app.queues.schemas import (
    AwaitingStart,
    BoardTicket,
    CalledMother,
    CallResult,
    StationBoard,
    StationQueue,
)
from app.queues.timing import awaiting_timing_start
from app.queues.views import entry_facts, entry_views, station_views

BOARD_NEXT = 5  # tickets shown as next on the waiting-room display


async def station_queue(
    session: AsyncSession, station: Station, catalogue: Catalogue, ctx: Ctx
) -> tuple[StationQueue, list[uuid.UUID]]:
    """The station's queue, and the mothers it shows (for the audit trail)."""
    snap = await snapshot(session, station, ctx)
    serving = await entry_views(session, snap.busy, catalogue)
    waiting = await entry_views(session, snap.ordered, catalogue, estimates=snap.estimates)
    awaiting = await awaiting_timing_start(session, station, ctx)
    shown = [*snap.busy, *snap.ordered]
    queue = StationQueue(
        station=(await station_views(session, [station]))[0],
        serving=serving,
        waiting=waiting,
        awaiting_start=await _awaiting_views(session, awaiting, catalogue),
        as_of=station.queue_changed_at,
    )
    return queue, [e.mother_id for e in shown] + [a.mother_id for a, _ in awaiting]


async def _awaiting_views(
    session: AsyncSession, awaiting: list[tuple[QueueEntry, ExamStep]], catalogue: Catalogue
) -> list[AwaitingStart]:
    if not awaiting:
        return []
    names = await QueueRepository(session).mother_names({e.mother_id for e, _ in awaiting})
    out = []
    for entry, first in awaiting:
        rule = catalogue.rule(first.exam_code)
        assert first.done_at is not None
        out.append(
            AwaitingStart(
                entry_id=entry.id,
                ticket=entry.ticket,
                masked_name=mask_name(names[entry.mother_id]),
                exam=rule.name if rule else first.exam_code,
                event=GLUCOSE_DRINK,
                first_step_done_at=first.done_at,
                waiting_for=f"{TIMING_EVENTS[GLUCOSE_DRINK]} not started",
            )
        )
    return out


async def call_result(
    session: AsyncSession, station: Station, entry: QueueEntry | None, catalogue: Catalogue
) -> CallResult:
    """The answer to a station's call: whom it called (name and MRN, to check her wristband),
    or why nobody, and how many still wait."""
    waiting = await QueueRepository(session).waiting_count(station.id)
    if entry is None:
        return CallResult(
            called=None,
            waiting=waiting,
            reason="Nobody waiting may be called now (busy elsewhere, not yet due, or none)."
            if waiting
            else "Nobody is waiting.",
        )
    view = (await entry_views(session, [entry], catalogue))[0]
    facts = (await entry_facts(session, [entry], catalogue))[entry.id]
    return CallResult(
        called=CalledMother(entry=view, name=facts.name, mrn=facts.mrn), waiting=waiting
    )


async def board(session: AsyncSession, station: Station, ctx: Ctx) -> StationBoard:
    """The waiting-room display: now calling, and the next tickets."""
    snap = await snapshot(session, station, ctx)
    shown = [*snap.busy, *snap.ordered[:BOARD_NEXT]]
    names = await QueueRepository(session).names_of_entries([e.id for e in shown]) if shown else {}
    return StationBoard(
        station=station.code,
        name=station.name,
        now_calling=[
            BoardTicket(ticket=e.ticket, masked_name=mask_name(names[e.id]), room=e.room)
            for e in snap.busy
            if e.state == EntryState.CALLED
        ],
        next=[
            BoardTicket(ticket=e.ticket, masked_name=mask_name(names[e.id]))
            for e in snap.ordered[:BOARD_NEXT]
        ],
        as_of=station.queue_changed_at,
    )
