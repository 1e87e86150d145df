from __future__ import annotations

import contextlib
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Body, Depends, Header, Query, Request, Response, status

from app.assignments.dependencies import PolicyDep, may_see_mother
from app.assignments.repository import AssignmentRepository, visible_mother_ids
from app.audit.service import AuditTrail
from app.auth.dependencies import (
    AnyStaff,
    AuditDep,
    ClinicStaff,
    ClinicStaffButlerOrNutritionist,
    ClinicStaffOrButler,
    ClinicStaffOrStation,
    DeskStaff,
    Idempotent,
)
from app.auth.models import Role
from app.careplan.registry import load_guidelines
from app.core import ratelimit
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    ValidationFailed,
    links,
    problem_responses,
)
from app.core.principal import Principal, PrincipalKind
from app.core.routing import SessionDep, make_router
from app.core.settings import BookingOutsideWindow, Settings
from app.mothers.dependencies import MotherRepoDep
from app.queues.dependencies import CatalogueDep, CtxDep
from app.queues.her_view import her_visit
from app.queues.longpoll import MAX_WAIT, Built, long_poll
from app.queues.policy import QueuePolicy
from app.queues.schemas import HerVisit
from app.queues.station_access import check_visit_station
from app.visits import her_links, service
from app.visits.domain import VisitStatus
from app.visits.models import ExamOrder, Visit
from app.visits.repository import VisitRepository
from app.visits.schemas import (
    Board,
    BoardSession,
    BoardVisit,
    CheckIn,
    CheckInResult,
    ClinicSessionCreate,
    ClinicSessionList,
    ExamOrderCreate,
    ExamOrderPublic,
    HerLinkPublic,
    ReasonBody,
    SessionForecast,
    SweepRequest,
    SweepResult,
    VisitBook,
    VisitDetail,
    VisitList,
    VisitNotice,
    VisitPublic,
    VisitReschedule,
    VisitStatusChangePublic,
)
from app.visits.service import Notice

router = make_router(prefix="/v1", tags=["visits"], responses=problem_responses(401, 422))


async def get_visit_repository(session: SessionDep) -> VisitRepository:
    return VisitRepository(session)


VisitRepoDep = Annotated[VisitRepository, Depends(get_visit_repository)]


async def get_clinic(clock: ClockDep, settings: SettingsDep) -> service.Clinic:
    return service.Clinic(
        now=clock.now(),
        tz=settings.tz,
        guidelines=load_guidelines(settings.care_plan_dir),
        queue_policy=QueuePolicy.from_settings(settings),
        region_flags=settings.care_plan_region_flags,
        max_wait_minutes=settings.booking_max_wait_minutes,
    )


ClinicDep = Annotated[service.Clinic, Depends(get_clinic)]


