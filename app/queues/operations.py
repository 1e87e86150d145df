"""What stations do with a mother's place: call, call again, start, finish, no-show, transfer;
closing a station; flagging her urgent.

The API and the clinic-day simulator both drive these functions. Every function flushes and
leaves the commit to its caller (one transaction per request).

Invariants held by the database, not only here (see ``models.QueueEntry``): a mother is
called or served at one place at a time, a room calls or serves one mother at a time, and she
holds one live place per kind of service. ``call_next`` claims an entry with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL (``QueueRepository.claim``), so that stations calling at the same
moment never wait on each other or get the same mother; on SQLite the app serialises writes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import NotFound, invalid_field
from app.measurements import service as measurements
from app.measurements.domain import MeasurementSource, installed_limits
from app.measurements.service import STATION_KINDS, NewReading
from app.mothers.repository import MotherRepository
from app.queues.changes import queue_changed
from app.queues.domain import Catalogue
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.policy import Ctx, QueueConflict
from app.queues.positions import callable_now, claims, waiting_in_call_order
from app.queues.repository import QueueRepository
from app.queues.routing import (
    choose_station,
    close_entry,
    close_stale,
    open_entry,
    route_visit,
    station_open,
)
from app.visits.models import Visit
from app.visits.repository import VisitRepository
from app.visits.status import first_exam_began

EWMA_ALPHA = 0.2


async def station_by_code(session: AsyncSession, code: str, *, for_update: bool = False) -> Station:
    station = await QueueRepository(session).station_by_code(code, for_update=for_update)
    if station is None:
        raise NotFound(f"No station {code!r}.")
    return station


async def entry_by_id(
    session: AsyncSession, entry_id: uuid.UUID, *, for_update: bool = True
) -> QueueEntry:
    entry = await QueueRepository(session).entry(entry_id, for_update=for_update)
    if entry is None:
        raise NotFound("No such queue entry.")
    return entry


def expect_state(entry: QueueEntry, *states: str, doing: str) -> None:
    if entry.state not in states:
        raise QueueConflict(
            f"Ticket {entry.ticket} is {entry.state.replace('_', ' ')}; it cannot be {doing}.",
            extra={"current_state": entry.state},
        )


def _check_room(station: Station, room: int) -> None:
    if not 1 <= room <= station.servers:
        raise invalid_field("room", f"station {station.code} has rooms 1 to {station.servers}")


async def station_of(session: AsyncSession, entry: QueueEntry) -> Station:
    station = await QueueRepository(session).station(entry.station_id)
    assert station is not None
    return station


async def call_next(
    session: AsyncSession, station: Station, room: int, ctx: Ctx
) -> QueueEntry | None:
    """Call the best waiting mother who is free and whose rules allow this exam now."""
    _check_room(station, room)
    if not station_open(station, ctx.local_time):
        raise QueueConflict(f"Station {station.code} is closed now.")
    await close_stale(session, ctx, station_id=station.id)
    repo = QueueRepository(session)
    occupied = await repo.ticket_in_room(station.id, room)
    if occupied is not None:
        raise QueueConflict(
            f"Room {room} of {station.code} still has ticket {occupied}: finish it, or mark it a"
            " no-show, first."
        )
    waiting = await waiting_in_call_order(session, station, ctx)
    free = [e for e in waiting.ordered if e.available_at <= ctx.now]
    busy = await repo.busy_mothers([e.mother_id for e in free])
    claimed = await claims(session, station, waiting, busy, ctx)
    is_pg = session.get_bind().dialect.name == "postgresql"
    for entry in callable_now(free, waiting.timed, busy, ctx.now, claimed.by_entry):
        if not await repo.claim(entry.id, room, ctx.now, skip_locked=is_pg):
            continue
        for name, value in (("state", EntryState.CALLED), ("room", room), ("called_at", ctx.now)):
            set_committed_value(entry, name, value)
        await queue_changed(session, [station], ctx, mother_ids=[entry.mother_id])
        return entry
    return None


async def recall(session: AsyncSession, entry: QueueEntry, ctx: Ctx) -> QueueEntry:
    expect_state(entry, EntryState.CALLED, doing="called again")
    entry.recalls += 1
    entry.called_at = ctx.now
    await queue_changed(
        session, [await station_of(session, entry)], ctx, mother_ids=[entry.mother_id]
    )
    return entry


async def start(session: AsyncSession, entry: QueueEntry, ctx: Ctx) -> QueueEntry:
    expect_state(entry, EntryState.CALLED, doing="started")
    entry.state = EntryState.IN_SERVICE
    entry.started_at = ctx.now
    visit = await QueueRepository(session).visit(entry.visit_id, for_update=True)
    assert visit is not None
    first_exam_began(VisitRepository(session), visit, actor=ctx.actor, now=ctx.now)
    await queue_changed(
        session, [await station_of(session, entry)], ctx, mother_ids=[entry.mother_id]
    )
    return entry


async def finish(
    session: AsyncSession, entry: QueueEntry, catalogue: Catalogue, ctx: Ctx
) -> list[QueueEntry]:
    """The service is over: its steps are done, once; she joins the queues now open to her."""
    expect_state(entry, EntryState.IN_SERVICE, doing="finished")
    repo = QueueRepository(session)
    steps = await repo.pending_steps_of_entry(entry.id)
    written = await repo.finish_steps_of_entry(entry.id, ctx.now)
    if (len(steps) if written is None else written) != len(steps):
        raise QueueConflict(f"Ticket {entry.ticket} was finished by someone else.")
    for step in steps:  # what the UPDATE wrote, without reading each row back
        set_committed_value(step, "state", StepState.DONE)
        set_committed_value(step, "done_at", ctx.now)
    entry.state = EntryState.DONE
    entry.finished_at = ctx.now
    entry.closed_at = ctx.now
    if entry.started_at is not None and steps:
        minutes = (ctx.now - entry.started_at).total_seconds() / 60
        await _learn(session, entry, steps, catalogue, minutes)
    await _complete_orders(session, {s.order_id for s in steps}, ctx.now)
    visit = await repo.visit(entry.visit_id)
    assert visit is not None
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)
    # Her other places move too: a timed draw now pending (or done) re-orders her in them.
    stations = (
        {entry.station_id}
        | routed.stations
        | await repo.live_station_ids_of_mother(entry.mother_id)
    )
    await queue_changed(session, await repo.stations(stations), ctx, mother_ids=[entry.mother_id])
    return routed.created


async def finish_with_readings(
    session: AsyncSession,
    entry: QueueEntry,
    catalogue: Catalogue,
    ctx: Ctx,
    readings: Sequence[NewReading] | None,
) -> list[QueueEntry]:
    """Finish the entry, storing the readings its exam took (vitals: weight, blood pressure,
    pulse; NST: its result and the fetal heart rate) with her visit. A reading of another kind
    than its exams take is a 422, and nothing is finished.

    ``None``: no readings were sent, the exam is finished as before. An empty list sent
    explicitly is refused (422 naming ``readings``): a vitals step "finished with nothing
    measured" is far more often a client that lost its readings than a decision, and a silent
    success would leave her without the blood pressure the rules need. A ticket not in service
    is the same 409 with or without readings (its state is checked first, not the readings
    against exams it no longer has pending)."""
    expect_state(entry, EntryState.IN_SERVICE, doing="finished")
    if readings is not None and not readings:
        raise invalid_field(
            "readings", "send at least one reading, or leave readings out to finish without any"
        )
    if readings:
        codes = {
            s.exam_code for s in await QueueRepository(session).pending_steps_of_entry(entry.id)
        }
        allowed = set().union(*(STATION_KINDS.get(c, frozenset()) for c in codes))
        for reading in readings:
            if reading.entered.kind not in allowed:
                takes = ", ".join(sorted(k.value for k in allowed)) or "no readings"
                raise invalid_field(
                    f"{reading.field}.kind",
                    f"this exam ({', '.join(sorted(codes))}) takes {takes}",
                )
    created = await finish(session, entry, catalogue, ctx)
    if readings:
        mothers = MotherRepository(session)
        mother = await mothers.get(entry.mother_id)
        pregnancy = await mothers.active_pregnancy(entry.mother_id)
        if mother is None or pregnancy is None:
            raise QueueConflict("She has no active pregnancy to record the readings in.")
        await measurements.record(
            session,
            mother=mother,
            pregnancy=pregnancy,
            readings=readings,
            actor=ctx.actor,
            now=ctx.now,
            tz=ctx.tz,
            limits=installed_limits(),
            source=MeasurementSource.STATION,
            visit_id=entry.visit_id,
        )
    return created


async def _learn(
    session: AsyncSession,
    entry: QueueEntry,
    steps: Sequence[ExamStep],
    catalogue: Catalogue,
    minutes: float,
) -> None:
    """Teach the entry's longest exam type how long this took (an EWMA, updated in SQL), and
    keep on the entry what it taught (an undone finish takes it back: ``app.queues.undo``)."""
    lead = max(
        (s.exam_code for s in steps if catalogue.rule(s.exam_code)),
        key=lambda c: (catalogue.rules[c].service_minutes, c),
        default=None,
    )
    if lead is None:
        return
    minutes = max(0.5, min(minutes, 240.0))  # a forgotten "finish" must not ruin the mean
    taught = await QueueRepository(session).learn_service_minutes(lead, minutes, EWMA_ALPHA)
    if taught is not None:
        entry.taught_exam, entry.taught_minutes = lead, minutes
        entry.taught_mean, entry.taught_sample = taught


def unlearned(
    mean_now: float,
    samples_now: int,
    *,
    minutes: float,
    mean_after: float,
    sample: int,
    alpha: float = EWMA_ALPHA,
) -> float | None:
    """The learned mean without one of its samples (an undone finish's): ``minutes``, which
    left the mean at ``mean_after`` as its ``sample``-th; ``samples_now`` have been learned by
    now (the later ones weighed it down by 1 - alpha each). None: it was the only one.

    The sample moved the mean from m0 = (mean_after - alpha * minutes) / (1 - alpha) to
    mean_after; each later sample keeps 1 - alpha of that move, so taking the sample back
    subtracts (1 - alpha)^k * (mean_after - m0), k the samples since: exact, whatever they
    were. A first sample (there was no mean before it, so m0 = minutes) started the mean: then
    the mean is the later samples' alone, each weighed as the EWMA weighs it."""
    since = samples_now - sample
    if since < 0:
        raise ValueError("the sample is later than the samples learned")
    decay = (1 - alpha) ** since
    before = (mean_after - alpha * minutes) / (1 - alpha)
    if sample == 1 and math.isclose(before, minutes, rel_tol=1e-9, abs_tol=1e-9):
        if since == 0:
            return None
        return (mean_now - decay * minutes) / (1 - decay)
    return mean_now - decay * (mean_after - before)


async def _complete_orders(session: AsyncSession, order_ids: set[uuid.UUID], now: datetime) -> None:
    """An order is done when all its steps are (the lab's result may still be to come)."""
    if not order_ids:
        return
    repo = QueueRepository(session)
    finished = order_ids - await repo.orders_with_pending_steps(order_ids)
    if finished:
        await repo.complete_orders(finished, now)


async def no_show(
    session: AsyncSession, entry: QueueEntry, catalogue: Catalogue, ctx: Ctx
) -> QueueEntry:
    """She did not come when called: she rejoins after a delay, keeping her fair place."""
    expect_state(entry, EntryState.CALLED, doing="marked a no-show")
    station = await station_of(session, entry)
    close_entry(entry, EntryState.NO_SHOW, ctx, reason="did not come when called")
    nxt = await _reopen(
        session,
        entry,
        station,
        catalogue,
        ctx,
        # A timed draw cannot wait out the delay (it has minutes of tolerance): she may be
        # called again at once, still first in line.
        available_at=ctx.now
        if entry.due_at is not None
        else max(entry.available_at, ctx.now + ctx.policy.no_show_delay),
        ticket=(entry.ticket, entry.ticket_number),
    )
    nxt.no_shows = entry.no_shows + 1
    await queue_changed(session, [station], ctx, mother_ids=[entry.mother_id])
    return nxt


async def _reopen(
    session: AsyncSession,
    entry: QueueEntry,
    station: Station,
    catalogue: Catalogue,
    ctx: Ctx,
    *,
    available_at: datetime,
    ticket: tuple[str, int] | None = None,
) -> QueueEntry:
    """The next entry after a closed one: her pending steps, her fairness time, her history."""
    await session.flush()
    repo = QueueRepository(session)
    steps = await repo.pending_steps_of_entry(entry.id)
    visit = await repo.visit(entry.visit_id)
    assert visit is not None
    return await open_entry(
        session,
        visit=visit,
        station=station,
        steps=steps,
        catalogue=catalogue,
        ctx=ctx,
        offset=entry.step_offset,
        available_at=available_at,
        due_at=entry.due_at,
        tolerance=entry.tolerance_minutes,
        ref_time=entry.ref_time,
        ticket=ticket,
        previous=entry,
    )


async def transfer(
    session: AsyncSession, entry: QueueEntry, target: Station, catalogue: Catalogue, ctx: Ctx
) -> QueueEntry:
    """Move her place to another station of the same type, keeping her fairness time."""
    expect_state(entry, EntryState.WAITING, EntryState.CALLED, doing="transferred")
    if target.station_type != entry.station_type:
        raise invalid_field("station", f"{target.code} does not do {entry.station_type}")
    if target.id == entry.station_id:
        raise QueueConflict(f"Ticket {entry.ticket} is already at {target.code}.")
    if not target.is_open:
        raise QueueConflict(f"Station {target.code} is closed.")
    source = await station_of(session, entry)
    close_entry(entry, EntryState.TRANSFERRED, ctx, reason=f"to {target.code}")
    nxt = await _reopen(session, entry, target, catalogue, ctx, available_at=entry.available_at)
    await queue_changed(session, [source, target], ctx, mother_ids=[entry.mother_id])
    return nxt


async def close_station(
    session: AsyncSession, station: Station, catalogue: Catalogue, ctx: Ctx
) -> list[QueueEntry]:
    """Close a station (a room broke down, the day ends early): its waiting move elsewhere."""
    station.is_open = False
    station.version += 1
    station.updated_at = ctx.now
    waiting = await QueueRepository(session).waiting_entries(station.id)
    moved = []
    for entry in waiting:
        target = await choose_station(session, station.station_type, ctx)
        if target is None:
            continue  # nowhere to go: she keeps her place for when it reopens
        moved.append(await transfer(session, entry, target, catalogue, ctx))
    await queue_changed(session, [station], ctx)
    return moved


async def flag_urgent(
    session: AsyncSession, visit: Visit, ctx: Ctx, *, urgent: bool, reason: str | None
) -> None:
    """Flag her urgent (or not): first in every queue she is in."""
    visit.urgent = urgent
    visit.urgent_reason = reason if urgent else None
    visit.version += 1
    await session.flush()
    repo = QueueRepository(session)
    entries = await repo.live_entries(visit.id)
    stations = await repo.stations({e.station_id for e in entries})
    await queue_changed(session, stations, ctx, mother_ids=[visit.mother_id])
