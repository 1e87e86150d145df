"""Queue operations: routing a visit into queues, and what stations do (call, start, finish …).

The API and the clinic-day simulator both drive these functions. Every function flushes and
leaves the commit to its caller (one transaction per request).

Invariants held by the database, not only here (see ``models.QueueEntry``): a mother is
called or served at one place at a time, a room calls or serves one mother at a time, and she
holds one live place per kind of service. ``call_next`` claims an entry with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so that stations calling at the same moment never wait on each
other or get the same mother; on SQLite the app serialises writes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from app.core.clock import ClinicTime
from app.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.core.principal import Principal
from app.core.settings import Routing, Settings
from app.feed.changes import touch_mothers
from app.mothers.domain import gestational_age_days
from app.mothers.models import Pregnancy
from app.queues.domain import (
    REST,
    TIMING_EVENTS,
    BetweenDraws,
    Busy,
    Candidate,
    Catalogue,
    Doable,
    Estimate,
    ExamRule,
    StepView,
    blockers,
    doable_steps,
    estimate_waits,
    fixed_choice,
    parse_precedence,
    parse_sequence,
    sort_key,
    timed_start,
    timing_start_problem,
)
from app.queues.models import (
    EntryState,
    ExamStep,
    ExamType,
    QueueEntry,
    Station,
    StationTicket,
    StepState,
)
from app.visits.domain import VisitStatus
from app.visits.models import ExamOrder, ExamOrderStatus, Visit

EWMA_ALPHA = 0.2


def invalid(field: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {detail}",
        errors=[FieldError(field=field, location="body", pointer=f"#/{field}", detail=detail)],
    )


class QueueConflict(Conflict):
    slug = "queue-conflict"
    title = "The queue has moved on"


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    routing: Routing = Routing.PARALLEL
    ageing: timedelta = timedelta(minutes=30)
    no_show_delay: timedelta = timedelta(minutes=10)
    between: BetweenDraws = REST  # what she may do between the OGTT's draws

    @classmethod
    def from_settings(cls, settings: Settings) -> QueuePolicy:
        return cls(
            routing=settings.queue_routing,
            ageing=timedelta(minutes=settings.queue_ageing_minutes),
            no_show_delay=timedelta(minutes=settings.queue_no_show_delay_minutes),
            between=BetweenDraws.parse(
                settings.ogtt_between_draws, settings.ogtt_between_draws_exams
            ),
        )


@dataclass(frozen=True, slots=True)
class Ctx(ClinicTime):
    """The moment and place a queue operation happens in."""

    now: datetime
    tz: ZoneInfo
    actor: Principal
    policy: QueuePolicy


# The catalogue ----------------------------------------------------------------------------


def rule_of(row: ExamType) -> ExamRule:
    return ExamRule(
        code=row.code,
        name=row.name,
        station_type=row.station_type,
        position=row.position,
        fasting=row.fasting,
        after_meal=row.after_meal,
        last=row.last,
        precedence=parse_precedence(row.precedence or ()),
        sequence=parse_sequence(row.sequence or ()),
        service_minutes=row.learned_service_minutes or row.default_service_minutes,
    )


async def load_catalogue(session: AsyncSession) -> Catalogue:
    rows = (await session.scalars(select(ExamType))).all()
    return Catalogue({r.code: rule_of(r) for r in rows})


# Steps and routing ------------------------------------------------------------------------


def _step_view(step: ExamStep) -> StepView:
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


async def steps_of(session: AsyncSession, visit_ids: Sequence[uuid.UUID]) -> list[ExamStep]:
    if not visit_ids:
        return []
    return list(
        (
            await session.scalars(
                select(ExamStep)
                .where(ExamStep.visit_id.in_(visit_ids))
                .order_by(
                    ExamStep.created_at,
                    ExamStep.exam_code,
                    ExamStep.offset_minutes,
                    ExamStep.id,
                )
            )
        ).all()
    )


async def live_entries(session: AsyncSession, visit_id: uuid.UUID) -> list[QueueEntry]:
    return list(
        (
            await session.scalars(
                select(QueueEntry).where(
                    QueueEntry.visit_id == visit_id, QueueEntry.state.in_(EntryState.LIVE)
                )
            )
        ).all()
    )


async def ga_day_of(session: AsyncSession, visit: Visit) -> int:
    """Her gestational age on the visit day (read once per session: one request)."""
    known: dict[uuid.UUID, int] = session.info.setdefault("queues_ga_day", {})
    if visit.id not in known:
        edd = await session.scalar(
            select(Pregnancy.edd_date).where(Pregnancy.id == visit.pregnancy_id)
        )
        assert edd is not None
        known[visit.id] = gestational_age_days(edd, visit.visit_date)
    return known[visit.id]


async def plan_steps(
    session: AsyncSession, visit: Visit, catalogue: Catalogue, ctx: Ctx
) -> list[ExamStep]:
    """Give every open order of the visit its steps (once; a timed exam gets several)."""
    orders = (
        await session.scalars(
            select(ExamOrder).where(
                ExamOrder.visit_id == visit.id, ExamOrder.status == ExamOrderStatus.ORDERED
            )
        )
    ).all()
    have = set(
        (
            await session.scalars(select(ExamStep.order_id).where(ExamStep.visit_id == visit.id))
        ).all()
    )
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


async def _next_ticket(session: AsyncSession, station: Station, day: date) -> int:
    dialect = session.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = (
        maker(StationTicket)
        .values(station_id=station.id, day=day, last_number=1)
        .on_conflict_do_update(
            index_elements=[StationTicket.station_id, StationTicket.day],
            set_={"last_number": StationTicket.last_number + 1},
        )
        .returning(StationTicket.last_number)
    )
    return int((await session.execute(upsert)).scalar_one())


def station_open(station: Station, at: time) -> bool:
    return station.is_open and station.opens_at <= at < station.closes_at


async def choose_station(session: AsyncSession, station_type: str, ctx: Ctx) -> Station | None:
    """The station of this type with the least work per room; one that is open if any is."""
    stations = (
        await session.scalars(
            select(Station).where(Station.station_type == station_type, Station.is_open)
        )
    ).all()
    if not stations:
        return None
    load = dict(
        (
            await session.execute(
                select(QueueEntry.station_id, func.sum(QueueEntry.expected_minutes))
                .where(
                    QueueEntry.station_id.in_([s.id for s in stations]),
                    QueueEntry.state.in_(EntryState.LIVE),
                )
                .group_by(QueueEntry.station_id)
            )
        ).all()
    )

    def key(s: Station) -> tuple[bool, float, str]:
        return (not station_open(s, ctx.local_time), float(load.get(s.id) or 0) / s.servers, s.code)

    return min(stations, key=key)


def expected_minutes(steps: Iterable[ExamStep | StepView], catalogue: Catalogue) -> float:
    """A service does its steps together (one blood draw fills every tube): the longest one."""
    minutes = [
        rule.service_minutes for s in steps if (rule := catalogue.rule(s.exam_code)) is not None
    ]
    return max(minutes, default=5.0)


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
    steps = await steps_of(session, [visit.id])
    by_id = {s.id: s for s in steps}
    views = [_step_view(s) for s in steps]
    live = await live_entries(session, visit.id)
    ga_day = await ga_day_of(session, visit)
    between = ctx.policy.between
    touched: set[uuid.UUID] = set()
    for entry in [e for e in live if e.state == EntryState.WAITING]:
        mine = [s for s in steps if s.entry_id == entry.id and s.state == StepState.PENDING]
        why = {
            s.id: reasons
            for s in mine
            if (reasons := blockers(_step_view(s), views, catalogue, ga_day, between=between))
        }
        held = [s for s in mine if s.id in why]
        if not held:
            continue
        for step in held:
            step.entry_id = None  # queued again once nothing blocks it
        rest = [s for s in mine if s not in held]
        if rest:
            entry.expected_minutes = expected_minutes(rest, catalogue)
            entry.fasting = _fasting(rest, catalogue)
        else:
            _close(entry, EntryState.CANCELLED, ctx, reason=f"held back: {why[held[0].id][0]}")
        touched.add(entry.station_id)
    live = [e for e in live if e.state in EntryState.LIVE]
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
            existing.fasting = existing.fasting or _fasting(group_steps, catalogue)
            touched.add(existing.station_id)
            continue
        station = await choose_station(session, station_type, ctx)
        if station is None:
            continue  # no such station in this clinic: shown as unrouted on her visit
        entry = await _open_entry(
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


async def stations_of_mother(session: AsyncSession, mother_id: uuid.UUID) -> set[uuid.UUID]:
    """Every queue she holds a place in: her timed draws order her in all of them."""
    return set(
        (
            await session.scalars(
                select(QueueEntry.station_id).where(
                    QueueEntry.mother_id == mother_id, QueueEntry.state.in_(EntryState.LIVE)
                )
            )
        ).all()
    )


async def close_stale(
    session: AsyncSession,
    ctx: Ctx,
    *,
    mother_id: uuid.UUID | None = None,
    station_id: uuid.UUID | None = None,
) -> None:
    """Places left open on an earlier day (a visit never completed) end; they are never called."""
    query = (
        update(QueueEntry)
        .where(QueueEntry.day < ctx.today, QueueEntry.state.in_(EntryState.LIVE))
        .values(
            state=EntryState.CANCELLED,
            closed_at=ctx.now,
            close_reason="not finished on its day",
        )
        .execution_options(synchronize_session=False)
    )
    if mother_id is not None:
        query = query.where(QueueEntry.mother_id == mother_id)
    if station_id is not None:
        query = query.where(QueueEntry.station_id == station_id)
    await session.execute(query)


def _fasting(steps: Iterable[ExamStep], catalogue: Catalogue) -> bool:
    return any((r := catalogue.rule(s.exam_code)) is not None and r.fasting for s in steps)


async def _open_entry(
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
    if ticket is None:
        number = await _next_ticket(session, station, ctx.today)
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
        fasting=_fasting(steps, catalogue),
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


# Station operations -----------------------------------------------------------------------


async def station_by_code(session: AsyncSession, code: str, *, for_update: bool = False) -> Station:
    query = select(Station).where(Station.code == code.upper())
    if for_update:
        query = query.with_for_update()
    station = await session.scalar(query)
    if station is None:
        raise NotFound(f"No station {code!r}.")
    return station


async def entry_by_id(
    session: AsyncSession, entry_id: uuid.UUID, *, for_update: bool = True
) -> QueueEntry:
    query = select(QueueEntry).where(QueueEntry.id == entry_id)
    if for_update:
        query = query.with_for_update()
    entry = await session.scalar(query)
    if entry is None:
        raise NotFound("No such queue entry.")
    return entry


def _expect(entry: QueueEntry, *states: str, doing: str) -> None:
    if entry.state not in states:
        raise QueueConflict(
            f"Ticket {entry.ticket} is {entry.state.replace('_', ' ')}; it cannot be {doing}.",
            extra={"current_state": entry.state},
        )


def _check_room(station: Station, room: int) -> None:
    if not 1 <= room <= station.servers:
        raise invalid("room", f"station {station.code} has rooms 1 to {station.servers}")


async def _busy_mothers(session: AsyncSession, mother_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = list(set(mother_ids))
    if not ids:
        return set()
    rows = await session.scalars(
        select(QueueEntry.mother_id).where(
            QueueEntry.mother_id.in_(ids), QueueEntry.state.in_(EntryState.BUSY)
        )
    )
    return set(rows)


async def _timed_dues(
    session: AsyncSession, mother_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime, datetime]]:
    """Her earliest pending timed draw (nothing else may keep her past it) and her latest
    (until then she must stay anyway)."""
    ids = list(set(mother_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(QueueEntry.mother_id, func.min(QueueEntry.due_at), func.max(QueueEntry.due_at))
        .where(
            QueueEntry.mother_id.in_(ids),
            QueueEntry.state == EntryState.WAITING,
            QueueEntry.due_at.is_not(None),
        )
        .group_by(QueueEntry.mother_id)
    )
    return {m: (lo, hi) for m, lo, hi in rows.all() if lo is not None and hi is not None}


async def ordered_waiting(session: AsyncSession, station: Station, ctx: Ctx) -> list[QueueEntry]:
    """The station's waiting entries in call order (the documented sort key)."""
    return (await _waiting(session, station, ctx))[0]


