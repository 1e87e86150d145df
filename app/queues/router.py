from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Body, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditTrail
from app.auth.dependencies import (
    AdminOnly,
    AnyStaff,
    AuditDep,
    ClinicStaff,
    ClinicStaffOrStation,
    Idempotent,
)
from app.auth.models import Role
from app.core.deps import ClockDep
from app.core.errors import Forbidden, problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.principal import Principal
from app.core.routing import SessionDep, make_router
from app.measurements.domain import Entered
from app.measurements.service import NewReading
from app.queues import catalogue as exam_catalogue
from app.queues import operations, routing, stations, timing, undo
from app.queues.boards import board_at, call_result, station_queue_at
from app.queues.dependencies import CatalogueDep, CtxDep, EntryDep, acting
from app.queues.domain import GLUCOSE_DRINK, Catalogue
from app.queues.longpoll import MAX_WAIT, Built, long_poll
from app.queues.models import QueueEntry
from app.queues.policy import Ctx
from app.queues.schemas import (
    BoardList,
    BoardListing,
    CallNext,
    CallResult,
    CancelOrder,
    ExamTypeList,
    ExamTypePublic,
    ExamTypeUpdate,
    FinishExam,
    GlucoseDrink,
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
    Undo,
    UrgentFlag,
    VisitQueuePublic,
)
from app.queues.station_access import (
    CallerHere,
    MoverHere,
    QueueReaderHere,
    ServerHere,
    StationOpHere,
    check_order_station,
    check_visit_station,
)
from app.queues.views import entry_views, station_views
from app.queues.visit_queue import visit_queue_view
from app.visits.router import VisibleVisit

router = make_router(prefix="/v1", tags=["queues"], responses=problem_responses(401, 422))

# The nutritionist runs the nutrition station: these routes admit her too, and
# ``_her_station`` keeps her to it (object level).
NUTRITIONIST_STATION_TYPES = frozenset({"nutrition"})


def _her_station(
    principal: Principal,
    station_type: str,
    audit: AuditTrail,
    action: str,
    ref: uuid.UUID,
    mother_id: uuid.UUID | None = None,
) -> None:
    """The nutritionist acts only at a nutrition station: elsewhere a 403, audited."""
    if principal.role == Role.NUTRITIONIST.value and station_type not in NUTRITIONIST_STATION_TYPES:
        audit.record_denied(
            action, "station", ref, reason="not the nutrition station", mother_id=mother_id
        )
        raise Forbidden("The nutritionist works at the nutrition station only.")


boards = make_router(prefix="/v1", tags=["queue displays"], responses=problem_responses(422))


# Stations and the catalogue --------------------------------------------------------------


@router.get("/stations", response_model=StationList, summary="The clinic's stations and queues")
async def list_stations(_p: AnyStaff, session: SessionDep) -> StationList:
    return StationList(items=await station_views(session, await stations.stations(session)))


@router.post(
    "/stations",
    status_code=status.HTTP_201_CREATED,
    response_model=StationPublic,
    summary="Add a station (admin)",
    dependencies=[Idempotent],
    responses=problem_responses(403, 409),
)
async def create_station(
    body: StationCreate, _admin: AdminOnly, session: SessionDep, audit: AuditDep, ctx: CtxDep
) -> StationPublic:
    station = await stations.create_station(session, body, ctx)
    audit.record("station.create", "station", station.id)
    return (await station_views(session, [station]))[0]


@router.patch(
    "/stations/{code}",
    response_model=StationPublic,
    summary="Change a station; closing it moves its waiting mothers to a sibling (If-Match)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_station(
    code: str,
    body: StationUpdate,
    principal: AdminOnly,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
    response: Response,
    if_match: IfMatch = None,
) -> StationPublic:
    station = await operations.station_by_code(session, code, for_update=True)
    check_if_match(if_match, version=station.version)
    moved, fields = await stations.update_station(
        session,
        station,
        body.model_dump(exclude_unset=True),
        catalogue,
        ctx,
        closer=acting(ctx, principal),
    )
    for entry in moved:
        audit.record(
            "queue.transfer",
            "queue_entry",
            entry.id,
            mother_id=entry.mother_id,
            detail={"mother_id": str(entry.mother_id), "reason": f"{station.code} closed"},
        )
    audit.record("station.update", "station", station.id, detail={"fields": fields})
    response.headers["ETag"] = etag_for(station.version)
    return (await station_views(session, [station]))[0]


