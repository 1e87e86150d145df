from __future__ import annotations

import html
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AuditDep, Idempotent, require_roles
from app.auth.models import Role
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import Conflict, NotFound, problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.principal import Principal, PrincipalKind
from app.core.routing import SessionDep, make_router
from app.mothers.domain import mask_name
from app.mothers.models import Mother
from app.queues import service
from app.queues.domain import (
    GLUCOSE_DRINK,
    TIMING_EVENTS,
    Catalogue,
    Estimate,
    parse_precedence,
    parse_sequence,
)
from app.queues.models import EntryState, ExamStep, ExamType, QueueEntry, Station
from app.queues.schemas import (
    AwaitingStart,
    BoardTicket,
    CalledMother,
    CallNext,
    CallResult,
    CancelOrder,
    ExamTypeList,
    ExamTypePublic,
    ExamTypeUpdate,
    GlucoseDrink,
    PendingStep,
    QueueEntryPublic,
    StationBoard,
    StationCreate,
    StationList,
    StationPublic,
    StationQueue,
    StationUpdate,
    TimedDrawPublic,
    TimedTestPublic,
    Transfer,
    UrgentFlag,
    VisitQueuePublic,
)
from app.visits.models import ExamOrder, Visit
from app.visits.router import VisibleVisit

router = make_router(prefix="/v1", tags=["queues"], responses=problem_responses(401, 422))
boards = make_router(prefix="/v1", tags=["queue displays"], responses=problem_responses(422))

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION, Role.BUTLER)),
]
QueueWatchers = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION))
]
StationStaff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.STATION))]
Movers = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.STATION))]
OrderCancellers = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION))
]
Flaggers = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR))]


async def get_ctx(clock: ClockDep, settings: SettingsDep) -> service.Ctx:
    """The actor is filled in per route; this carries the clock, zone and routing policy."""
    nobody = Principal(kind=PrincipalKind.USER, id=uuid.UUID(int=0), name="-", role="-")
    return service.Ctx(
        now=clock.now(),
        tz=settings.tz,
        actor=nobody,
        policy=service.QueuePolicy.from_settings(settings),
    )


CtxDep = Annotated[service.Ctx, Depends(get_ctx)]


def _as(ctx: service.Ctx, principal: Principal) -> service.Ctx:
    return replace(ctx, actor=principal)


async def _catalogue(session: SessionDep) -> Catalogue:
    return await service.load_catalogue(session)


CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]


# Views -------------------------------------------------------------------------------------


async def _views(
    session: SessionDep,
    entries: list[QueueEntry],
    catalogue: Catalogue,
    *,
    estimates: dict[uuid.UUID, Estimate] | None = None,
) -> list[QueueEntryPublic]:
    facts = await service.entry_facts(session, entries, catalogue)
    codes = (
        dict(
            (
                await session.execute(
                    select(Station.id, Station.code).where(
                        Station.id.in_({e.station_id for e in entries})
                    )
                )
            ).all()
        )
        if entries
        else {}
    )
    out = []
    for e in entries:
        f = facts[e.id]
        est = (estimates or {}).get(e.id)
        out.append(
            QueueEntryPublic(
                id=e.id,
                ticket=e.ticket,
                station=codes[e.station_id],
                station_type=e.station_type,
                room=e.room,
                state=e.state,
                visit_id=e.visit_id,
                mother_id=e.mother_id,
                masked_name=mask_name(f.name),
                exams=f.exams,
                step_offset=e.step_offset,
                fasting=e.fasting,
                urgent=f.urgent,
                infection_control=f.infection_control,
                position=est.position if est else None,
                estimated_wait_minutes=est.wait_minutes if est else None,
                expected_minutes=round(e.expected_minutes, 1),
                entered_at=e.entered_at,
                available_at=e.available_at,
                due_at=e.due_at,
                called_at=e.called_at,
                started_at=e.started_at,
                finished_at=e.finished_at,
                closed_at=e.closed_at,
                close_reason=e.close_reason,
                recalls=e.recalls,
                no_shows=e.no_shows,
                previous_id=e.previous_id,
            )
        )
    return out


