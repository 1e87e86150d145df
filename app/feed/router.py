from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date
from typing import Annotated

from fastapi import Body, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.assignments.dependencies import PolicyDep
from app.assignments.models import AssignmentRole
from app.assignments.repository import AssignmentRepository
from app.assignments.service import answer_cover
from app.audit.service import AuditTrail
from app.auth.cache import TokenCache
from app.auth.dependencies import AuditDep, ButlerOnly, ClinicStaff, Idempotent
from app.auth.models import Role
from app.auth.repository import AuthRepository
from app.auth.service import authenticate_bearer
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import AppError, Conflict, NotAuthenticated, NotFound, problem_responses
from app.core.etag import none_match
from app.core.principal import Principal, PrincipalKind
from app.core.routing import SessionDep, make_router
from app.feed.changes import touch
from app.feed.fast_path import CACHE_CONTROL, MAX_WAIT, RenderedAnswer, etag_for, hold_for
from app.feed.models import Task
from app.feed.notifier import Notifier
from app.feed.repository import FeedRepository
from app.feed.schemas import (
    AssignmentItem,
    Assignments,
    CoverDecline,
    DoctorAdvice,
    FeedPage,
    QueuePlace,
    QueueStatus,
    TaskComplete,
    TaskCreate,
    TaskPublic,
)
from app.feed.stream import feed_stream, public_event
from app.mothers.dependencies import ReadableMother
from app.queues.catalogue import load_catalogue
from app.queues.domain import Catalogue
from app.queues.policy import Ctx, QueuePolicy
from app.queues.visit_queue import visit_queue
from app.reports.domain import PickupState
from app.reviews.models import ReportReview
from app.visits.domain import VisitStatus
from app.visits.models import Visit

SYSTEM = Principal(kind=PrincipalKind.CLIENT, id=uuid.UUID(int=0), name="butler view", role="-")

router = make_router(prefix="/v1", tags=["butler app"], responses=problem_responses(401, 422))

Wait = Annotated[
    int,
    Query(ge=0, le=MAX_WAIT, description="Hold the request up to this many seconds for a change."),
]
FEED_PAGE = 200
# Every cursor of the feed (next_cursor, an event's cursor, the SSE id, Last-Event-ID, ?after=)
# is one type: a string of decimal digits, the seq of the last event seen. A client that sends
# ?after=12 as a number sends the same characters: the old form is the new one.
CURSOR_PATTERN = r"^[0-9]{1,18}$"
Cursor = Annotated[
    str,
    Query(
        pattern=CURSOR_PATTERN,
        description="A cursor: next_cursor of the last page, an event's cursor or the "
        "assignments' cursor (0: from the start).",
        examples=["0", "42"],
    ),
]


class CursorExpired(AppError):
    status = 410
    slug = "cursor-expired"
    title = "The feed no longer goes back that far"


def _etag(version: int, day: date) -> str:
    return etag_for(version, day)


def _butler(principal: Principal) -> uuid.UUID:
    if principal.butler_id is None:
        raise NotFound("Your account is not linked to an active butler record.")
    return principal.butler_id


async def _wait_for_change(
    request: Request,
    session: SessionDep,
    butler_id: uuid.UUID,
    seen: int,
    wait: int,
    woken: asyncio.Event,
) -> int:
    """Long-poll: hold no database connection while waiting; return the version after."""
    await session.rollback()  # give the pooled connection back for the wait
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(woken.wait(), timeout=hold_for(wait))
    return await FeedRepository(session).version(butler_id)


def _not_modified(etag: str) -> Response:
    return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})


