"""Routing: a visit's orders become exam steps, and she is put in the queue of every exam she
may do now; places are given up when an order or her visit ends.

Visits call ``route`` when she checks in or an exam is added; the station operations route her
again when a service is over. Every function flushes and leaves the commit to its caller.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.session_state import session_state
from app.core.settings import Routing
from app.mothers.domain import gestational_age_days
from app.queues.catalogue import load_catalogue
from app.queues.changes import mark_changed, queue_changed
from app.queues.domain import (
    Catalogue,
    Doable,
    StepView,
    blockers,
    doable_steps,
    fixed_choice,
)
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.policy import Ctx, QueueConflict
from app.queues.repository import QueueRepository
from app.visits.domain import VisitStatus
from app.visits.models import ExamOrder, ExamOrderStatus, Visit


async def route(session: AsyncSession, visit: Visit, ctx: Ctx) -> None:
    """Give her orders their exam steps and put her in the queues now open to her."""
    repo = QueueRepository(session)
    catalogue = await load_catalogue(session)
    await plan_steps(session, visit, catalogue, ctx)
    await close_stale(session, ctx, mother_id=visit.mother_id)  # an unfinished day
    routed = await route_visit(session, visit, catalogue, ctx)
    # Always: a new order changes her steps even when it opens no place yet.
    stations = await repo.stations(
        routed.stations | await repo.live_station_ids_of_mother(visit.mother_id)
    )
    await queue_changed(session, stations, ctx, mother_ids=[visit.mother_id])


def step_view(step: ExamStep) -> StepView:
    return StepView(
        id=step.id,
        order_id=step.order_id,
        exam_code=step.exam_code,
        station_type=step.station_type,
        offset_minutes=step.offset_minutes,
        tolerance_minutes=step.tolerance_minutes,
        state=step.state,
        done_at=step.done_at,
        timed_from=step.timed_from,
        timing_started_at=step.timing_started_at,
    )


async def ga_day_of(session: AsyncSession, visit: Visit) -> int:
    """Her gestational age on the visit day (read once per session: one request)."""
    known = session_state(session).ga_days
    if visit.id not in known:
        edd = await QueueRepository(session).edd_of(visit.pregnancy_id)
        assert edd is not None
        known[visit.id] = gestational_age_days(edd, visit.visit_date)
    return known[visit.id]


async def plan_steps(
    session: AsyncSession, visit: Visit, catalogue: Catalogue, ctx: Ctx
) -> list[ExamStep]:
    """Give every open order of the visit its steps (once; a timed exam gets several)."""
    repo = QueueRepository(session)
    orders = await repo.open_orders(visit.id)
    have = await repo.planned_order_ids(visit.id)
    created = []
    for order in orders:
        if order.id in have:
            continue
        rule = catalogue.rule(order.exam_code)
        for seq in rule.steps if rule else (None,):
            step = ExamStep(
                order_id=order.id,
                visit_id=visit.id,
                exam_code=order.exam_code,
                station_type=rule.station_type if rule else None,
                offset_minutes=seq.offset_minutes if seq else 0,
                tolerance_minutes=seq.tolerance_minutes if seq else None,
                label=seq.label if seq else None,
                timed_from=seq.timed_from if seq else None,
                created_at=ctx.now,
            )
            session.add(step)
            created.append(step)
    await session.flush()
    return created


def station_open(station: Station, at: time) -> bool:
    return station.is_open and station.opens_at <= at < station.closes_at


async def choose_station(session: AsyncSession, station_type: str, ctx: Ctx) -> Station | None:
    """The station of this type with the least work per room; one that is open if any is."""
    repo = QueueRepository(session)
    stations = await repo.open_stations_of_type(station_type)
    if not stations:
        return None
    load = await repo.live_load([s.id for s in stations])

    def key(s: Station) -> tuple[bool, float, str]:
        return (not station_open(s, ctx.local_time), float(load.get(s.id) or 0) / s.servers, s.code)

    return min(stations, key=key)


def expected_minutes(steps: Iterable[ExamStep | StepView], catalogue: Catalogue) -> float:
    """A service does its steps together (one blood draw fills every tube): the longest one."""
    minutes = [
        rule.service_minutes for s in steps if (rule := catalogue.rule(s.exam_code)) is not None
    ]
    return max(minutes, default=5.0)


def fasting(steps: Iterable[ExamStep], catalogue: Catalogue) -> bool:
    return any((r := catalogue.rule(s.exam_code)) is not None and r.fasting for s in steps)


@dataclass(frozen=True, slots=True)
class Routed:
    created: list[QueueEntry]
    stations: set[uuid.UUID]  # every queue this changed (new, grown or withdrawn places)


async def route_visit(
    session: AsyncSession, visit: Visit, catalogue: Catalogue, ctx: Ctx
) -> Routed:
    """Put her in the queue of every exam she may do now (``fixed``: of her next one only),
    and take back a waiting place that an order added since now blocks (a fasting draw added
    before an after-meal exam, a scan added before the doctor)."""
    if visit.status not in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        return Routed([], set())
    repo = QueueRepository(session)
    steps = await repo.steps_of_visits([visit.id])
    by_id = {s.id: s for s in steps}
    views = [step_view(s) for s in steps]
    live = await repo.live_entries(visit.id)
    ga_day = await ga_day_of(session, visit)
    between = ctx.policy.between
    touched: set[uuid.UUID] = set()
    for entry in [e for e in live if e.state == EntryState.WAITING]:
        mine = [s for s in steps if s.entry_id == entry.id and s.state == StepState.PENDING]
        why = {
            s.id: reasons
            for s in mine
            if (reasons := blockers(step_view(s), views, catalogue, ga_day, between=between))
        }
        held = [s for s in mine if s.id in why]
        if not held:
            continue
        for step in held:
            step.entry_id = None  # queued again once nothing blocks it
        rest = [s for s in mine if s not in held]
        if rest:
            entry.expected_minutes = expected_minutes(rest, catalogue)
            entry.fasting = fasting(rest, catalogue)
        else:
            close_entry(entry, EntryState.CANCELLED, ctx, reason=f"held back: {why[held[0].id][0]}")
        touched.add(entry.station_id)
    live = [e for e in live if e.state in EntryState.LIVE]
    touched |= restart_after_test(live, steps)
    live_ids = {e.id for e in live}
    doable = [
        d
        for d in doable_steps(views, catalogue, ga_day, between=between)
        if by_id[d.step.id].entry_id not in live_ids
    ]
    if ctx.policy.routing is Routing.FIXED:
        if live:
            await session.flush()
            return Routed([], touched)
        doable = fixed_choice(doable, catalogue, ctx.now)
    groups: dict[tuple[str, int], list[Doable]] = defaultdict(list)
    for d in doable:
        assert d.step.station_type is not None
        groups[(d.step.station_type, d.step.offset_minutes)].append(d)
    created = []
    # In one order for everyone (tickets are counted under a row lock per station and day).
    for (station_type, offset), group in sorted(groups.items()):
        existing = next(
            (e for e in live if e.station_type == station_type and e.step_offset == offset), None
        )
        group_steps = [by_id[d.step.id] for d in group]
        if existing is not None:
            if existing.state != EntryState.WAITING:
                continue  # routed again when this service is over
            for step in group_steps:
                step.entry_id = existing.id
            attached = [s for s in steps if s.entry_id == existing.id]
            existing.expected_minutes = expected_minutes(attached, catalogue)
            existing.fasting = existing.fasting or fasting(group_steps, catalogue)
            touched.add(existing.station_id)
            continue
        station = await choose_station(session, station_type, ctx)
        if station is None:
            continue  # no such station in this clinic: shown as unrouted on her visit
        entry = await open_entry(
            session,
            visit=visit,
            station=station,
            steps=group_steps,
            catalogue=catalogue,
            ctx=ctx,
            offset=offset,
            available_at=group[0].available_at,
            due_at=group[0].due_at,
            tolerance=group[0].step.tolerance_minutes,
        )
        created.append(entry)
        touched.add(station.id)
    await session.flush()
    return Routed(created, touched)


def restart_after_test(live: Sequence[QueueEntry], steps: Sequence[ExamStep]) -> set[uuid.UUID]:
    """A place she kept while a timed test ran (OGTT_BETWEEN_DRAWS lets her) waits from the end
    of her last draw: her hours under the test were not waiting, so they do not age her place
    (else she would pass, the moment her test ends, everyone who came while it ran: issue 19).
    Its ``available_at`` moves to that moment; the stations whose queue this changed."""
    by_order: dict[uuid.UUID, list[ExamStep]] = defaultdict(list)
    for step in steps:
        by_order[step.order_id].append(step)
    ended = [
        max(s.done_at for s in timed if s.done_at is not None)
        for order in by_order.values()
        if (timed := [s for s in order if s.offset_minutes > 0])
        and all(s.state == StepState.DONE and s.done_at is not None for s in timed)
    ]
    if not ended:
        return set()
    end = max(ended)
    changed = set()
    for entry in live:
        if entry.state != EntryState.WAITING or entry.due_at is not None:
            continue
        if max(entry.entered_at, entry.available_at) < end:
            entry.available_at = end
            changed.add(entry.station_id)
    return changed


async def close_stale(
    session: AsyncSession,
    ctx: Ctx,
    *,
    mother_id: uuid.UUID | None = None,
    station_id: uuid.UUID | None = None,
) -> None:
    """Places left open on an earlier day (a visit never completed) end; they are never called."""
    await QueueRepository(session).close_stale(
        today=ctx.today, now=ctx.now, mother_id=mother_id, station_id=station_id
    )


async def open_entry(
    session: AsyncSession,
    *,
    visit: Visit,
    station: Station,
    steps: Sequence[ExamStep],
    catalogue: Catalogue,
    ctx: Ctx,
    offset: int,
    available_at: datetime | None,
    due_at: datetime | None,
    tolerance: int | None,
    ref_time: datetime | None = None,
    ticket: tuple[str, int] | None = None,
    previous: QueueEntry | None = None,
) -> QueueEntry:
    """Her place in a station's queue for these steps (a new ticket, unless one is given)."""
    if ticket is None:
        number = await QueueRepository(session).next_ticket(station.id, ctx.today)
        ticket = (f"{station.code}-{number:03d}", number)
    entry = QueueEntry(
        day=ctx.today,
        station_id=station.id,
        station_type=station.station_type,
        step_offset=offset,
        visit_id=visit.id,
        mother_id=visit.mother_id,
        ticket=ticket[0],
        ticket_number=ticket[1],
        state=EntryState.WAITING,
        fasting=fasting(steps, catalogue),
        ref_time=ref_time or _ref_time(visit),
        entered_at=ctx.now,
        available_at=available_at or ctx.now,
        due_at=due_at,
        tolerance_minutes=tolerance,
        expected_minutes=expected_minutes(steps, catalogue),
        previous_id=previous.id if previous else None,
        no_shows=previous.no_shows if previous else 0,
    )
    session.add(entry)
    await session.flush()
    for step in steps:
        step.entry_id = entry.id
    mark_changed(session, station, ctx.now)
    return entry