async def _station_views(session: SessionDep, stations: list[Station]) -> list[StationPublic]:
    counts = (
        await session.execute(
            select(QueueEntry.station_id, QueueEntry.state, func.count())
            .where(QueueEntry.state.in_(EntryState.LIVE))
            .group_by(QueueEntry.station_id, QueueEntry.state)
        )
    ).all()
    waiting: dict[uuid.UUID, int] = {}
    busy: dict[uuid.UUID, int] = {}
    for sid, state, n in counts:
        target = waiting if state == EntryState.WAITING else busy
        target[sid] = target.get(sid, 0) + n
    return [
        StationPublic.model_validate(s).model_copy(
            update={"waiting": waiting.get(s.id, 0), "busy_rooms": busy.get(s.id, 0)}
        )
        for s in stations
    ]


# Stations and the catalogue --------------------------------------------------------------


@router.get("/stations", response_model=StationList, summary="The clinic's stations and queues")
async def list_stations(_p: Staff, session: SessionDep) -> StationList:
    stations = list((await session.scalars(select(Station).order_by(Station.code))).all())
    return StationList(items=await _station_views(session, stations))


@router.post(
    "/stations",
    status_code=status.HTTP_201_CREATED,
    response_model=StationPublic,
    summary="Add a station (admin)",
    dependencies=[Idempotent],
    responses=problem_responses(403, 409),
)
async def create_station(
    body: StationCreate, _admin: Admin, session: SessionDep, audit: AuditDep, ctx: CtxDep
) -> StationPublic:
    if await session.scalar(select(Station.id).where(Station.code == body.code)):
        raise Conflict(f"Station {body.code} exists already.")
    station = Station(**body.model_dump(), is_open=True, updated_at=ctx.now, version=1)
    session.add(station)
    await session.flush()
    audit.record("station.create", "station", station.id)
    return (await _station_views(session, [station]))[0]


@router.patch(
    "/stations/{code}",
    response_model=StationPublic,
    summary="Change a station; closing it moves its waiting mothers to a sibling (If-Match)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_station(
    code: str,
    body: StationUpdate,
    principal: Admin,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
    response: Response,
    if_match: IfMatch = None,
) -> StationPublic:
    station = await service.station_by_code(session, code, for_update=True)
    check_if_match(if_match, version=station.version)
    changes = body.model_dump(exclude_unset=True)
    is_open = changes.pop("is_open", None)
    closing = is_open is False and station.is_open
    if is_open is True:
        station.is_open = True
    for field, value in changes.items():
        setattr(station, field, value)
    if station.closes_at <= station.opens_at:
        raise service.invalid("closes_at", "must be after opens_at")
    busy_rooms = await session.scalar(
        select(func.max(QueueEntry.room)).where(
            QueueEntry.station_id == station.id, QueueEntry.state.in_(EntryState.BUSY)
        )
    )
    if busy_rooms and station.servers < busy_rooms:
        raise Conflict(f"Room {busy_rooms} is busy; finish its mother before removing the room.")
    station.version += 1
    station.updated_at = ctx.now
    if closing:
        moved = await service.close_station(session, station, catalogue, _as(ctx, principal))
        for entry in moved:
            audit.record(
                "queue.transfer",
                "queue_entry",
                entry.id,
                detail={"mother_id": str(entry.mother_id), "reason": f"{station.code} closed"},
            )
    else:
        await service.queue_changed(session, [station], ctx)
    fields = sorted([*changes, *(["is_open"] if is_open is not None else [])])
    audit.record("station.update", "station", station.id, detail={"fields": fields})
    response.headers["ETag"] = etag_for(station.version)
    return (await _station_views(session, [station]))[0]


@router.get("/exam-types", response_model=ExamTypeList, summary="The exam catalogue")
async def list_exam_types(_p: Staff, session: SessionDep) -> ExamTypeList:
    rows = (await session.scalars(select(ExamType).order_by(ExamType.position))).all()
    return ExamTypeList(items=[ExamTypePublic.model_validate(r) for r in rows])


@router.patch(
    "/exam-types/{code}",
    response_model=ExamTypePublic,
    summary="Change an exam type's station, rules or times (admin, If-Match)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_exam_type(
    code: str,
    body: ExamTypeUpdate,
    _admin: Admin,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    response: Response,
    if_match: IfMatch = None,
) -> ExamTypePublic:
    row = await session.scalar(select(ExamType).where(ExamType.code == code).with_for_update())
    if row is None:
        raise NotFound(f"No exam type {code!r}.")
    check_if_match(if_match, version=row.version)
    changes = body.model_dump(exclude_unset=True)
    for field in ("precedence", "sequence"):
        if field in changes:
            try:
                (parse_precedence if field == "precedence" else parse_sequence)(changes[field])
            except (ValueError, KeyError, TypeError) as exc:
                raise service.invalid(field, str(exc)) from exc
    for field, value in changes.items():
        setattr(row, field, value)
    catalogue = await service.load_catalogue(session)
    try:
        catalogue.validate()
    except ValueError as exc:
        raise service.invalid("precedence", str(exc)) from exc
    row.version += 1
    row.updated_at = ctx.now
    audit.record("exam_type.update", "exam_type", code, detail={"fields": sorted(changes)})
    response.headers["ETag"] = etag_for(row.version)
    return ExamTypePublic.model_validate(row)