async def _waiting(
    session: AsyncSession, station: Station, ctx: Ctx
) -> tuple[list[QueueEntry], dict[uuid.UUID, datetime]]:
    """The waiting entries in call order, and each mother's next timed draw."""
    rows = (
        await session.execute(
            select(QueueEntry, Visit.urgent)
            .join(Visit, Visit.id == QueueEntry.visit_id)
            .where(
                QueueEntry.station_id == station.id,
                QueueEntry.state == EntryState.WAITING,
                QueueEntry.day == ctx.today,
            )
        )
    ).all()
    urgent = {e.id for e, flag in rows if flag}
    dues = await _timed_dues(session, [e.mother_id for e, _flag in rows])

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


async def call_next(
    session: AsyncSession, station: Station, room: int, ctx: Ctx
) -> QueueEntry | None:
    """Call the best waiting mother who is free and whose rules allow this exam now."""
    _check_room(station, room)
    if not station_open(station, ctx.local_time):
        raise QueueConflict(f"Station {station.code} is closed now.")
    await close_stale(session, ctx, station_id=station.id)
    occupied = await session.scalar(
        select(QueueEntry.ticket).where(
            QueueEntry.station_id == station.id,
            QueueEntry.room == room,
            QueueEntry.state.in_(EntryState.BUSY),
        )
    )
    if occupied is not None:
        raise QueueConflict(
            f"Room {room} of {station.code} still has ticket {occupied}: finish it, or mark it a"
            " no-show, first."
        )
    waiting, timed = await _waiting(session, station, ctx)
    ordered = [e for e in waiting if e.available_at <= ctx.now]
    busy = await _busy_mothers(session, [e.mother_id for e in ordered])
    is_pg = session.get_bind().dialect.name == "postgresql"
    for entry in ordered:
        if entry.mother_id in busy:
            continue
        due = timed.get(entry.mother_id)
        if (
            entry.due_at is None
            and due is not None
            and ctx.now + timedelta(minutes=entry.expected_minutes) > due
        ):
            continue  # her timed draw comes first; this would keep her past it
        if not await _claim(session, entry, room, ctx, skip_locked=is_pg):
            continue
        for name, value in (("state", EntryState.CALLED), ("room", room), ("called_at", ctx.now)):
            set_committed_value(entry, name, value)
        await queue_changed(session, [station], ctx, mother_ids=[entry.mother_id])
        return entry
    return None