@router.get("/exam-types", response_model=ExamTypeList, summary="The exam catalogue")
async def list_exam_types(_p: AnyStaff, session: SessionDep) -> ExamTypeList:
    rows = await exam_catalogue.exam_types(session)
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
    _admin: AdminOnly,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    response: Response,
    if_match: IfMatch = None,
) -> ExamTypePublic:
    row = await exam_catalogue.exam_type_for_update(session, code)
    check_if_match(if_match, version=row.version)
    changes = body.model_dump(exclude_unset=True)
    await exam_catalogue.update_exam_type(session, row, changes, ctx)
    audit.record("exam_type.update", "exam_type", code, detail={"fields": sorted(changes)})
    response.headers["ETag"] = etag_for(row.version)
    return ExamTypePublic.model_validate(row)


# A station's queue and its operations ----------------------------------------------------


@router.get(
    "/stations/{code}/queue",
    response_model=StationQueue,
    summary="Who is being served and who waits, in call order, with estimated waits",
    description="Send If-None-Match with the last ETag: 304 when unchanged; with ?wait=N (at "
    "most 30) the request is held until the queue moves or a timed draw falls due.",
    responses={**problem_responses(403, 404), 304: {"description": "Not modified"}},
)
async def station_queue(
    request: Request,
    code: str,
    principal: QueueReaderHere,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    clock: ClockDep,
    catalogue: CatalogueDep,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT, description="Seconds to hold")] = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    station = await operations.station_by_code(session, code)
    _her_station(principal, station.station_type, audit, "queue.read", station.id)
    shown: list[uuid.UUID] = []

    async def build(now: datetime) -> Built:
        # Read again each time: the long-poll's wait ends the transaction the station was
        # read in.
        here = await operations.station_by_code(session, code)
        built, mothers = await station_queue_at(session, here, catalogue, ctx, now)
        shown[:] = mothers
        return built

    response = await long_poll(
        request,
        session,
        clock,
        build=build,
        prefix="queue",
        wait=wait,
        if_none_match=if_none_match,
    )
    # After the wait (which rolls back), so the read is audited in the request's transaction.
    if response.status_code == status.HTTP_200_OK:
        audit.record_many("queue.read", "mother", shown)
    return response


