"""A visit's queue: where she waits, her estimated waits and finish, what is not yet queued and
why, and the station suggested next (her phone, the desk, the butler's assignments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.queues.domain import Catalogue, Estimate, blockers
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.policy import Ctx
from app.queues.positions import snapshot
from app.queues.repository import QueueRepository
from app.queues.routing import ga_day_of, step_view
from app.queues.schemas import PendingStep, VisitQueuePublic
from app.queues.views import entry_views
from app.visits.models import Visit


@dataclass(frozen=True, slots=True)
class PlaceView:
    entry: QueueEntry
    station: Station
    position: int | None
    wait_minutes: int | None


@dataclass(frozen=True, slots=True)
class VisitQueue:
    places: list[PlaceView]
    suggested: PlaceView | None
    expected_finish: datetime | None
    pending: list[tuple[ExamStep, list[str]]]  # steps not yet in a queue, and why
    done_steps: int
    total_steps: int


async def visit_queue(
    session: AsyncSession, visit: Visit, catalogue: Catalogue, ctx: Ctx
) -> VisitQueue:
    repo = QueueRepository(session)
    entries = await repo.live_entries(visit.id)
    stations = {s.id: s for s in await repo.stations({e.station_id for e in entries})}
    snaps = {sid: await snapshot(session, st, ctx) for sid, st in stations.items()}
    places = []
    for e in sorted(entries, key=lambda e: (e.state == EntryState.WAITING, e.entered_at)):
        est = snaps[e.station_id].estimates.get(e.id)
        places.append(
            PlaceView(
                e,
                stations[e.station_id],
                est.position if est else None,
                est.wait_minutes if est else None,
            )
        )
    steps = await repo.steps_of_visits([visit.id])
    views = [step_view(s) for s in steps]
    ga_day = await ga_day_of(session, visit)
    live_ids = {e.id for e in entries}
    pending = [
        (
            s,
            blockers(v, views, catalogue, ga_day, between=ctx.policy.between)
            or ["not yet in a queue"],
        )
        for s, v in zip(steps, views, strict=True)
        if s.state == StepState.PENDING and s.entry_id not in live_ids
    ]
    waiting = [p for p in places if p.entry.state == EntryState.WAITING]
    busy_now = any(p.entry.state != EntryState.WAITING for p in places)
    suggested = None
    if waiting and not busy_now:
        suggested = min(
            waiting,
            key=lambda p: (
                p.entry.due_at is None,  # a timed draw first
                p.wait_minutes if p.wait_minutes is not None else 10**6,
                -p.entry.expected_minutes,  # then the longer exam, while the short ones move
            ),
        )
    at = max((s.queue_changed_at or ctx.now for s in stations.values()), default=ctx.now)
    finish = at
    for p in sorted(places, key=lambda p: p.wait_minutes or 0):
        start = max(finish, at + timedelta(minutes=p.wait_minutes or 0))
        finish = start + timedelta(minutes=p.entry.expected_minutes)
    for step, _why in pending:
        rule = catalogue.rule(step.exam_code)
        finish += timedelta(minutes=rule.service_minutes if rule else 0)
    total = [s for s in steps if s.state != StepState.CANCELLED]
    return VisitQueue(
        places=places,
        suggested=suggested,
        expected_finish=finish if (places or pending) else None,
        pending=pending,
        done_steps=sum(1 for s in total if s.state == StepState.DONE),
        total_steps=len(total),
    )


async def visit_queue_view(
    session: AsyncSession, visit: Visit, catalogue: Catalogue, ctx: Ctx
) -> VisitQueuePublic:
    """Her visit's queue as the API shows it, with the places she already left."""
    q = await visit_queue(session, visit, catalogue, ctx)
    estimates = {
        p.entry.id: Estimate(p.position, p.wait_minutes)
        for p in q.places
        if p.position is not None and p.wait_minutes is not None
    }
    places = await entry_views(session, [p.entry for p in q.places], catalogue, estimates=estimates)
    history_rows = await QueueRepository(session).closed_entries(visit.id)
    history = await entry_views(session, history_rows, catalogue)
    suggested = next((v for v in places if q.suggested and v.id == q.suggested.entry.id), None)
    return VisitQueuePublic(
        visit_id=visit.id,
        places=places,
        suggested_next=suggested,
        expected_finish=q.expected_finish,
        not_yet_queued=[
            PendingStep(
                exam_code=s.exam_code, label=s.label, station_type=s.station_type, waiting_for=why
            )
            for s, why in q.pending
        ],
        steps_done=q.done_steps,
        steps_total=q.total_steps,
        history=history,
    )
