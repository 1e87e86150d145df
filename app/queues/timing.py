"""The start of a timed test (the OGTT's glucose drink): recorded by the station on her
finished first draw; her timed draws are due from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import invalid_field
from app.queues.changes import queue_changed
from app.queues.domain import TIMING_EVENTS, Catalogue, timed_start, timing_start_problem
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.policy import Ctx, QueueConflict
from app.queues.repository import QueueRepository
from app.queues.routing import route_visit, step_view
from app.visits.domain import VisitStatus


@dataclass(frozen=True, slots=True)
class TimedDraw:
    step: ExamStep
    due_at: datetime | None  # None until the start is recorded
    entry: QueueEntry | None  # her place for it, once queued


@dataclass(frozen=True, slots=True)
class TimedTest:
    """A timed test's start as recorded on its first step, and its timed draws."""

    first_entry: QueueEntry
    first_step: ExamStep
    event: str
    draws: list[TimedDraw]
    recorded_now: bool  # False: a retry of the same start


async def _timed_first_step(
    session: AsyncSession, entry: QueueEntry, event: str
) -> tuple[ExamStep, list[ExamStep]]:
    """The first step this entry served of a test timed from ``event``, and its timed steps."""
    repo = QueueRepository(session)
    firsts = await repo.first_steps_of_entry(entry.id)
    timed = await repo.timed_steps([f.order_id for f in firsts], event) if firsts else []
    orders = {s.order_id for s in timed}
    if len(orders) != 1:
        raise QueueConflict(
            f"Ticket {entry.ticket} served no test timed from the {TIMING_EVENTS[event]}"
            if not orders
            else f"Ticket {entry.ticket} served several tests timed from the"
            f" {TIMING_EVENTS[event]}; record it on each test's own draw."
        )
    first = next(f for f in firsts if f.order_id in orders)
    return first, list(timed)


async def _timed_test(
    session: AsyncSession,
    entry: QueueEntry,
    first: ExamStep,
    timed: Sequence[ExamStep],
    event: str,
    *,
    recorded_now: bool,
) -> TimedTest:
    ids = {s.entry_id for s in timed if s.entry_id is not None}
    entries = {e.id: e for e in await QueueRepository(session).entries(ids)} if ids else {}
    anchor = step_view(first)
    draws = []
    for step in timed:
        start = timed_start(step_view(step), anchor)
        draws.append(
            TimedDraw(
                step=step,
                due_at=start + timedelta(minutes=step.offset_minutes) if start else None,
                entry=entries.get(step.entry_id) if step.entry_id else None,
            )
        )
    return TimedTest(entry, first, event, draws, recorded_now)


async def record_timing_start(
    session: AsyncSession,
    entry: QueueEntry,
    catalogue: Catalogue,
    ctx: Ctx,
    *,
    event: str,
    started_at: datetime,
) -> TimedTest:
    """The station records when the event a timed test counts from happened (the glucose
    drink began, CMA 2014: "从开始饮用葡萄糖水计算时间"): her timed draws are due from it, and
    queued. Once: the same time again is a retry; another time is refused."""
    what = TIMING_EVENTS[event]
    first, timed = await _timed_first_step(session, entry, event)
    if entry.state != EntryState.DONE or first.state != StepState.DONE or first.done_at is None:
        raise QueueConflict(
            f"Ticket {entry.ticket} is {entry.state.replace('_', ' ')}: the {what} is recorded"
            " once her fasting draw is finished.",
            extra={"current_state": entry.state},
        )
    if first.timing_started_at is not None:
        if first.timing_started_at == started_at:
            return await _timed_test(session, entry, first, timed, event, recorded_now=False)
        raise QueueConflict(
            f"The {what} was recorded as started at {first.timing_started_at.isoformat()} by"
            f" {first.timing_recorded_by_name}; a different time is refused.",
            extra={"recorded_started_at": first.timing_started_at.isoformat()},
        )
    if not any(s.state == StepState.PENDING for s in timed):
        raise QueueConflict(f"The timed draws of ticket {entry.ticket}'s test are not pending.")
    problem = timing_start_problem(started_at, first_done_at=first.done_at, now=ctx.now)
    if problem is not None:
        raise invalid_field("started_at", problem)
    repo = QueueRepository(session)
    visit = await repo.visit(entry.visit_id)
    assert visit is not None
    if visit.status not in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        raise QueueConflict(f"Her visit is {visit.status}; nothing more is queued for it.")
    values = {
        "timing_started_at": started_at,
        "timing_recorded_at": ctx.now,
        "timing_recorded_by_id": ctx.actor.id,
        "timing_recorded_by_name": ctx.actor.name[:100],
    }
    if await repo.record_timing_start(first.id, values) != 1:
        raise QueueConflict(f"The {what} of ticket {entry.ticket} was recorded just now.")
    for name, value in values.items():  # what the UPDATE wrote, without reading it back
        set_committed_value(first, name, value)
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)
    stations = routed.stations | await repo.live_station_ids_of_mother(visit.mother_id)
    await queue_changed(session, await repo.stations(stations), ctx, mother_ids=[visit.mother_id])
    return await _timed_test(session, entry, first, timed, event, recorded_now=True)


async def awaiting_timing_start(
    session: AsyncSession, station: Station, ctx: Ctx
) -> list[tuple[QueueEntry, ExamStep]]:
    """Today's services at this station whose timed test waits for its start to be recorded
    (the glucose drink): the station sees them until it records it."""
    return await QueueRepository(session).awaiting_timing_start(station.id, ctx.today)