async def visible_visit(
    visit_id: uuid.UUID,
    request: Request,
    principal: AnyStaff,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> Visit:
    """The visit, if this caller may see the mother's care; 404 otherwise."""
    visit = await repo.visit(visit_id, for_update=request.method != "GET")
    if visit is None:
        raise NotFound("No visit with that id is visible to you.")
    if not await may_see_mother(
        AssignmentRepository(repo.session), principal, visit.mother_id, clinic.today
    ):
        audit.record_denied(
            "visit.read", "visit", visit.id, reason="not assigned", mother_id=visit.mother_id
        )
        raise NotFound("No visit with that id is visible to you.")
    return visit


VisibleVisit = Annotated[Visit, Depends(visible_visit)]


def _view(
    visit: Visit, orders: list[ExamOrder] | None = None, notices: list[Notice] | None = None
) -> VisitPublic:
    return VisitPublic(
        id=visit.id,
        mother_id=visit.mother_id,
        pregnancy_id=visit.pregnancy_id,
        session_id=visit.session_id,
        visit_date=visit.visit_date,
        scheduled_at=visit.scheduled_at,
        arrival_at=visit.arrival_at,
        forecast_exams=visit.forecast_exams,
        window_code=visit.window_code,
        status=visit.status,
        walk_in=visit.walk_in,
        accompanying_butler_id=visit.accompanying_butler_id,
        arrived_at=visit.arrived_at,
        started_at=visit.started_at,
        completed_at=visit.completed_at,
        cancelled_at=visit.cancelled_at,
        cancel_reason=visit.cancel_reason,
        version=visit.version,
        exam_orders=[ExamOrderPublic.model_validate(o) for o in orders or []],
        warnings=[n.text for n in notices or []],
        notices=[VisitNotice(code=n.code, params=n.params, text=n.text) for n in notices or []],
    )


# Clinic sessions ---------------------------------------------------------------------------


@router.post(
    "/clinic-sessions",
    tags=["clinic sessions"],
    status_code=status.HTTP_201_CREATED,
    response_model=ClinicSessionList,
    summary="Open a clinic session (optionally the same one for several weeks)",
    dependencies=[Idempotent],
    responses=problem_responses(403),
)
async def create_clinic_sessions(
    body: ClinicSessionCreate, _admin: DeskStaff, repo: VisitRepoDep, clinic: ClinicDep
) -> ClinicSessionList:
    sessions = await service.create_sessions(repo, data=body, now=clinic.now)
    return ClinicSessionList(items=[service.session_view(s, 0) for s in sessions])


@router.get(
    "/clinic-sessions",
    tags=["clinic sessions"],
    response_model=ClinicSessionList,
    summary="Clinic sessions in a date range, with places booked and left",
    responses=problem_responses(403),
)
async def list_clinic_sessions(
    _who: ClinicStaffOrButler,
    repo: VisitRepoDep,
    clinic: ClinicDep,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> ClinicSessionList:
    start = date_from or clinic.today
    end = date_to or start + timedelta(days=14)
    if end < start or (end - start).days > 92:
        raise ValidationFailed("The range must run forwards and span at most 92 days.")
    sessions = await repo.clinic_sessions(start=start, end=end)
    counts = await repo.booked_counts([s.id for s in sessions])
    slots = await repo.slot_counts_of([s.id for s in sessions])
    forecasts = await service.forecasts(repo, clinic, sessions)
    stations = await repo.stations()
    return ClinicSessionList(
        items=[
            service.session_view(
                s,
                counts.get(s.id, 0),
                slots=slots[s.id],
                clinic=clinic,
                stations=service.station_loads(forecasts[s.id][1], stations),
            )
            for s in sessions
        ]
    )


@router.get(
    "/clinic-sessions/{session_id}/forecast",
    tags=["clinic sessions"],
    response_model=SessionForecast,
    summary="A session's forecast work per station type against its rooms' minutes",
    description="Each booked (or checked-in, or done) visit's exams - those her care plan "
    "orders on the session's day - times each exam's learned service minutes, per station "
    "type, against its rooms times the minutes they are open within the session's hours. A "
    "booking that would take a station type past 100 % is refused (409 "
    "`station-over-capacity`) unless an admin overrides it. Counts only: no mother's data.",
    responses=problem_responses(403, 404),
)
async def clinic_session_forecast(
    session_id: uuid.UUID,
    _who: ClinicStaffOrButler,
    repo: VisitRepoDep,
    clinic: ClinicDep,
) -> SessionForecast:
    # A session is the clinic's timetable, open to every caller of the session list.
    session = await repo.clinic_session(session_id)
    if session is None:
        raise NotFound("No clinic session with that id.")
    return await service.session_forecast(repo, clinic, session)


# Booking ------------------------------------------------------------------------------------


@router.post(
    "/visits",
    status_code=status.HTTP_201_CREATED,
    response_model=VisitPublic,
    summary="Book a visit into a clinic session for a care-plan window",
    dependencies=[Idempotent],
    responses={
        **problem_responses(403, 404, 409),
        **links(201, ReadVisit=("read_visit_v1_visits__visit_id__get", "visit_id", "/id")),
    },
)
async def book_visit(
    body: VisitBook,
    principal: DeskStaff,
    repo: VisitRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    settings: SettingsDep,
    policy: PolicyDep,
    response: Response,
) -> VisitPublic:
    if body.override_capacity and principal.role != Role.ADMIN:
        audit.record_denied(
            "visit.capacity_override",
            "mother",
            body.mother_id,
            reason="only an admin overrides capacity",
            mother_id=body.mother_id,
        )
        raise Forbidden("Only an admin may book past a station's capacity.")
    mother = await mothers.get(body.mother_id, for_update=True)
    if mother is None:
        raise NotFound("No mother with that id.")
    visit, notices, overridden = await service.book_visit(
        repo,
        mothers,
        mother=mother,
        session_id=body.session_id,
        preferred=body.preferred_time,
        window_code=body.window_code,
        refuse_outside_window=settings.booking_outside_window is BookingOutsideWindow.REFUSE,
        actor=principal,
        clinic=clinic,
        policy=policy,
        override=body.override_reason if body.override_capacity else None,
    )
    audit.record(
        "visit.book", "visit", visit.id, mother_id=mother.id, detail={"mother_id": str(mother.id)}
    )
    if overridden:  # who decided is the event's actor
        audit.record(
            "visit.capacity_override",
            "visit",
            visit.id,
            mother_id=mother.id,
            detail={
                "mother_id": str(mother.id),
                "session_id": str(visit.session_id),
                "reason": body.override_reason,
                "station_types": [
                    {
                        "station_type": s.station_type,
                        "demand_minutes": round(s.demand_minutes, 1),
                        "capacity_minutes": round(s.capacity_minutes, 1),
                    }
                    for s in overridden
                ],
            },
        )
    if body.override_reason and not body.override_capacity:  # a reason alone overrides nothing
        ignored = "An override reason without override_capacity was ignored."
        notices = [*notices, Notice("override-reason-ignored", ignored)]
    response.headers["Location"] = f"/v1/visits/{visit.id}"
    return _view(visit, notices=notices)


@router.get(
    "/visits",
    response_model=VisitList,
    summary="The visits of a day (or of one mother): status, booked time, butlers, tickets",
    description="Masked names. `date` defaults to today, except with `mother_id` alone, which "
    "lists every visit of hers. `status` may be repeated. A butler sees her own mothers only "
    "(another mother's id is a 404).",
    responses=problem_responses(403, 404),
)
async def list_visits(
    principal: ClinicStaffButlerOrNutritionist,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    settings: SettingsDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    statuses: Annotated[list[VisitStatus] | None, Query(alias="status")] = None,
    mother_id: uuid.UUID | None = None,
) -> VisitList:
    only = None
    if principal.role == Role.BUTLER:
        if principal.butler_id is None:
            raise NotFound("No mother with that id is visible to you.")
        only = visible_mother_ids(principal.butler_id, clinic.today)
        if mother_id is not None and not await may_see_mother(
            AssignmentRepository(repo.session), principal, mother_id, clinic.today
        ):
            audit.record_denied("visit.list", "mother", mother_id, reason="not assigned")
            raise NotFound("No mother with that id is visible to you.")
    if day is None and mother_id is None:
        day = clinic.today
    listed = await service.visit_list(
        repo,
        day=day,
        statuses=frozenset(statuses or ()),
        mother_id=mother_id,
        only_mothers=only,
        tz=settings.tz,
    )
    audit.record_many("visit.list", "mother", sorted({i.mother_id for i in listed.items}))
    return listed


@router.get(
    "/visits/board",
    response_model=Board,
    summary="Today's board: each session's visits by state (booked, arrived, in progress, done)",
    responses=problem_responses(403),
)
async def board(
    _who: ClinicStaff,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    day: Annotated[date | None, Query(alias="date")] = None,
) -> Board:
    day = day or clinic.today
    sessions = await repo.clinic_sessions(start=day, end=day)
    visits = await repo.visits_on(day)
    counts = await repo.booked_counts([s.id for s in sessions])
    escorts = await repo.butler_names(
        {v.accompanying_butler_id for v, _ in visits if v.accompanying_butler_id is not None}
    )
    out = []
    for session in sessions:
        rows = [(v, m) for v, m in visits if v.session_id == session.id]
        tally = {s.value: 0 for s in VisitStatus}
        for visit, _ in rows:
            tally[visit.status.value] += 1
        out.append(
            BoardSession(
                session=service.session_view(session, counts.get(session.id, 0)),
                counts=tally,
                visits=[
                    BoardVisit(
                        visit_id=v.id,
                        mother_id=m.id,
                        mrn=m.mrn,
                        name=m.name,
                        scheduled_at=v.scheduled_at,
                        status=v.status,
                        walk_in=v.walk_in,
                        accompanying_butler_id=v.accompanying_butler_id,
                        accompanying_butler_name=escorts.get(v.accompanying_butler_id)
                        if v.accompanying_butler_id is not None
                        else None,
                    )
                    for v, m in rows
                ],
            )
        )
    audit.record_many("visit.board", "mother", [m.id for _, m in visits])
    return Board(day=day, sessions=out)


@router.post(
    "/visits/no-show-sweep",
    response_model=SweepResult,
    summary="End of day: booked visits whose session has ended become no-shows",
    responses=problem_responses(403),
)
async def no_show_sweep(
    body: Annotated[SweepRequest, Body(default_factory=SweepRequest)],  # no body: the defaults
    principal: DeskStaff,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> SweepResult:
    day = body.day or clinic.today
    marked = await service.sweep_no_shows(repo, day=day, actor=principal, clinic=clinic)
    for visit_id in marked:
        swept = await repo.session.get(Visit, visit_id)  # loaded by the sweep: no query
        audit.record(
            "visit.no_show",
            "visit",
            visit_id,
            mother_id=swept.mother_id if swept is not None else None,
            detail={"sweep": day.isoformat()},
        )
    return SweepResult(day=day, marked_no_show=marked)


@router.get(
    "/visits/{visit_id}",
    response_model=VisitDetail,
    summary="A visit with its exam orders and its status history",
    responses=problem_responses(403, 404),
)
async def read_visit(visit: VisibleVisit, repo: VisitRepoDep, audit: AuditDep) -> VisitDetail:
    orders = (await repo.orders_of([visit.id]))[visit.id]
    history = await repo.status_changes(visit.id)
    audit.record(
        "visit.read",
        "visit",
        visit.id,
        mother_id=visit.mother_id,
        detail={"mother_id": str(visit.mother_id)},
    )
    return VisitDetail(
        **_view(visit, orders).model_dump(),
        history=[VisitStatusChangePublic.model_validate(h) for h in history],
    )


@router.post(
    "/visits/{visit_id}/reschedule",
    response_model=VisitPublic,
    summary="Move a booked visit to another session or hour, with a reason",
    responses=problem_responses(403, 404, 409),
)
async def reschedule_visit(
    body: VisitReschedule,
    principal: DeskStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    settings: SettingsDep,
    policy: PolicyDep,
) -> VisitPublic:
    notices = await service.reschedule_visit(
        repo,
        mothers,
        visit=visit,
        session_id=body.session_id,
        preferred=body.preferred_time,
        reason=body.reason,
        refuse_outside_window=settings.booking_outside_window is BookingOutsideWindow.REFUSE,
        actor=principal,
        clinic=clinic,
        policy=policy,
    )
    audit.record("visit.reschedule", "visit", visit.id, mother_id=visit.mother_id)
    return _view(visit, notices=notices)


async def _transition(
    visit: Visit,
    to: VisitStatus,
    *,
    principal: Principal,
    repo: VisitRepository,
    audit: AuditDep,
    clinic: service.Clinic,
    reason: str | None = None,
) -> VisitPublic:
    await service.change_status(
        repo, visit=visit, to=to, actor=principal, clinic=clinic, reason=reason
    )
    audit.record(f"visit.{to.value}", "visit", visit.id, mother_id=visit.mother_id)
    return _view(visit, (await repo.orders_of([visit.id]))[visit.id])


@router.post(
    "/visits/{visit_id}/cancel",
    response_model=VisitPublic,
    summary="Cancel a visit, with a reason",
    responses=problem_responses(403, 404, 409),
)
async def cancel_visit(
    body: ReasonBody,
    principal: DeskStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> VisitPublic:
    return await _transition(
        visit,
        VisitStatus.CANCELLED,
        principal=principal,
        repo=repo,
        audit=audit,
        clinic=clinic,
        reason=body.reason,
    )


@router.post(
    "/visits/{visit_id}/no-show",
    response_model=VisitPublic,
    summary="Mark a booked visit as a no-show",
    responses=problem_responses(403, 404, 409),
)
async def mark_no_show(
    principal: DeskStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> VisitPublic:
    return await _transition(
        visit, VisitStatus.NO_SHOW, principal=principal, repo=repo, audit=audit, clinic=clinic
    )


@router.post(
    "/visits/{visit_id}/start",
    response_model=VisitPublic,
    summary="Her first exam has begun: the visit is in progress",
    description="The desk, a doctor, the admin; a station account only for a visit with a "
    "place (or an exam still to do) at its own station (else 403).",
    responses=problem_responses(403, 404, 409),
)
async def start_visit(
    principal: ClinicStaffOrStation,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> VisitPublic:
    await check_visit_station(repo.session, principal, visit.id, audit, "visit.in_progress")
    return await _transition(
        visit, VisitStatus.IN_PROGRESS, principal=principal, repo=repo, audit=audit, clinic=clinic
    )


@router.post(
    "/visits/{visit_id}/complete",
    response_model=VisitPublic,
    summary="Her exams for the day are done: the visit is completed",
    description="The desk, a doctor or the admin (not a station account: completing closes "
    "every queue she still waits in, at every station).",
    responses=problem_responses(403, 404, 409),
)
async def complete_visit(
    principal: ClinicStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> VisitPublic:
    return await _transition(
        visit, VisitStatus.COMPLETED, principal=principal, repo=repo, audit=audit, clinic=clinic
    )


@router.post(
    "/visits/{visit_id}/exam-orders",
    status_code=status.HTTP_201_CREATED,
    response_model=ExamOrderPublic,
    summary="Add an exam order to a visit (front desk or doctor)",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def add_exam_order(
    body: ExamOrderCreate,
    principal: ClinicStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> ExamOrderPublic:
    order = await service.add_exam_order(
        repo, mothers, visit=visit, exam_code=body.exam_code, actor=principal, clinic=clinic
    )
    audit.record(
        "visit.exam_order",
        "visit",
        visit.id,
        mother_id=visit.mother_id,
        detail={"exam_code": order.exam_code},
    )
    return ExamOrderPublic.model_validate(order)


# Check-in -----------------------------------------------------------------------------------


@router.post(
    "/check-ins",
    tags=["check-in"],
    response_model=CheckInResult,
    summary="Check a mother in for today by a scan (MRN or visit code); a rescan is the same",
    description="The scan is trimmed and its case ignored. Booked on another day and not "
    "today: a 409 `booked-another-day` naming the day (`booked_on`, `booked_time`, "
    '`visit_id`), unless the desk confirms a walk-in with `"walk_in": true`. With no '
    "booking at all she is checked in as a walk-in (the answer says `walk_in: true`).",
    dependencies=[Idempotent],
    responses={
        **problem_responses(403, 404, 409),
        **links(
            200,
            ReadVisit=("read_visit_v1_visits__visit_id__get", "visit_id", "/id"),
            HerQueues=("visit_queue_v1_visits__visit_id__queue_get", "visit_id", "/id"),
        ),
    },
)
async def check_in(
    body: CheckIn,
    principal: DeskStaff,
    repo: VisitRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    policy: PolicyDep,
) -> CheckInResult:
    visit_id = body.visit_id
    mother = None
    if body.visit_id is None:
        scanned = "".join((body.mrn or body.scan or "").split())
        if body.scan is not None:
            with contextlib.suppress(ValueError):
                visit_id = uuid.UUID(scanned)
        if visit_id is None:
            found_mothers = await repo.mothers_by_scan(scanned)
            if len(found_mothers) > 1:
                raise Conflict(
                    "Two MRNs differ only in case; type the MRN exactly as enrolled.",
                )
            mother = found_mothers[0] if found_mothers else None
    if visit_id is not None:
        found = await repo.visit(visit_id)
        mother = await mothers.get(found.mother_id) if found else None
    if mother is None:
        raise NotFound("No mother or visit matches that scan.")
    visit, repeated = await service.check_in(
        repo,
        mothers,
        mother=mother,
        visit_id=visit_id,
        extra_exams=body.extra_exams,
        walk_in=body.walk_in,
        actor=principal,
        clinic=clinic,
        policy=policy,
    )
    if not repeated:
        audit.record(
            "visit.check_in",
            "visit",
            visit.id,
            mother_id=mother.id,
            detail={"mother_id": str(mother.id)},
        )
    orders = (await repo.orders_of([visit.id]))[visit.id]
    return CheckInResult(**_view(visit, orders).model_dump(), already_checked_in=repeated)


# Her own page ---------------------------------------------------------------------------------

HER_LINK_MISSES = 20  # unknown links a client may try …
HER_LINK_WINDOW = timedelta(minutes=10)  # … in this window (then 429)


def _base_url(request: Request, settings: Settings) -> str:
    """Where the console is reached: PUBLIC_BASE_URL when set (behind a proxy the request's
    own URL may be an internal one), else the request's."""
    return str(settings.public_base_url or request.base_url).rstrip("/")


@router.post(
    "/visits/{visit_id}/her-link",
    tags=["her page"],
    response_model=HerLinkPublic,
    summary="A link (and its QR code) to her own page for this visit's day; revokes the last",
    description="Each call issues a new link and revokes the one before (one live per visit); "
    "the token is shown here once and only its digest is kept, so the answer is not stored "
    "for Idempotency-Key replays. Valid on the visit's day only, until midnight clinic time.",
    responses=problem_responses(403, 404, 409),
)
async def create_her_link(
    request: Request,
    principal: DeskStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
    settings: SettingsDep,
    response: Response,
) -> HerLinkPublic:
    new, old = await her_links.create(
        repo.session, visit, actor=principal, now=clinic.now, tz=clinic.tz
    )
    mother = str(visit.mother_id)
    if old is not None:
        audit.record(
            "her_link.revoke",
            "visit",
            visit.id,
            mother_id=visit.mother_id,
            detail={"link_id": str(old.id), "mother_id": mother, "reason": "replaced"},
        )
    audit.record(
        "her_link.create",
        "visit",
        visit.id,
        mother_id=visit.mother_id,
        detail={"link_id": str(new.link.id), "mother_id": mother},
    )
    url = her_links.page_url(new.token)
    absolute = _base_url(request, settings) + url
    response.headers["Cache-Control"] = "no-store"
    return HerLinkPublic(
        url=url,
        absolute_url=absolute,
        expires_at=new.link.expires_at,
        qr_svg=her_links.qr_svg(absolute),
        link_id=new.link.id,
    )


@router.delete(
    "/visits/{visit_id}/her-link",
    tags=["her page"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke her page's link (her page then answers 404); none live is a 204 too",
    responses=problem_responses(403, 404),
)
async def revoke_her_link(
    principal: DeskStaff,
    visit: VisibleVisit,
    repo: VisitRepoDep,
    audit: AuditDep,
    clinic: ClinicDep,
) -> Response:
    old = await her_links.revoke(repo.session, visit, actor=principal, now=clinic.now)
    if old is not None:
        audit.record(
            "her_link.revoke",
            "visit",
            visit.id,
            mother_id=visit.mother_id,
            detail={"link_id": str(old.id), "mother_id": str(visit.mother_id)},
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class HerLinkUnknown(NotFound):
    slug = "her-link-unknown"
    title = "This page's link is not valid (today)"


@router.get(
    "/her/visit",
    tags=["her page"],
    response_model=HerVisit,
    summary="Her own page (no login, X-Her-Link): her tickets, where she is called, what next",
    description="No name, MRN, phone or id of hers. An unknown, revoked or expired link, or "
    "one of another day, is a 404 (too many unknown ones from a client: 429). Send "
    "If-None-Match with the last ETag: 304 when unchanged; with ?wait=N (at most 30) the "
    "request is held until one of her queues moves or a draw of hers falls due.",
    responses={**problem_responses(404, 429), 304: {"description": "Not modified"}},
)
async def read_her_visit(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
    catalogue: CatalogueDep,
    x_her_link: Annotated[str | None, Header(alias="X-Her-Link")] = None,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT, description="Seconds to hold")] = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    now = clock.now()
    client = request.client.host if request.client else "-"
    bucket = f"her-link:{client}"
    # A valid link is never refused: the families on the clinic's Wi-Fi share one address, and
    # an old slip opened there must not lock out every mother's page. Only misses count.
    found = await her_links.resolve(session, x_her_link or "", now=now, tz=settings.tz)
    if found is None:
        if await ratelimit.hits(session, bucket, HER_LINK_WINDOW, now) >= HER_LINK_MISSES:
            raise TooManyRequests(
                "Too many unknown links from here. Try again later.",
                headers={"Retry-After": str(ratelimit.retry_after(now, HER_LINK_WINDOW))},
            )
        # Counted in a transaction of its own: this request rolls back with its 404.
        async with request.app.state.session_factory() as counter:
            await ratelimit.hit(counter, bucket, HER_LINK_WINDOW, now)
            await counter.commit()
        raise HerLinkUnknown("This link is not valid: ask the front desk for a new one.")
    link, visit = found
    link_id, visit_id, mother_id = link.id, visit.id, visit.mother_id

    async def build(at: datetime) -> Built:
        again = await her_links.resolve(session, x_her_link or "", now=at, tz=settings.tz)
        if again is None:  # revoked or expired while she waited
            raise HerLinkUnknown("This link is not valid: ask the front desk for a new one.")
        return await her_visit(
            session, again[1], catalogue, ctx, now=at, expires_at=again[0].expires_at
        )

    answer = await long_poll(
        request,
        session,
        clock,
        build=build,
        prefix="her",
        wait=wait,
        if_none_match=if_none_match,
    )
    if answer.status_code == status.HTTP_200_OK:
        as_link = Principal(
            kind=PrincipalKind.CLIENT, id=link_id, name="her page link", role="her_link"
        )
        AuditTrail(session=session, request=request, principal=as_link, clock=clock).record(
            "her_link.read",
            "visit",
            visit_id,
            mother_id=mother_id,
            detail={"link_id": str(link_id), "mother_id": str(mother_id)},
        )
    answer.headers["Referrer-Policy"] = "no-referrer"
    # One URL for every mother, told apart by a header: no shared cache may keep an answer.
    answer.headers["Cache-Control"] = "private, no-store"
    answer.headers["Vary"] = "X-Her-Link"
    return answer