async def _claim(
    session: AsyncSession, entry: QueueEntry, room: int, ctx: Ctx, *, skip_locked: bool
) -> bool:
    """Turn her waiting entry into a call, unless another station got there first.

    On PostgreSQL the row is locked with SKIP LOCKED (a station never waits on another), and a
    concurrent call of the same mother elsewhere trips the partial unique index: the
    savepoint is rolled back and the next candidate tried. SQLite writes are serialised.
    """
    claim = select(QueueEntry.id).where(
        QueueEntry.id == entry.id, QueueEntry.state == EntryState.WAITING
    )
    move = (
        update(QueueEntry)
        .where(QueueEntry.id == entry.id, QueueEntry.state == EntryState.WAITING)
        .values(state=EntryState.CALLED, room=room, called_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if not skip_locked:
        if await session.scalar(claim) is None:
            return False
        return bool(getattr(await session.execute(move), "rowcount", 1) == 1)
    try:
        async with session.begin_nested():
            if await session.scalar(claim.with_for_update(skip_locked=True)) is None:
                return False
            return bool(getattr(await session.execute(move), "rowcount", 1) == 1)
    except IntegrityError:
        return False


async def recall(session: AsyncSession, entry: QueueEntry, ctx: Ctx) -> QueueEntry:
    _expect(entry, EntryState.CALLED, doing="called again")
    entry.recalls += 1
    entry.called_at = ctx.now
    await queue_changed(
        session, [await _station(session, entry)], ctx, mother_ids=[entry.mother_id]
    )
    return entry


async def start(session: AsyncSession, entry: QueueEntry, ctx: Ctx) -> QueueEntry:
    _expect(entry, EntryState.CALLED, doing="started")
    entry.state = EntryState.IN_SERVICE
    entry.started_at = ctx.now
    visit = await session.get(Visit, entry.visit_id, with_for_update=True)
    assert visit is not None
    if visit.status == VisitStatus.CHECKED_IN:
        from app.visits.repository import VisitRepository
        from app.visits.service import move_status

        move_status(
            VisitRepository(session), visit, VisitStatus.IN_PROGRESS, actor=ctx.actor, now=ctx.now
        )
        visit.started_at = ctx.now
    await queue_changed(
        session, [await _station(session, entry)], ctx, mother_ids=[entry.mother_id]
    )
    return entry


async def finish(
    session: AsyncSession, entry: QueueEntry, catalogue: Catalogue, ctx: Ctx
) -> list[QueueEntry]:
    """The service is over: its steps are done, once; she joins the queues now open to her."""
    _expect(entry, EntryState.IN_SERVICE, doing="finished")
    steps = (
        await session.scalars(
            select(ExamStep).where(ExamStep.entry_id == entry.id, ExamStep.state == "pending")
        )
    ).all()
    done = await session.execute(
        update(ExamStep)
        .where(ExamStep.entry_id == entry.id, ExamStep.state == "pending")
        .values(state="done", done_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", len(steps)) != len(steps):
        raise QueueConflict(f"Ticket {entry.ticket} was finished by someone else.")
    for step in steps:  # what the UPDATE wrote, without reading each row back
        set_committed_value(step, "state", "done")
        set_committed_value(step, "done_at", ctx.now)
    entry.state = EntryState.DONE
    entry.finished_at = ctx.now
    entry.closed_at = ctx.now
    if entry.started_at is not None and steps:
        await _learn(session, steps, catalogue, (ctx.now - entry.started_at).total_seconds() / 60)
    await _complete_orders(session, {s.order_id for s in steps}, ctx.now)
    visit = await session.get(Visit, entry.visit_id)
    assert visit is not None
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)
    # Her other places move too: a timed draw now pending (or done) re-orders her in them.
    stations = (
        {entry.station_id} | routed.stations | await stations_of_mother(session, entry.mother_id)
    )
    await queue_changed(
        session, await stations_of(session, stations), ctx, mother_ids=[entry.mother_id]
    )
    return routed.created


async def _learn(
    session: AsyncSession, steps: Sequence[ExamStep], catalogue: Catalogue, minutes: float
) -> None:
    """Teach the entry's longest exam type how long this took (an EWMA, updated in SQL)."""
    lead = max(
        (s.exam_code for s in steps if catalogue.rule(s.exam_code)),
        key=lambda c: (catalogue.rules[c].service_minutes, c),
        default=None,
    )
    if lead is None:
        return
    minutes = max(0.5, min(minutes, 240.0))  # a forgotten "finish" must not ruin the mean
    current = func.coalesce(ExamType.learned_service_minutes, minutes)
    await session.execute(
        update(ExamType)
        .where(ExamType.code == lead)
        .values(
            learned_service_minutes=EWMA_ALPHA * minutes + (1 - EWMA_ALPHA) * current,
            learned_samples=ExamType.learned_samples + 1,
        )
        .execution_options(synchronize_session=False)
    )


async def _complete_orders(session: AsyncSession, order_ids: set[uuid.UUID], now: datetime) -> None:
    """An order is done when all its steps are (the lab's result may still be to come)."""
    if not order_ids:
        return
    open_steps = set(
        (
            await session.scalars(
                select(ExamStep.order_id).where(
                    ExamStep.order_id.in_(order_ids), ExamStep.state == "pending"
                )
            )
        ).all()
    )
    finished = order_ids - open_steps
    if finished:
        await session.execute(
            update(ExamOrder)
            .where(ExamOrder.id.in_(finished), ExamOrder.status == ExamOrderStatus.ORDERED)
            .values(status=ExamOrderStatus.DONE, completed_at=now)
            .execution_options(synchronize_session=False)
        )


# The start of a timed test (the glucose drink) ------------------------------------------


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
    firsts = (
        await session.scalars(
            select(ExamStep).where(ExamStep.entry_id == entry.id, ExamStep.offset_minutes == 0)
        )
    ).all()
    timed = (
        (
            await session.scalars(
                select(ExamStep)
                .where(
                    ExamStep.order_id.in_([f.order_id for f in firsts]),
                    ExamStep.offset_minutes > 0,
                    ExamStep.timed_from == event,
                )
                .order_by(ExamStep.offset_minutes)
            )
        ).all()
        if firsts
        else []
    )
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
    entries = (
        {e.id: e for e in await session.scalars(select(QueueEntry).where(QueueEntry.id.in_(ids)))}
        if ids
        else {}
    )
    anchor = _step_view(first)
    draws = []
    for step in timed:
        start = timed_start(_step_view(step), anchor)
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
        raise invalid("started_at", problem)
    visit = await session.get(Visit, entry.visit_id)
    assert visit is not None
    if visit.status not in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        raise QueueConflict(f"Her visit is {visit.status}; nothing more is queued for it.")
    values = {
        "timing_started_at": started_at,
        "timing_recorded_at": ctx.now,
        "timing_recorded_by_id": ctx.actor.id,
        "timing_recorded_by_name": ctx.actor.name[:100],
    }
    written = await session.execute(
        update(ExamStep)
        .where(ExamStep.id == first.id, ExamStep.timing_started_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(written, "rowcount", 1) != 1:
        raise QueueConflict(f"The {what} of ticket {entry.ticket} was recorded just now.")
    for name, value in values.items():  # what the UPDATE wrote, without reading it back
        set_committed_value(first, name, value)
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)
    stations = routed.stations | await stations_of_mother(session, visit.mother_id)
    await queue_changed(
        session, await stations_of(session, stations), ctx, mother_ids=[visit.mother_id]
    )
    return await _timed_test(session, entry, first, timed, event, recorded_now=True)


async def awaiting_timing_start(
    session: AsyncSession, station: Station, ctx: Ctx
) -> list[tuple[QueueEntry, ExamStep]]:
    """Today's services at this station whose timed test waits for its start to be recorded
    (the glucose drink): the station sees them until it records it."""
    timed = aliased(ExamStep)
    first = aliased(ExamStep)
    rows = await session.execute(
        select(QueueEntry, first)
        .join(first, first.entry_id == QueueEntry.id)
        .join(Visit, Visit.id == QueueEntry.visit_id)
        .where(
            QueueEntry.station_id == station.id,
            QueueEntry.day == ctx.today,
            QueueEntry.state == EntryState.DONE,
            first.offset_minutes == 0,
            first.state == StepState.DONE,
            first.timing_started_at.is_(None),
            Visit.status.in_([VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS]),
            exists().where(
                timed.order_id == first.order_id,
                timed.offset_minutes > 0,
                timed.state == StepState.PENDING,
                timed.timed_from.is_not(None),
            ),
        )
        .order_by(QueueEntry.finished_at, QueueEntry.id)
    )
    return [(e, s) for e, s in rows.all()]


async def no_show(
    session: AsyncSession, entry: QueueEntry, catalogue: Catalogue, ctx: Ctx
) -> QueueEntry:
    """She did not come when called: she rejoins after a delay, keeping her fair place."""
    _expect(entry, EntryState.CALLED, doing="marked a no-show")
    station = await _station(session, entry)
    _close(entry, EntryState.NO_SHOW, ctx, reason="did not come when called")
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
    steps = (
        await session.scalars(
            select(ExamStep).where(
                ExamStep.entry_id == entry.id, ExamStep.state == StepState.PENDING
            )
        )
    ).all()
    visit = await session.get(Visit, entry.visit_id)
    assert visit is not None
    return await _open_entry(
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
    _expect(entry, EntryState.WAITING, EntryState.CALLED, doing="transferred")
    if target.station_type != entry.station_type:
        raise invalid("station", f"{target.code} does not do {entry.station_type}")
    if target.id == entry.station_id:
        raise QueueConflict(f"Ticket {entry.ticket} is already at {target.code}.")
    if not target.is_open:
        raise QueueConflict(f"Station {target.code} is closed.")
    source = await _station(session, entry)
    _close(entry, EntryState.TRANSFERRED, ctx, reason=f"to {target.code}")
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
    waiting = (
        await session.scalars(
            select(QueueEntry).where(
                QueueEntry.station_id == station.id, QueueEntry.state == EntryState.WAITING
            )
        )
    ).all()
    moved = []
    for entry in waiting:
        target = await choose_station(session, station.station_type, ctx)
        if target is None:
            continue  # nowhere to go: she keeps her place for when it reopens
        moved.append(await transfer(session, entry, target, catalogue, ctx))
    await queue_changed(session, [station], ctx)
    return moved


async def cancel_order(
    session: AsyncSession, order: ExamOrder, catalogue: Catalogue, ctx: Ctx, *, reason: str
) -> None:
    """Drop an exam from her day; a place held only for it is given up."""
    if order.status != ExamOrderStatus.ORDERED:
        raise QueueConflict(f"The order is {order.status}; it cannot be cancelled.")
    steps = (await session.scalars(select(ExamStep).where(ExamStep.order_id == order.id))).all()
    entry_ids = {s.entry_id for s in steps if s.entry_id and s.state == "pending"}
    entries = (
        (await session.scalars(select(QueueEntry).where(QueueEntry.id.in_(entry_ids)))).all()
        if entry_ids
        else []
    )
    if any(e.state == EntryState.IN_SERVICE for e in entries):
        raise QueueConflict("The exam is being done right now; finish it instead.")
    for step in steps:
        if step.state == "pending":
            step.state = "cancelled"
    order.status = ExamOrderStatus.CANCELLED
    await session.flush()
    touched = set()
    for entry in entries:
        if entry.state not in EntryState.LIVE:
            continue
        left = await session.scalar(
            select(func.count())
            .select_from(ExamStep)
            .where(ExamStep.entry_id == entry.id, ExamStep.state == "pending")
        )
        if not left:
            _close(entry, EntryState.CANCELLED, ctx, reason=reason)
        else:  # what is left of the service may be shorter, and no longer fasting
            rest = (
                await session.scalars(
                    select(ExamStep).where(
                        ExamStep.entry_id == entry.id, ExamStep.state == "pending"
                    )
                )
            ).all()
            entry.expected_minutes = expected_minutes(rest, catalogue)
            entry.fasting = _fasting(rest, catalogue)
        touched.add(entry.station_id)
    visit = await session.get(Visit, order.visit_id)
    assert visit is not None
    await session.flush()
    routed = await route_visit(session, visit, catalogue, ctx)  # the doctor may be next now
    touched |= routed.stations | await stations_of_mother(session, visit.mother_id)
    await queue_changed(
        session, await stations_of(session, touched), ctx, mother_ids=[visit.mother_id]
    )


async def close_visit_entries(
    session: AsyncSession, visit: Visit, ctx: Ctx, *, reason: str
) -> None:
    """Her visit ended (completed, cancelled): every place she still holds is given up. Not
    while she is being examined: that exam is finished first, so that it is recorded."""
    entries = await live_entries(session, visit.id)
    serving = next((e for e in entries if e.state == EntryState.IN_SERVICE), None)
    if serving is not None:
        raise QueueConflict(
            f"She is being examined now (ticket {serving.ticket}); finish that exam first."
        )
    for entry in entries:
        _close(entry, EntryState.CANCELLED, ctx, reason=reason)
    if entries:
        await session.flush()
        await queue_changed(
            session,
            await stations_of(session, {e.station_id for e in entries}),
            ctx,
            mother_ids=[visit.mother_id],
        )


def _close(entry: QueueEntry, state: str, ctx: Ctx, *, reason: str) -> None:
    entry.state = state
    entry.closed_at = ctx.now
    entry.close_reason = reason


async def _station(session: AsyncSession, entry: QueueEntry) -> Station:
    station = await session.get(Station, entry.station_id)
    assert station is not None
    return station


async def stations_of(session: AsyncSession, ids: Iterable[uuid.UUID]) -> list[Station]:
    ids = list(set(ids))
    if not ids:
        return []
    return list((await session.scalars(select(Station).where(Station.id.in_(ids)))).all())


CHANGED_KEY = "queues_changed"  # session.info: station id -> when its queue last moved


def mark_changed(session: AsyncSession, station: Station, now: datetime) -> None:
    """Note that the station's queue moved. Written at commit, in station-id order: two
    transactions that move the same queues lock their rows in the same order (no deadlock),
    and only for the moment of the commit."""
    set_committed_value(station, "queue_changed_at", now)  # seen at once by this transaction
    session.info.setdefault(CHANGED_KEY, {})[station.id] = now


@event.listens_for(Session, "before_commit")
def _write_changed(session: Session) -> None:
    changed: dict[uuid.UUID, datetime] | None = session.info.pop(CHANGED_KEY, None)
    for station_id, at in sorted((changed or {}).items()):
        session.execute(
            update(Station)
            .where(Station.id == station_id)
            .values(queue_changed_at=at)
            .execution_options(synchronize_session=False)
        )


@event.listens_for(Session, "after_rollback")
def _forget_changed(session: Session) -> None:
    session.info.pop(CHANGED_KEY, None)


async def queue_changed(
    session: AsyncSession,
    stations: Iterable[Station],
    ctx: Ctx,
    *,
    mother_ids: Iterable[uuid.UUID] = (),
) -> None:
    """A queue moved: positions and estimates changed for everyone in it, so their butlers hear."""
    stations = list(stations)
    for station in stations:
        mark_changed(session, station, ctx.now)
    mothers = set(mother_ids)
    if stations:
        mothers |= set(
            (
                await session.scalars(
                    select(QueueEntry.mother_id).where(
                        QueueEntry.station_id.in_([s.id for s in stations]),
                        QueueEntry.state.in_(EntryState.LIVE),
                    )
                )
            ).all()
        )
    await touch_mothers(session, mothers, kind="queue.changed", now=ctx.now, today=ctx.today)


# Reading: estimates, her status, the boards ----------------------------------------------


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
    busy = (
        await session.scalars(
            select(QueueEntry)
            .where(QueueEntry.station_id == station.id, QueueEntry.state.in_(EntryState.BUSY))
            .order_by(QueueEntry.room)
        )
    ).all()
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
    waits = estimate_waits(
        station.servers,
        busy_minutes,
        [
            (e.id, max(0.0, (e.available_at - at).total_seconds() / 60), e.expected_minutes)
            for e in ordered
        ],
    )
    return Snapshot(station, ordered, list(busy), waits)


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
    entries = await live_entries(session, visit.id)
    stations = {s.id: s for s in await stations_of(session, {e.station_id for e in entries})}
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
    steps = await steps_of(session, [visit.id])
    views = [_step_view(s) for s in steps]
    ga_day = await ga_day_of(session, visit)
    live_ids = {e.id for e in entries}
    pending = [
        (
            s,
            blockers(v, views, catalogue, ga_day, between=ctx.policy.between)
            or ["not yet in a queue"],
        )
        for s, v in zip(steps, views, strict=True)
        if s.state == "pending" and s.entry_id not in live_ids
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
    total = [s for s in steps if s.state != "cancelled"]
    return VisitQueue(
        places=places,
        suggested=suggested,
        expected_finish=finish if (places or pending) else None,
        pending=pending,
        done_steps=sum(1 for s in total if s.state == "done"),
        total_steps=len(total),
    )


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What a view of an entry shows besides the entry: her (masked) name and flags."""

    name: str
    mrn: str
    urgent: bool
    infection_control: bool
    exams: list[str]


async def entry_facts(
    session: AsyncSession, entries: Sequence[QueueEntry], catalogue: Catalogue
) -> dict[uuid.UUID, EntryFacts]:
    from app.mothers.models import Mother

    if not entries:
        return {}
    visit_ids = {e.visit_id for e in entries}
    rows = (
        await session.execute(
            select(Visit.id, Visit.urgent, Mother.name, Mother.mrn, Pregnancy.purple)
            .join(Mother, Mother.id == Visit.mother_id)
            .join(Pregnancy, Pregnancy.id == Visit.pregnancy_id)
            .where(Visit.id.in_(visit_ids))
        )
    ).all()
    by_visit = {r[0]: r for r in rows}
    steps = (
        await session.scalars(
            select(ExamStep).where(ExamStep.entry_id.in_([e.id for e in entries]))
        )
    ).all()
    exams: dict[uuid.UUID, list[str]] = defaultdict(list)
    for step in steps:
        assert step.entry_id is not None
        rule = catalogue.rule(step.exam_code)
        name = rule.name if rule else step.exam_code
        exams[step.entry_id].append(f"{name} ({step.label})" if step.offset_minutes else name)
    out = {}
    for e in entries:
        _vid, urgent, name, mrn, purple = by_visit[e.visit_id]
        out[e.id] = EntryFacts(
            name=name,
            mrn=mrn,
            urgent=bool(urgent),
            infection_control=bool(purple),  # purple stands beside her colour (NHFPC 2017)
            exams=sorted(exams[e.id]),
        )
    return out