def _ref_time(visit: Visit) -> datetime:
    """Booked mothers by their booked time; walk-ins by arrival, interleaved with them."""
    if visit.walk_in and visit.arrived_at is not None:
        return visit.arrived_at
    return visit.scheduled_at


def close_entry(entry: QueueEntry, state: str, ctx: Ctx, *, reason: str) -> None:
    entry.state = state
    entry.closed_at = ctx.now
    entry.close_reason = reason


# Orders and visits that end ----------------------------------------------------------------


async def order_for_update(session: AsyncSession, order_id: uuid.UUID) -> ExamOrder:
    order = await QueueRepository(session).order_for_update(order_id)
    if order is None:
        raise NotFound("No such exam order.")
    return order


async def mother_of(session: AsyncSession, order: ExamOrder) -> uuid.UUID | None:
    """The mother whose visit the order is for."""
    return await QueueRepository(session).mother_of_visit(order.visit_id)


async def cancel_order(
    session: AsyncSession, order: ExamOrder, catalogue: Catalogue, ctx: Ctx, *, reason: str
) -> None:
    """Drop an exam from her day; a place held only for it is given up."""
    if order.status != ExamOrderStatus.ORDERED:
        raise QueueConflict(f"The order is {order.status}; it cannot be cancelled.")
    repo = QueueRepository(session)
    steps = await repo.steps_of_order(order.id)
    entry_ids = {s.entry_id for s in steps if s.entry_id and s.state == StepState.PENDING}
    entries = await repo.entries(entry_ids) if entry_ids else []
    if any(e.state == EntryState.IN_SERVICE for e in entries):
        raise QueueConflict("The exam is being done right now; finish it instead.")
    for step in steps:
        if step.state == StepState.PENDING:
            step.state = StepState.CANCELLED
    order.status = ExamOrderStatus.CANCELLED
    await session.flush()
    touched = set()
    for entry in entries:
        if entry.state not in EntryState.LIVE:
            continue
        left = await repo.count_pending_steps_of_entry(entry.id)
        if not left:
            close_entry(entry, EntryState.CANCELLED, ctx, reason=reason)
        else:  # what is left of the service may be shorter, and no longer fasting
            rest = await repo.pending_steps_of_entry(entry.id)
            entry.expected_minutes = expected_minutes(rest, catalogue)
            entry.fasting = fasting(rest, catalogue)
        touched.add(entry.station_id)
    visit = await repo.visit(order.visit_id)
    assert visit is not None
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)  # the doctor may be next now
    touched |= routed.stations | await repo.live_station_ids_of_mother(visit.mother_id)
    await queue_changed(session, await repo.stations(touched), ctx, mother_ids=[visit.mother_id])


async def close_visit_entries(
    session: AsyncSession, visit: Visit, ctx: Ctx, *, reason: str
) -> None:
    """Her visit ended (completed, cancelled): every place she still holds is given up. Not
    while she is being examined: that exam is finished first, so that it is recorded."""
    repo = QueueRepository(session)
    entries = await repo.live_entries(visit.id)
    serving = next((e for e in entries if e.state == EntryState.IN_SERVICE), None)
    if serving is not None:
        raise QueueConflict(
            f"She is being examined now (ticket {serving.ticket}); finish that exam first."
        )
    for entry in entries:
        close_entry(entry, EntryState.CANCELLED, ctx, reason=reason)
    if entries:
        await session.flush()
        await queue_changed(
            session,
            await repo.stations({e.station_id for e in entries}),
            ctx,
            mother_ids=[visit.mother_id],
        )