# A station's queue and its operations ----------------------------------------------------


@router.get(
    "/stations/{code}/queue",
    response_model=StationQueue,
    summary="Who is being served and who waits, in call order, with estimated waits",
    responses=problem_responses(403, 404),
)
async def station_queue(
    code: str,
    _p: QueueWatchers,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> StationQueue:
    station = await service.station_by_code(session, code)
    snap = await service.snapshot(session, station, ctx)
    serving = await _views(session, snap.busy, catalogue)
    waiting = await _views(session, snap.ordered, catalogue, estimates=snap.estimates)
    awaiting = await service.awaiting_timing_start(session, station, ctx)
    shown = [*snap.busy, *snap.ordered]
    audit.record_many(
        "queue.read", "mother", [e.mother_id for e in shown] + [a.mother_id for a, _ in awaiting]
    )
    return StationQueue(
        station=(await _station_views(session, [station]))[0],
        serving=serving,
        waiting=waiting,
        awaiting_start=await _awaiting_views(session, awaiting, catalogue),
        as_of=station.queue_changed_at,
    )


async def _awaiting_views(
    session: SessionDep, awaiting: list[tuple[QueueEntry, ExamStep]], catalogue: Catalogue
) -> list[AwaitingStart]:
    if not awaiting:
        return []
    names = dict(
        (
            await session.execute(
                select(Mother.id, Mother.name).where(
                    Mother.id.in_({e.mother_id for e, _ in awaiting})
                )
            )
        ).all()
    )
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


@router.post(
    "/stations/{code}/call-next",
    response_model=CallResult,
    summary="Call the best waiting mother who is free now into this room",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def call_next(
    code: str,
    body: CallNext,
    principal: StationStaff,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> CallResult:
    station = await service.station_by_code(session, code)
    entry = await service.call_next(session, station, body.room, _as(ctx, principal))
    waiting = int(
        await session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.station_id == station.id, QueueEntry.state == EntryState.WAITING)
        )
        or 0
    )
    if entry is None:
        return CallResult(
            called=None,
            waiting=waiting,
            reason="Nobody waiting may be called now (busy elsewhere, not yet due, or none)."
            if waiting
            else "Nobody is waiting.",
        )
    audit.record("queue.call", "queue_entry", entry.id, detail={"mother_id": str(entry.mother_id)})
    view = (await _views(session, [entry], catalogue))[0]
    facts = (await service.entry_facts(session, [entry], catalogue))[entry.id]
    return CallResult(
        called=CalledMother(entry=view, name=facts.name, mrn=facts.mrn), waiting=waiting
    )


async def _entry_for_station(session: SessionDep, entry_id: uuid.UUID) -> QueueEntry:
    return await service.entry_by_id(session, entry_id, for_update=True)


EntryDep = Annotated[QueueEntry, Depends(_entry_for_station)]


async def _done(
    session: SessionDep,
    entry: QueueEntry,
    catalogue: Catalogue,
    audit: AuditDep,
    action: str,
) -> QueueEntryPublic:
    audit.record(
        f"queue.{action}", "queue_entry", entry.id, detail={"mother_id": str(entry.mother_id)}
    )
    return (await _views(session, [entry], catalogue))[0]


Move = Callable[[AsyncSession, QueueEntry, Catalogue, service.Ctx], Awaitable[object]]


def _entry_move(action: str, move: Move, summary: str) -> None:
    """Register a station's move of one entry in place (recall, start, finish): the same
    checks, audit and answer for each, only the move differs."""

    async def handler(
        principal: StationStaff,
        entry: EntryDep,
        session: SessionDep,
        audit: AuditDep,
        ctx: CtxDep,
        catalogue: CatalogueDep,
    ) -> QueueEntryPublic:
        await move(session, entry, catalogue, _as(ctx, principal))
        return await _done(session, entry, catalogue, audit, action)

    router.post(
        f"/queue-entries/{{entry_id}}/{action}",
        name=action,
        response_model=QueueEntryPublic,
        summary=summary,
        responses=problem_responses(403, 404, 409),
    )(handler)


_entry_move(
    "recall",
    lambda session, entry, _catalogue, ctx: service.recall(session, entry, ctx),
    "Call her again (she has not come yet)",
)
_entry_move(
    "start",
    lambda session, entry, _catalogue, ctx: service.start(session, entry, ctx),
    "She is here: the exam begins",
)
_entry_move(
    "finish",
    service.finish,
    "The exam is over: its orders are done and she joins the queues now open to her",
)


@router.post(
    "/queue-entries/{entry_id}/glucose-drink",
    response_model=TimedTestPublic,
    summary="She began the OGTT's glucose drink: its 1- and 2-hour draws are timed from now on",
    description="Recorded on her finished fasting draw (the entry that served it). Until it "
    "is recorded her timed draws are not due and she is not called for them. Once: the same "
    "time again is a retry (200), another time 409; a time before the fasting draw finished "
    "or in the future is 422.",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def glucose_drink(
    body: GlucoseDrink,
    principal: StationStaff,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> TimedTestPublic:
    test = await service.record_timing_start(
        session,
        entry,
        catalogue,
        _as(ctx, principal),
        event=GLUCOSE_DRINK,
        started_at=body.started_at,
    )
    if test.recorded_now:
        audit.record(
            "queue.glucose_drink",
            "queue_entry",
            entry.id,
            detail={
                "mother_id": str(entry.mother_id),
                "started_at": body.started_at.isoformat(),
            },
        )
    first = test.first_step
    assert first.timing_started_at is not None
    assert first.timing_recorded_at is not None
    return TimedTestPublic(
        entry_id=entry.id,
        exam_code=first.exam_code,
        event=test.event,
        started_at=first.timing_started_at,
        recorded_at=first.timing_recorded_at,
        recorded_by=first.timing_recorded_by_name or "",
        draws=[
            TimedDrawPublic(
                label=d.step.label,
                offset_minutes=d.step.offset_minutes,
                tolerance_minutes=d.step.tolerance_minutes,
                due_at=d.due_at,
                earliest_at=_within(d.due_at, -(d.step.tolerance_minutes or 0)),
                latest_at=_within(d.due_at, d.step.tolerance_minutes or 0),
                state=d.step.state,
                ticket=d.entry.ticket if d.entry is not None else None,
            )
            for d in test.draws
        ],
    )


def _within(due: datetime | None, minutes: int) -> datetime | None:
    return due + timedelta(minutes=minutes) if due is not None else None


@router.post(
    "/queue-entries/{entry_id}/no-show",
    response_model=QueueEntryPublic,
    summary="She did not come when called: she rejoins after a delay, keeping her place",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def no_show(
    principal: StationStaff,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> QueueEntryPublic:
    nxt = await service.no_show(session, entry, catalogue, _as(ctx, principal))
    return await _done(session, nxt, catalogue, audit, "no_show")


@router.post(
    "/queue-entries/{entry_id}/transfer",
    response_model=QueueEntryPublic,
    summary="Move her place to another station of the same kind",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def transfer(
    body: Transfer,
    principal: Movers,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> QueueEntryPublic:
    target = await service.station_by_code(session, body.station)
    nxt = await service.transfer(session, entry, target, catalogue, _as(ctx, principal))
    return await _done(session, nxt, catalogue, audit, "transfer")


@router.post(
    "/exam-orders/{order_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop an exam from her day, with a reason; a place held for it is given up",
    responses=problem_responses(403, 404, 409),
)
async def cancel_order(
    order_id: uuid.UUID,
    body: CancelOrder,
    principal: OrderCancellers,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> Response:
    order = await session.scalar(
        select(ExamOrder).where(ExamOrder.id == order_id).with_for_update()
    )
    if order is None:
        raise NotFound("No such exam order.")
    await service.cancel_order(session, order, catalogue, _as(ctx, principal), reason=body.reason)
    mother_id = await session.scalar(select(Visit.mother_id).where(Visit.id == order.visit_id))
    audit.record(
        "exam_order.cancel",
        "exam_order",
        order.id,
        detail={"reason": body.reason, "mother_id": str(mother_id)},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Her visit ---------------------------------------------------------------------------------


@router.post(
    "/visits/{visit_id}/urgent",
    response_model=VisitQueuePublic,
    summary="Flag her urgent (or not): first in every queue she is in",
    responses=problem_responses(403, 404, 409),
)
async def flag_urgent(
    body: UrgentFlag,
    principal: Flaggers,
    visit: VisibleVisit,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> VisitQueuePublic:
    visit.urgent = body.urgent
    visit.urgent_reason = body.reason if body.urgent else None
    visit.version += 1
    await session.flush()
    entries = await service.live_entries(session, visit.id)
    stations = await service.stations_of(session, {e.station_id for e in entries})
    await service.queue_changed(
        session, stations, _as(ctx, principal), mother_ids=[visit.mother_id]
    )
    audit.record(
        "visit.urgent",
        "visit",
        visit.id,
        detail={"urgent": body.urgent, "mother_id": str(visit.mother_id)},
    )
    return await _visit_queue(session, visit, catalogue, ctx)


@router.get(
    "/visits/{visit_id}/queue",
    response_model=VisitQueuePublic,
    summary="Where she waits, her estimated waits and finish, and the suggested next station",
    responses=problem_responses(403, 404),
)
async def visit_queue(
    visit: VisibleVisit,
    _p: Annotated[
        Principal,
        Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.BUTLER, Role.STATION)),
    ],
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> VisitQueuePublic:
    audit.record("visit.queue.read", "mother", visit.mother_id, detail={"visit_id": str(visit.id)})
    return await _visit_queue(session, visit, catalogue, ctx)


async def _visit_queue(
    session: SessionDep, visit: Visit, catalogue: Catalogue, ctx: service.Ctx
) -> VisitQueuePublic:
    q = await service.visit_queue(session, visit, catalogue, ctx)
    estimates = {
        p.entry.id: Estimate(p.position, p.wait_minutes)
        for p in q.places
        if p.position is not None and p.wait_minutes is not None
    }
    places = await _views(session, [p.entry for p in q.places], catalogue, estimates=estimates)
    history_rows = list(
        (
            await session.scalars(
                select(QueueEntry)
                .where(QueueEntry.visit_id == visit.id, QueueEntry.state.not_in(EntryState.LIVE))
                .order_by(QueueEntry.closed_at, QueueEntry.entered_at)
            )
        ).all()
    )
    history = await _views(session, history_rows, catalogue)
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


# Waiting-room displays (public: tickets and masked names only) ---------------------------


async def _board(session: SessionDep, code: str, ctx: service.Ctx) -> StationBoard:
    station = await service.station_by_code(session, code)
    snap = await service.snapshot(session, station, ctx)
    shown = [*snap.busy, *snap.ordered[:5]]
    names = (
        dict(
            (
                await session.execute(
                    select(QueueEntry.id, Mother.name)
                    .join(Mother, Mother.id == QueueEntry.mother_id)
                    .where(QueueEntry.id.in_([e.id for e in shown]))
                )
            ).all()
        )
        if shown
        else {}
    )
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
            for e in snap.ordered[:5]
        ],
        as_of=station.queue_changed_at,
    )


@boards.get(
    "/stations/{code}/board",
    response_model=StationBoard,
    summary="Waiting-room display: now calling and the next five tickets (masked names)",
    responses=problem_responses(404),
)
async def board(code: str, session: SessionDep, ctx: CtxDep) -> StationBoard:
    return await _board(session, code, ctx)


@boards.get(
    "/stations/{code}/board.html",
    response_class=HTMLResponse,
    summary="The same display as a plain page that refreshes itself",
    responses=problem_responses(404),
)
async def board_html(
    code: str,
    session: SessionDep,
    ctx: CtxDep,
    refresh: Annotated[int, Query(ge=2, le=120, description="Seconds between reloads")] = 5,
) -> HTMLResponse:
    b = await _board(session, code, ctx)
    esc = html.escape
    calling = (
        "".join(
            f"<li><b>{esc(t.ticket)}</b> {esc(t.masked_name)} → room {t.room}</li>"
            for t in b.now_calling
        )
        or "<li>—</li>"
    )
    nxt = "".join(f"<li>{esc(t.ticket)} {esc(t.masked_name)}</li>" for t in b.next) or "<li>—</li>"
    page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>{esc(b.name)} — {esc(b.station)}</title>
<style>body{{font-family:sans-serif;font-size:2.2em;margin:1em}}h2{{color:#555}}
ul{{list-style:none;padding:0}}li{{margin:.3em 0}}</style></head>
<body><h1>{esc(b.name)}</h1>
<h2>Now calling</h2><ul>{calling}</ul>
<h2>Next</h2><ul>{nxt}</ul></body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