@router.get(
    "/me/assignments",
    response_model=Assignments,
    summary="What the calling butler must act on now, most urgent first (ETag, long-poll)",
    description=(
        "Send If-None-Match with the last ETag: 304 when nothing changed. With ?wait=N (at most "
        "30) the request is held until the answer changes or N seconds pass (then 304). A "
        "wait of 10 s or more may end up to a fifth early, so that phones that connected "
        "together do not all ask again together."
    ),
    responses={304: {"description": "Not modified"}, **problem_responses(403, 404)},
)
async def my_assignments(
    request: Request,
    principal: ButlerOnly,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    wait: Wait = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    butler_id = _butler(principal)
    today = local_today(clock, settings.tz)
    repo = FeedRepository(session)
    version: int | None = None
    if if_none_match is not None:
        # Subscribe before reading the version, so that no change slips between the two.
        notifier: Notifier = request.app.state.notifier
        woken = notifier.subscribe(butler_id) if wait > 0 else None
        version = notifier.known_version(butler_id) if woken is None else None
        if version is None:
            generation = notifier.generation(butler_id)
            version = await repo.version(butler_id)
            notifier.remember_version(butler_id, version, generation)
        if none_match(if_none_match, _etag(version, today)):
            if woken is None:
                return _not_modified(_etag(version, today))  # the cheap path: one query
            version = await _wait_for_change(request, session, butler_id, version, wait, woken)
            today = local_today(clock, settings.tz)
            if none_match(if_none_match, _etag(version, today)):
                return _not_modified(_etag(version, today))
    notifier = request.app.state.notifier
    if version is None:
        generation = notifier.generation(butler_id)
        version = await repo.version(butler_id)
        notifier.remember_version(butler_id, version, generation)
    built_for = version

    async def build() -> RenderedAnswer:
        answer = await _build_assignments(
            session, repo, butler_id, built_for, today, clock, settings
        )
        # Kept as sent: served again, by this route or the fast path, until version or day move.
        return RenderedAnswer(
            body=answer.model_dump_json(by_alias=True).encode(), mothers=_mothers_of(answer)
        )

    cached: RenderedAnswer = await notifier.answer_once(butler_id, (version, today), build)
    audit.record_many("mother.assignments", "mother", cached.mothers)
    return Response(
        cached.body,
        media_type="application/json",
        headers={"ETag": _etag(version, today), "Cache-Control": CACHE_CONTROL},
    )


def _mothers_of(answer: Assignments) -> tuple[uuid.UUID, ...]:
    return tuple(dict.fromkeys(i.mother_id for i in answer.items))


async def _build_assignments(
    session: SessionDep,
    repo: FeedRepository,
    butler_id: uuid.UUID,
    version: int,
    today: date,
    clock: ClockDep,
    settings: SettingsDep,
) -> Assignments:
    items: list[AssignmentItem] = []
    for alert, mother in await repo.open_alerts(butler_id, today):
        items.append(
            AssignmentItem(
                kind="alert",
                id=alert.id,
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                at=alert.due_at,
                title=f"Critical value: contact her now ({alert.reason})",
                status="open",
            )
        )
    catalogue = None
    for visit, mother, is_cover in await repo.visits_today(butler_id, today):
        queue = None
        if visit.status in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
            catalogue = catalogue or await load_catalogue(session)
            queue = await _queue_status(session, visit, catalogue, clock, settings)
        items.append(
            AssignmentItem(
                kind="visit",
                id=visit.id,
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                at=visit.scheduled_at,
                title="Accompany her visit",
                status=visit.status.value,
                role=AssignmentRole.COVER if is_cover else AssignmentRole.PRIMARY,
                queue=queue,
            )
        )
    reports = await repo.open_reports(butler_id, today)
    reviews = await repo.reviews_of_reports([r.id for r, _ in reports])
    for report, mother in reports:
        picking = report.pickup_state is PickupState.READY
        items.append(
            AssignmentItem(
                kind="report_pickup" if picking else "report_delivery",
                id=report.id,
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                at=report.ready_at if picking else report.picked_up_at,
                title=(report.display or report.code or "Lab report"),
                status=report.pickup_state.value,
                advice=_advice(reviews.get(report.id)),
            )
        )
    tasks = await repo.open_tasks(butler_id, today)
    advice_of = await repo.reviews_of_tasks([t.id for t, _ in tasks])
    for task, mother in tasks:
        items.append(
            AssignmentItem(
                kind="task",
                id=task.id,
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                at=task.due_at,
                title=task.title,
                status="open",
                advice=_advice(advice_of.get(task.id)),
            )
        )
    return Assignments(
        butler_id=butler_id, day=today, version=version, cursor=str(version), items=items
    )


def _advice(review: ReportReview | None) -> DoctorAdvice | None:
    if review is None:
        return None
    return DoctorAdvice(
        review_id=review.id,
        report_id=review.report_id,
        reviewer_name=review.reviewer_name,
        reviewed_at=review.reviewed_at,
        advice=review.advice_for_mother,
        of_earlier_version=review.superseded_at is not None,
    )


async def _queue_status(
    session: SessionDep,
    visit: Visit,
    catalogue: Catalogue,
    clock: ClockDep,
    settings: SettingsDep,
) -> QueueStatus:
    """Her places as of each queue's last change, so that the answer moves only with them."""
    ctx = Ctx(
        now=clock.now(),
        tz=settings.tz,
        actor=SYSTEM,
        policy=QueuePolicy.from_settings(settings),
    )
    q = await visit_queue(session, visit, catalogue, ctx)
    return QueueStatus(
        places=[
            QueuePlace(
                station=p.station.code,
                station_name=p.station.name,
                ticket=p.entry.ticket,
                state=p.entry.state,
                room=p.entry.room,
                position=p.position,
                estimated_wait_minutes=p.wait_minutes,
                not_before=p.entry.available_at
                if p.entry.available_at > (p.entry.entered_at)
                else None,
            )
            for p in q.places
        ],
        next_station=q.suggested.station.code if q.suggested else None,
        steps_done=q.done_steps,
        steps_total=q.total_steps,
    )


@router.get(
    "/me/events",
    response_model=FeedPage,
    summary="Every change to the calling butler's assignments after a cursor, in order",
    description=(
        "No gaps, no duplicates. A cursor older than the retention window gets 410 Gone: read "
        "/v1/me/assignments again and continue from its version."
    ),
    responses=problem_responses(403, 404, 410),
)
async def my_events(
    request: Request,
    principal: ButlerOnly,
    session: SessionDep,
    after: Cursor = "0",
    wait: Wait = 0,
) -> FeedPage:
    butler_id = _butler(principal)
    after_seq = int(after)
    repo = FeedRepository(session)
    current = await _check_cursor(repo, butler_id, after_seq)
    events = await repo.events_after(butler_id, after_seq, FEED_PAGE)
    if events and events[0].seq != after_seq + 1:  # purged from under us: never a silent gap
        raise CursorExpired(
            "Events after that cursor were discarded. Read /v1/me/assignments again.",
            extra={"current_version": current, "current_cursor": str(current)},
        )
    if not events and wait > 0:
        woken = request.app.state.notifier.subscribe(butler_id)
        if await repo.version(butler_id) == current:
            await _wait_for_change(request, session, butler_id, current, wait, woken)
        events = await repo.events_after(butler_id, after_seq, FEED_PAGE)
    return FeedPage(
        events=[public_event(e) for e in events],
        next_cursor=str(events[-1].seq if events else after_seq),
    )


async def _check_cursor(repo: FeedRepository, butler_id: uuid.UUID, after: int) -> int:
    """The feed's current version, once ``after`` is known to be neither purged nor ahead."""
    oldest = await repo.oldest_seq(butler_id)
    current = await repo.version(butler_id)
    if (oldest is not None and after < oldest - 1) or (oldest is None and after < current):
        raise CursorExpired(
            "Events after that cursor were discarded. Read /v1/me/assignments, then follow "
            f"the feed from {current}.",
            extra={"current_version": current, "current_cursor": str(current)},
        )
    if after > current:
        raise NotFound("That cursor is ahead of the feed.")
    return current


@router.get(
    "/me/events/stream",
    response_class=StreamingResponse,
    summary="The calling butler's change feed as Server-Sent Events",
    description=(
        "The events of GET /v1/me/events, pushed as they commit (`event: feed`, `id:` the "
        "event's seq), with a comment line every 15 s while nothing happens. Resume with "
        "`Last-Event-ID` (or `?after=`). The stream ends after FEED_STREAM_SECONDS, or when "
        "the token stops being valid; reconnect with the last id. `event: expired` means the "
        "events after your cursor were discarded meanwhile: read /v1/me/assignments again."
    ),
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The stream"},
        **problem_responses(403, 404, 410),
    },
)
async def my_event_stream(
    request: Request,
    principal: ButlerOnly,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    after: Cursor = "0",
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=CURSOR_PATTERN,
            description="The id of the last event received (a cursor); the stream goes on "
            "after it. Wins over ?after=.",
        ),
    ] = None,
) -> StreamingResponse:
    butler_id = _butler(principal)
    cursor = int(last_event_id if last_event_id is not None else after)
    await _check_cursor(FeedRepository(session), butler_id, cursor)
    state = request.app.state
    secret = request.headers.get("authorization", "").partition(" ")[2].strip()
    cache: TokenCache = state.token_cache
    epoch, until = cache.epoch, principal.token_expires_at

    async def still_allowed() -> bool:
        """Nothing revoked since the last check and the token not expired: no query. Else the
        token is verified again (a revocation of anyone bumps the epoch: rare)."""
        nonlocal epoch, until
        if epoch == cache.epoch and until is not None and clock.now() < until:
            return True
        epoch = cache.epoch  # read before the database, as the cache does
        async with state.session_factory() as check:
            try:
                again = await authenticate_bearer(
                    AuthRepository(check), secret=secret, now=clock.now(), cache=cache
                )
            except NotAuthenticated:
                return False
        until = again.token_expires_at
        return again.butler_id == butler_id and again.role == Role.BUTLER.value

    return StreamingResponse(
        feed_stream(
            session_factory=state.session_factory,
            notifier=state.notifier,
            butler_id=butler_id,
            after=cursor,
            still_allowed=still_allowed,
            lifetime=settings.feed_stream_seconds,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _task_view(task: Task) -> TaskPublic:
    return TaskPublic(
        id=task.id,
        mother_id=task.mother_id,
        butler_id=task.butler_id,
        title=task.title,
        due_at=task.due_at,
        created_by_name=task.created_by_name,
        created_at=task.created_at,
        completed_at=task.completed_at,
        completion_note=task.completion_note,
    )


@router.post(
    "/mothers/{mother_id}/tasks",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    summary="Give her butler a task (help with admission, a follow-up call …) with a due time",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404),
)
async def create_task(
    body: TaskCreate,
    principal: ClinicStaff,
    mother: ReadableMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
) -> TaskPublic:
    now = clock.now()
    task = Task(
        mother_id=mother.id,
        butler_id=mother.primary_butler_id,
        title=body.title,
        due_at=body.due_at,
        created_by_name=principal.name,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    if task.butler_id is not None:
        await touch(
            session, task.butler_id, kind="task.created", now=now, ref_type="task", ref_id=task.id
        )
    audit.record("mother.task", "mother", mother.id, detail={"task_id": str(task.id)})
    return _task_view(task)


@router.post(
    "/me/tasks/{task_id}/complete",
    response_model=TaskPublic,
    summary="Mark one of my tasks done (a repeat changes nothing)",
    description="A repeat with the same note (or none, when none was given) answers 200 with "
    "the task as it stands; with another note, or without the note given first, a 409: the "
    "first completion's note is kept.",
    responses=problem_responses(403, 404, 409),
)
async def complete_task(
    task_id: uuid.UUID,
    body: Annotated[TaskComplete, Body(default_factory=TaskComplete)],  # no body: no note
    principal: ButlerOnly,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
) -> TaskPublic:
    butler_id = _butler(principal)
    task = await session.get(Task, task_id, with_for_update=True)
    if task is None or task.butler_id != butler_id:
        if task is not None:  # another butler's task: refused, and the refusal is kept
            audit.record_denied(
                "task.complete", "task", task.id, reason="not assigned", mother_id=task.mother_id
            )
        raise NotFound("No task of yours with that id.")
    note = body.note or None
    repeat = task.completed_at is not None
    if task.completed_at is not None and note != task.completion_note:
        # As a repeated pick-up or delivery (73ee594): a retry never changes, nor silently
        # drops, what the first completion recorded.
        had = "another note" if task.completion_note is not None else "no note"
        raise Conflict(
            f"The task was completed already, with {had}; a second call does not change it.",
            extra={"completed_at": task.completed_at.isoformat()},
        )
    if task.completed_at is None:
        task.completed_at, task.completion_note = clock.now(), note
        await touch(
            session,
            butler_id,
            kind="task.completed",
            now=clock.now(),
            ref_type="task",
            ref_id=task.id,
        )
    # That a note was given, never its text (what she said is hers: the task keeps it).
    audit.record(
        "task.complete",
        "task",
        task.id,
        mother_id=task.mother_id,
        detail={"note_given": note is not None, "repeat": repeat},
    )
    return _task_view(task)


@router.post(
    "/me/covers/{visit_id}/accept",
    summary="Accept a cover for a visit",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def accept_cover(
    visit_id: uuid.UUID,
    principal: ButlerOnly,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    policy: PolicyDep,
) -> Response:
    await _answer_cover(
        visit_id, principal, session, audit, clock, policy, accept=True, reason=None
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/covers/{visit_id}/decline",
    summary="Decline a cover: the rules choose another butler, or the front desk is told",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def decline_cover(
    visit_id: uuid.UUID,
    body: CoverDecline,
    principal: ButlerOnly,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    policy: PolicyDep,
) -> Response:
    await _answer_cover(
        visit_id, principal, session, audit, clock, policy, accept=False, reason=body.reason
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _answer_cover(
    visit_id: uuid.UUID,
    principal: Principal,
    session: SessionDep,
    audit: AuditTrail,
    clock: ClockDep,
    policy: PolicyDep,
    *,
    accept: bool,
    reason: str | None,
) -> None:
    visit = await session.get(Visit, visit_id, with_for_update=True)
    if visit is None:
        raise NotFound("You are not the cover for that visit.")
    await answer_cover(
        AssignmentRepository(session),
        visit=visit,
        butler_id=_butler(principal),
        accept=accept,
        reason=reason,
        actor=principal,
        now=clock.now(),
        policy=policy,
    )
    # A decline's reason is free text: that one was given, not what it says.
    audit.record(
        "visit.cover_accept" if accept else "visit.cover_decline",
        "visit",
        visit.id,
        mother_id=visit.mother_id,
        detail={"reason_given": reason is not None},
    )