@router.post(
    "/stations/{code}/call-next",
    response_model=CallResult,
    summary="Call the best waiting mother who is free now into this room",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def call_next(
    code: str,
    body: Annotated[CallNext, Body(default_factory=CallNext)],  # no body: the defaults
    principal: CallerHere,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> CallResult:
    station = await operations.station_by_code(session, code)
    _her_station(principal, station.station_type, audit, "queue.call", station.id)
    entry = await operations.call_next(session, station, body.room, acting(ctx, principal))
    if entry is not None:
        audit.record(
            "queue.call",
            "queue_entry",
            entry.id,
            mother_id=entry.mother_id,
            detail={"mother_id": str(entry.mother_id)},
        )
    return await call_result(session, station, entry, catalogue)


async def _done(
    session: SessionDep,
    entry: QueueEntry,
    catalogue: Catalogue,
    audit: AuditDep,
    action: str,
) -> QueueEntryPublic:
    audit.record(
        f"queue.{action}",
        "queue_entry",
        entry.id,
        mother_id=entry.mother_id,
        detail={"mother_id": str(entry.mother_id)},
    )
    return (await entry_views(session, [entry], catalogue))[0]


Move = Callable[[AsyncSession, QueueEntry, Catalogue, Ctx], Awaitable[object]]


def _entry_move(action: str, move: Move, summary: str) -> None:
    """Register a station's move of one entry in place (recall, start, finish): the same
    checks, audit and answer for each, only the move differs."""

    async def handler(
        principal: ServerHere,
        entry: EntryDep,
        session: SessionDep,
        audit: AuditDep,
        ctx: CtxDep,
        catalogue: CatalogueDep,
    ) -> QueueEntryPublic:
        _her_station(
            principal, entry.station_type, audit, f"queue.{action}", entry.id, entry.mother_id
        )
        await move(session, entry, catalogue, acting(ctx, principal))
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
    lambda session, entry, _catalogue, ctx: operations.recall(session, entry, ctx),
    "Call her again (she has not come yet)",
)
_entry_move(
    "start",
    lambda session, entry, _catalogue, ctx: operations.start(session, entry, ctx),
    "She is here: the exam begins",
)


@router.post(
    "/queue-entries/{entry_id}/finish",
    name="finish",
    response_model=QueueEntryPublic,
    summary="The exam is over: its orders are done and she joins the queues now open to her",
    description="The vitals and NST stations send what they measured (`readings`); they are "
    "checked (a 422 names the reading's field, and nothing is finished) and stored as her "
    "measurements with this visit. Without a body (or without `readings`) the exam is "
    "finished as before; `readings: []` is refused (422: at least one reading, or leave "
    "`readings` out). A ticket that is not in service is a 409, with or without readings.",
    responses=problem_responses(403, 404, 409),
)
async def finish(
    principal: ServerHere,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
    body: FinishExam | None = None,
) -> QueueEntryPublic:
    _her_station(principal, entry.station_type, audit, "queue.finish", entry.id, entry.mother_id)
    # None: no readings sent (finished as before); [] sent explicitly is refused downstream.
    readings = None
    if body is not None and "readings" in body.model_fields_set:
        readings = [
            NewReading(
                Entered(r.kind, r.value, r.value2, r.unit, r.result), r.measured_at, f"readings.{i}"
            )
            for i, r in enumerate(body.readings)
        ]
    await operations.finish_with_readings(
        session, entry, catalogue, acting(ctx, principal), readings
    )
    if readings:
        audit.record(
            "mother.measurements.create",
            "mother",
            entry.mother_id,
            detail={"queue_entry_id": str(entry.id), "count": len(readings)},
        )
    return await _done(session, entry, catalogue, audit, "finish")


@router.post(
    "/queue-entries/{entry_id}/undo",
    response_model=QueueEntryPublic,
    summary="Undo a mis-tap: the room takes back its last call, start or finish (2 minutes)",
    description="Within two minutes of it, and only the room's last action (it called nobody "
    "since). A call undone: she waits again where she was; a start: she is called again; a "
    "finish: she is in service again, the exam's steps and orders open again and the places "
    "it opened for her are given back. Refused (409 `undo-refused`, with `reason`: "
    "`too-late`, `not-last-action` or `depends`) when something since depends on it: she was "
    "called again, or called anywhere since the finish, her glucose drink was recorded on it, "
    "a lab report or readings came with it, or her visit ended. Two undos at once undo one "
    "thing: the second is refused.",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def undo_last(
    body: Undo,
    principal: ServerHere,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> QueueEntryPublic:
    _her_station(principal, entry.station_type, audit, "queue.undo", entry.id, entry.mother_id)
    done = await undo.undo(
        session,
        entry,
        undo.UndoAction(body.action),
        catalogue,
        acting(ctx, principal),
        room=body.room,
    )
    audit.record(
        "queue.undo",
        "queue_entry",
        entry.id,
        mother_id=entry.mother_id,
        detail={
            "mother_id": str(entry.mother_id),
            "undone": done.action.value,
            "undone_at": done.at.isoformat(),
            "room": done.room,
            "given_back": [str(e.id) for e in done.given_back],
        },
    )
    return (await entry_views(session, [entry], catalogue))[0]


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
    principal: StationOpHere,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> TimedTestPublic:
    test = await timing.record_timing_start(
        session,
        entry,
        catalogue,
        acting(ctx, principal),
        event=GLUCOSE_DRINK,
        started_at=body.started_at,
    )
    if test.recorded_now:
        audit.record(
            "queue.glucose_drink",
            "queue_entry",
            entry.id,
            mother_id=entry.mother_id,
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
    principal: StationOpHere,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> QueueEntryPublic:
    nxt = await operations.no_show(session, entry, catalogue, acting(ctx, principal))
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
    principal: MoverHere,
    entry: EntryDep,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> QueueEntryPublic:
    target = await operations.station_by_code(session, body.station)
    nxt = await operations.transfer(session, entry, target, catalogue, acting(ctx, principal))
    return await _done(session, nxt, catalogue, audit, "transfer")


@router.post(
    "/exam-orders/{order_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop an exam from her day, with a reason; a place held for it is given up",
    description="The desk, a doctor, the admin; a station account only an exam done at its "
    "own station (else 403).",
    responses=problem_responses(403, 404, 409),
)
async def cancel_order(
    order_id: uuid.UUID,
    body: CancelOrder,
    principal: ClinicStaffOrStation,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> Response:
    order = await routing.order_for_update(session, order_id)
    await check_order_station(session, principal, order, catalogue, audit)
    await routing.cancel_order(
        session, order, catalogue, acting(ctx, principal), reason=body.reason
    )
    mother_id = await routing.mother_of(session, order)
    audit.record(
        "exam_order.cancel",
        "exam_order",
        order.id,
        mother_id=mother_id,
        # The reason is kept on the order; the trail holds no free text.
        detail={"reason_given": bool(body.reason), "mother_id": str(mother_id)},
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
    principal: ClinicStaff,
    visit: VisibleVisit,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> VisitQueuePublic:
    await operations.flag_urgent(
        session, visit, acting(ctx, principal), urgent=body.urgent, reason=body.reason
    )
    audit.record(
        "visit.urgent",
        "visit",
        visit.id,
        mother_id=visit.mother_id,
        detail={"urgent": body.urgent, "mother_id": str(visit.mother_id)},
    )
    return await visit_queue_view(session, visit, catalogue, ctx)


@router.get(
    "/visits/{visit_id}/queue",
    response_model=VisitQueuePublic,
    summary="Where she waits, her estimated waits and finish, and the suggested next station",
    description="For the staff and her own butler; a station account only for a visit with "
    "a place (or an exam still to do) at its own station (else 403).",
    responses=problem_responses(403, 404),
)
async def visit_queue(
    visit: VisibleVisit,
    principal: AnyStaff,
    session: SessionDep,
    audit: AuditDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
) -> VisitQueuePublic:
    await check_visit_station(session, principal, visit.id, audit, "visit.queue.read")
    audit.record("visit.queue.read", "mother", visit.mother_id, detail={"visit_id": str(visit.id)})
    return await visit_queue_view(session, visit, catalogue, ctx)


# Waiting-room displays (public: tickets and masked names only) ---------------------------


@boards.get(
    "/boards",
    response_model=BoardList,
    summary="The waiting-room boards a TV can show: each open station's code and names",
    description="Public, like the boards: nothing about any mother. In the order of a "
    "mother's day (the catalogue position of the first exam done at each).",
)
async def list_boards(session: SessionDep) -> BoardList:
    # In the order of her day: by the catalogue position of the first exam done there.
    first: dict[str, int] = {}
    for exam in await exam_catalogue.exam_types(session):
        first.setdefault(exam.station_type, exam.position)
    open_ = [s for s in await stations.stations(session) if s.is_open]
    open_.sort(key=lambda s: (first.get(s.station_type, 10_000), s.code))
    return BoardList(items=[BoardListing.model_validate(s, from_attributes=True) for s in open_])


@boards.get(
    "/stations/{code}/board",
    response_model=StationBoard,
    summary="Waiting-room display: now calling, next in the true call order, draws due later",
    description="Tickets and masked names only. `next` is the order call-next takes (one line "
    "per mother); `later` the OGTT draws (and rejoins) not callable before `not_before`. Send "
    "If-None-Match with the last ETag: 304 when unchanged; with ?wait=N (at most 30) the "
    "request is held until the queue moves or a draw falls due.",
    responses={**problem_responses(404), 304: {"description": "Not modified"}},
)
async def board(
    request: Request,
    code: str,
    session: SessionDep,
    ctx: CtxDep,
    clock: ClockDep,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT, description="Seconds to hold")] = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    return await long_poll(
        request,
        session,
        clock,
        build=lambda now: board_at(session, code, ctx, now),
        prefix="board",
        wait=wait,
        if_none_match=if_none_match,
    )


@boards.get(
    "/stations/{code}/board.html",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    summary="The old self-reloading page: now the console's waiting-room TV",
    responses=problem_responses(404),
)
async def board_html(code: str, session: SessionDep) -> RedirectResponse:
    station = await operations.station_by_code(session, code)
    return RedirectResponse(
        f"/console/tv.html?stations={quote(station.code)}",
        status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    )
