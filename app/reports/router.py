from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments.dependencies import may_see_mother
from app.assignments.repository import AssignmentRepository, visible_mother_ids
from app.auth.dependencies import (
    AdminOnly,
    AdminOrDoctor,
    AuditDep,
    ClinicStaffOrButler,
    CurrentPrincipal,
    DeskOrButler,
    DeskStaff,
    LabSystemOnly,
    require_roles,
)
from app.auth.models import ApiClient, Role
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import (
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    problem_responses,
)
from app.core.pagination import PageDep, paginate
from app.core.principal import Principal
from app.core.routing import SessionDep, make_router
from app.core.secretbox import SecretBox, SecretUnreadable
from app.core.settings import Settings
from app.reports import alerts, service
from app.reports.domain import PickupState
from app.reports.intake import (
    Answer,
    IntakeContext,
    Taker,
    content_hash,
    kept_headers,
    store,
)
from app.reports.models import CriticalAlert, InboundMessage, LabReport
from app.reports.repository import ReportRepository
from app.reports.schemas import (
    AcknowledgeAlert,
    AlertIndicators,
    AlertList,
    AlertPublic,
    Attach,
    AttachmentPublic,
    CandidateMother,
    Deliver,
    Detach,
    HeldResult,
    HeldResults,
    InboundMessageList,
    InboundMessagePublic,
    MotherContacted,
    ObservationPublic,
    PatientSent,
    PickUp,
    ReportDetail,
    ReportEventPublic,
    ReportPage,
    ReportSummary,
)
from app.reports.webhooks import SignatureInvalid, verify

logger = logging.getLogger("app.reports")


def _open_secrets(request: Request, client: ApiClient, now: datetime) -> list[str]:
    """The client's live signing secrets, opened. One that no configured key opens is left
    out and said in the log (without its value); when that is the newest, nothing can be
    checked, and the lab is told to send again later instead of being told it signed wrong."""
    box: SecretBox = request.app.state.secret_box
    opened = []
    for n, stored in enumerate(client.live_signing_secrets(now)):
        try:
            opened.append(box.open(stored, owner=client.id))
        except SecretUnreadable as exc:
            logger.error(
                "a signing secret cannot be opened",
                extra={
                    "event": "signing_secret_unreadable",
                    "client": str(client.id),
                    "why": str(exc),
                },
            )
            if n == 0:
                raise ServiceUnavailable(
                    "Signatures cannot be checked now (the server lacks a key); send the "
                    "message again later.",
                    headers={"Retry-After": "60"},
                ) from exc
    return opened


router = make_router(prefix="/v1", tags=["reports"], responses=problem_responses(401, 422))


async def get_report_repository(session: SessionDep) -> ReportRepository:
    return ReportRepository(session)


ReportRepoDep = Annotated[ReportRepository, Depends(get_report_repository)]


def _context(settings: Settings) -> IntakeContext:
    return IntakeContext.from_settings(settings)  # with the per-message caps


def _respond(answer: Answer, *, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type=answer.media_type,
        headers=headers,
    )


async def _receive(
    request: Request,
    *,
    channel: str,
    principal: Principal,
    session: AsyncSession,
    clock: ClockDep,
    settings: Settings,
) -> Response:
    raw = await request.body()
    now = clock.now()
    factory = request.app.state.session_factory
    await session.rollback()  # give the request's connection back while storing (one at a time)
    headers = kept_headers(request.headers)

    async def keep_refused(outcome: str) -> None:
        """A delivery refused before its signature was trusted is kept, for the engineer."""
        await store(
            factory,
            channel=channel,
            sender_id=principal.id,
            sender_name=principal.name,
            body=raw,
            headers=headers,
            message_key=None,
            webhook_id=None,
            now=now,
            state="rejected",
            outcome=outcome,
        )

    async with factory() as db:
        client = await db.get(ApiClient, principal.id)
    try:
        secrets = _open_secrets(request, client, now) if client else []
    except ServiceUnavailable:
        await keep_refused("not checked: no configured key opens the signing secret; resend")
        raise
    try:
        verify(
            secrets=secrets,
            msg_id=request.headers.get("webhook-id"),
            timestamp=request.headers.get("webhook-timestamp"),
            signatures=request.headers.get("webhook-signature"),
            body=raw,
            now=now,
        )
    except SignatureInvalid as exc:
        await keep_refused(f"signature refused: {exc}")
        raise NotAuthenticated(f"Webhook signature refused: {exc}.") from exc
    taken = await taker(request, settings).take(
        session,
        channel=channel,
        raw=raw,
        sender_id=principal.id,
        sender_name=principal.name,
        headers=headers,
        webhook_id=request.headers.get("webhook-id"),
        now=now,
    )
    return _respond(taken.answer, replayed=taken.replayed)


def taker(request: Request, settings: Settings) -> Taker:
    """The app's one taker of lab messages (it knows which it is processing right now)."""
    current: Taker | None = getattr(request.app.state, "lab_taker", None)
    if current is None:
        current = request.app.state.lab_taker = Taker(
            request.app.state.session_factory, _context(settings)
        )
    return current


HL7_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/hl7-v2": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/fhir+json": {"schema": {"type": "object"}}},
    }
}
SIGNED = (
    "Authenticate with X-API-Key and sign with Standard Webhooks headers (webhook-id, "
    "webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>). "
    "The same webhook-id, or the same message id from the same sender, returns the first answer."
)


@router.post(
    "/integrations/lab/hl7v2",
    tags=["lab integration"],
    summary="Receive one HL7 v2 ORU^R01 (ER7); answers an ACK (AA, AE or AR)",
    description=SIGNED,
    response_class=Response,
    openapi_extra=HL7_BODY,
    responses={
        200: {"content": {"application/hl7-v2": {}}, "description": "The ACK"},
        **problem_responses(403, 413, 503),
    },
)
async def receive_hl7(
    request: Request,
    principal: LabSystemOnly,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    return await _receive(
        request,
        channel="hl7v2",
        principal=principal,
        session=session,
        clock=clock,
        settings=settings,
    )


@router.post(
    "/integrations/lab/fhir",
    tags=["lab integration"],
    summary="Receive a FHIR R4 DiagnosticReport, or a Bundle of them; answers an OperationOutcome",
    description=SIGNED,
    response_class=Response,
    openapi_extra=FHIR_BODY,
    responses={
        200: {"content": {"application/fhir+json": {}}, "description": "OperationOutcome"},
        **problem_responses(403, 413, 503),
    },
)
async def receive_fhir(
    request: Request,
    principal: LabSystemOnly,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    return await _receive(
        request,
        channel="fhir",
        principal=principal,
        session=session,
        clock=clock,
        settings=settings,
    )


@router.get(
    "/integrations/messages",
    tags=["lab integration"],
    response_model=InboundMessageList,
    summary="Stored inbound lab messages, newest first (admins)",
    responses=problem_responses(403),
)
async def list_messages(
    _admin: AdminOnly,
    repo: ReportRepoDep,
    page: PageDep,
    state: Annotated[str | None, Query(pattern="^(received|processed|rejected|failed)$")] = None,
) -> InboundMessageList:
    rows = await repo.messages(after=page.after, limit=page.limit + 1, state=state)
    rows, info = paginate(rows, page, key=lambda r: r.id)
    return InboundMessageList(
        items=[InboundMessagePublic.model_validate(m) for m in rows],
        page=info,
    )


@router.post(
    "/integrations/messages/{message_id}/replay",
    tags=["lab integration"],
    response_model=InboundMessagePublic,
    summary="Process a stored message again (a new message record points to the original)",
    responses=problem_responses(403, 404),
)
async def replay_message(
    message_id: uuid.UUID,
    request: Request,
    principal: AdminOnly,
    session: SessionDep,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> InboundMessagePublic:
    original = await repo.message(message_id)
    if original is None or original.sender_id is None:
        raise NotFound("No stored message with that id.")
    if (original.outcome or "").startswith("signature refused"):
        raise Conflict(
            "This delivery failed its signature check; it cannot be processed. Ask the sender "
            "to send it again, signed."
        )
    channel, sender_id, sender_name = original.channel, original.sender_id, original.sender_name
    raw, headers, key, original_id = (
        original.body,
        dict(original.headers),
        original.message_key,
        original.id,
    )
    await session.rollback()  # one pooled connection at a time
    now = clock.now()
    copy_id = await store(
        request.app.state.session_factory,
        channel=channel,
        sender_id=sender_id,
        sender_name=sender_name,
        body=raw,
        headers=headers,
        message_key=key,
        webhook_id=None,
        now=now,
        replay_of=original_id,
        content_hash=content_hash(channel, raw),
    )
    assert copy_id is not None
    await taker(request, settings).process_stored(
        session,
        channel=channel,
        raw=raw,
        sender_id=sender_id,
        message_id=copy_id,
        now=now,
    )
    audit.record(
        "lab_message.replay", "inbound_message", original_id, detail={"copy": str(copy_id)}
    )
    replayed = await session.get(InboundMessage, copy_id)  # recorded by now, either way
    assert replayed is not None
    return InboundMessagePublic.model_validate(replayed)


# Reports -------------------------------------------------------------------------------------


async def _visible_report(
    report_id: uuid.UUID,
    request: Request,
    principal: ClinicStaffOrButler,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LabReport:
    report = await repo.report(report_id, for_update=request.method != "GET")
    if report is None:
        raise NotFound("No report with that id is visible to you.")
    if principal.role == Role.BUTLER:
        today = local_today(clock, settings.tz)
        allowed = report.mother_id is not None and await may_see_mother(
            AssignmentRepository(repo.session), principal, report.mother_id, today
        )
        if not allowed:
            audit.record_denied(
                "report.read",
                "report",
                report.id,
                reason="not assigned",
                mother_id=report.mother_id,
            )
            raise NotFound("No report with that id is visible to you.")
    return report


VisibleReport = Annotated[LabReport, Depends(_visible_report)]


async def _detail(repo: ReportRepository, report: LabReport) -> ReportDetail:
    return ReportDetail(
        **ReportSummary.model_validate(report).model_dump(),
        patient_mrn=report.patient_mrn,
        patient_name=report.patient_name,
        patient_birth_date=report.patient_birth_date,
        patient_sex=report.patient_sex,
        filler_order=report.filler_order,
        effective_at=report.effective_at,
        conclusion=report.conclusion,
        comments=report.comments,
        attachments=[AttachmentPublic.model_validate(a) for a in await repo.attachments(report.id)],
        picked_up_at=report.picked_up_at,
        pickup_place=report.pickup_place,
        delivered_at=report.delivered_at,
        delivery_note=report.delivery_note,
        observations=[
            ObservationPublic.model_validate(o) for o in await repo.observations(report.id)
        ],
        events=[ReportEventPublic.model_validate(e) for e in await repo.events(report.id)],
    )


@router.get(
    "/reports",
    response_model=ReportPage,
    summary="Reports of a mother (or of all your mothers, for a butler)",
    responses=problem_responses(403),
)
async def list_reports(
    principal: ClinicStaffOrButler,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    page: PageDep,
    mother_id: Annotated[uuid.UUID | None, Query()] = None,
) -> ReportPage:
    mother_ids: list[uuid.UUID] | None = [mother_id] if mother_id else None
    if principal.role == Role.BUTLER:
        today = local_today(clock, settings.tz)
        if principal.butler_id is None:
            mother_ids = []
        else:
            visible = list(
                await repo.session.scalars(visible_mother_ids(principal.butler_id, today))
            )
            mother_ids = [m for m in visible if mother_id is None or m == mother_id]
    elif mother_ids is None:
        mother_ids = None
    rows = await repo.reports(mother_ids=mother_ids, after=page.after, limit=page.limit + 1)
    rows, info = paginate(rows, page, key=lambda r: r.id)
    audit.record_many(
        "report.list", "report", [r.id for r in rows], mothers={r.id: r.mother_id for r in rows}
    )
    return ReportPage(
        items=[ReportSummary.model_validate(r) for r in rows],
        page=info,
    )


@router.get(
    "/reconciliation",
    response_model=HeldResults,
    summary="Held results (no order, no mother, or another patient): critical first, with the "
    "identifiers the message carries and the mothers and open orders it may belong to",
    responses=problem_responses(403),
)
async def reconciliation(
    _desk: DeskStaff,
    repo: ReportRepoDep,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HeldResults:
    rows = await repo.held(limit=limit)
    counts = await repo.observation_counts([r.id for r in rows])
    items = []
    for report in rows:
        found = await service.candidates(repo, report)
        items.append(
            HeldResult(
                report=ReportSummary.model_validate(report),
                patient=PatientSent(
                    mrn=report.patient_mrn,
                    name=report.patient_name,
                    birth_date=report.patient_birth_date,
                    sex=report.patient_sex,
                ),
                filler_order=report.filler_order,
                observation_count=counts.get(report.id, 0),
                candidates=[CandidateMother.model_validate(c) for c in found],
            )
        )
    audit.record_many(
        "report.reconciliation",
        "report",
        [r.id for r in rows],
        mothers={r.id: r.mother_id for r in rows},
    )
    audit.record_many(
        "mother.candidate",
        "mother",
        list(dict.fromkeys(c.mother_id for i in items for c in i.candidates)),
    )
    return HeldResults(items=items)


@router.get(
    "/reports/{report_id}",
    response_model=ReportDetail,
    summary="A report with its observations and its trail",
    responses=problem_responses(403, 404),
)
async def read_report(report: VisibleReport, repo: ReportRepoDep, audit: AuditDep) -> ReportDetail:
    audit.record(
        "report.read",
        "report",
        report.id,
        mother_id=report.mother_id,
        detail={"mother_id": str(report.mother_id) if report.mother_id else None},
    )
    return await _detail(repo, report)


# The states in which a pick-up, and a delivery, has been done.
_DONE = {
    PickupState.PICKED_UP: (PickupState.PICKED_UP, PickupState.DELIVERED),
    PickupState.DELIVERED: (PickupState.DELIVERED,),
}


def _repeated(report: LabReport, step: PickupState, *, recorded: str | None, sent: str) -> bool:
    """True when this pick-up or delivery was done already with the same place or note: a
    retry from the butler's phone, answered 200 with the report as it stands. Done already
    with another place or note is a 409 that says so: a retry never overwrites what was
    recorded (the first delivery note is what she was told)."""
    if report.pickup_state not in _DONE[step]:
        return False  # not done yet: the service checks the step (409 from the wrong state)
    if recorded is not None and recorded != sent:
        done, field = (
            ("picked up", "pickup_place")
            if step is PickupState.PICKED_UP
            else ("delivered", "delivery_note")
        )
        raise service.IllegalPickup(
            f"The report was {done} already, with another {field.replace('_', ' ')} "
            f"(its {field}); a second call does not change it.",
            extra={"current_state": report.pickup_state.value, "requested_state": step.value},
        )
    return True


@router.post(
    "/reports/{report_id}/pick-up",
    response_model=ReportDetail,
    summary="The butler has collected the report (where)",
    responses=problem_responses(403, 404, 409),
)
async def pick_up(
    body: PickUp,
    principal: DeskOrButler,
    report: VisibleReport,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReportDetail:
    if _repeated(report, PickupState.PICKED_UP, recorded=report.pickup_place, sent=body.place):
        # The phone's retry of a pick-up that went through: the same answer, nothing changed.
        audit.record(
            "report.pick_up",
            "report",
            report.id,
            mother_id=report.mother_id,
            detail={"repeated": True},
        )
        return await _detail(repo, report)
    await service.pick_up(
        repo,
        report=report,
        place=body.place,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
    )
    audit.record("report.pick_up", "report", report.id, mother_id=report.mother_id)
    return await _detail(repo, report)


@router.post(
    "/reports/{report_id}/deliver",
    response_model=ReportDetail,
    summary="The butler has explained the results to the mother (with a feedback note)",
    responses=problem_responses(403, 404, 409),
)
async def deliver(
    body: Deliver,
    principal: DeskOrButler,
    report: VisibleReport,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReportDetail:
    if _repeated(report, PickupState.DELIVERED, recorded=report.delivery_note, sent=body.note):
        audit.record(
            "report.deliver",
            "report",
            report.id,
            mother_id=report.mother_id,
            detail={"repeated": True},
        )
        return await _detail(repo, report)
    await service.deliver(
        repo,
        report=report,
        note=body.note,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
    )
    audit.record("report.deliver", "report", report.id, mother_id=report.mother_id)
    return await _detail(repo, report)


@router.post(
    "/reports/{report_id}/attach",
    response_model=ReportDetail,
    summary="Attach an unmatched result to an exam order by hand (front desk), with a reason",
    responses=problem_responses(403, 404, 409),
)
async def attach(
    body: Attach,
    principal: DeskStaff,
    report: VisibleReport,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReportDetail:
    context = _context(settings)
    await service.attach(
        repo,
        report=report,
        exam_order_id=body.exam_order_id,
        reason=body.reason,
        override=body.override,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        thresholds=context.thresholds,
        ack_within=context.ack_within,
    )
    audit.record(
        "report.attach",
        "report",
        report.id,
        mother_id=report.mother_id,
        detail={
            "mother_id": str(report.mother_id),
            "override": body.override,
            **({"reason": body.reason} if body.override else {}),
        },
    )
    return await _detail(repo, report)


@router.post(
    "/reports/{report_id}/detach",
    response_model=ReportDetail,
    summary="Put a wrongly attached report back in reconciliation, with a reason; her butler "
    "and the desk are told",
    responses=problem_responses(403, 404, 409),
)
async def detach(
    body: Detach,
    principal: DeskStaff,
    report: VisibleReport,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReportDetail:
    mother_id = report.mother_id
    await service.detach(
        repo,
        report=report,
        reason=body.reason,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        ack_within=timedelta(minutes=settings.critical_ack_minutes),
    )
    audit.record(
        "report.detach",
        "report",
        report.id,
        mother_id=mother_id,
        # The reason is kept on the report's record; the trail holds no free text.
        detail={"mother_id": str(mother_id), "reason_given": bool(body.reason)},
    )
    return await _detail(repo, report)


@router.get(
    "/reports/{report_id}/attachments/{attachment_id}",
    summary="The document that came with a result (an ED value: a PDF, an image)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The bytes"},
        **problem_responses(403, 404),
    },
)
async def read_attachment(
    attachment_id: uuid.UUID,
    report: VisibleReport,
    repo: ReportRepoDep,
    audit: AuditDep,
) -> Response:
    attachment = await repo.attachment(report.id, attachment_id)
    if attachment is None or attachment.data is None:
        raise NotFound(
            "No document with that id is stored with this report"
            + (f"; the lab keeps it at {attachment.pointer}" if attachment else "")
            + "."
        )
    audit.record(
        "report.attachment.read",
        "report",
        report.id,
        mother_id=report.mother_id,
        detail={"attachment_id": str(attachment.id), "mother_id": str(report.mother_id)},
    )
    media = attachment.media_type if attachment.media_type in SERVED_AS_IS else None
    return Response(
        attachment.data,
        media_type=media or "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="report-{report.id}-{attachment.id}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


# Documents are served with their own type only when it cannot run in a browser.
SERVED_AS_IS = frozenset(
    {"application/pdf", "image/jpeg", "image/png", "image/gif", "image/tiff", "text/plain"}
)


# Critical-value alerts -----------------------------------------------------------------------

_doctor_role = require_roles(Role.DOCTOR)


async def closing_doctor(
    request: Request, principal: CurrentPrincipal, clock: ClockDep
) -> Principal:
    """Only a doctor closes a critical value; anyone else is told what they may record."""
    try:
        return await _doctor_role(request, principal, clock)
    except Forbidden as exc:
        raise service.ClosureNeedsDoctor(
            "A critical value is closed by a doctor, who reads the value back and says what "
            "was done. A butler records that she reached the mother: POST "
            f"/v1/alerts/{request.path_params.get('alert_id', '{alert_id}')}/mother-contacted; "
            "it does not stop the escalation.",
            extra={"required_roles": ["doctor"]},
        ) from exc


ClosingDoctor = Annotated[Principal, Depends(closing_doctor)]


async def _visible_alert(
    repo: ReportRepository, principal: Principal, alert_id: uuid.UUID, today: date
) -> CriticalAlert:
    """The alert, if the caller may see it: a butler only her own mothers' (404 otherwise)."""
    alert = await repo.alert(alert_id)
    visible = alert is not None and (
        principal.role != Role.BUTLER
        or (
            alert.mother_id is not None
            and await may_see_mother(
                AssignmentRepository(repo.session), principal, alert.mother_id, today
            )
        )
    )
    if alert is None or not visible:
        raise NotFound("No alert with that id is visible to you.")
    return alert


@router.get(
    "/alerts",
    tags=["alerts"],
    response_model=AlertList,
    summary="The critical-value register (open alerts by default); a butler sees her own",
    description=(
        "Each alert with when it was raised, its tier, who contacted the mother and when, "
        "the doctor who closed it with the read-back and the action, or why it was voided. "
        "?open=false lists every alert; raised_from / raised_before bound the period."
    ),
    responses=problem_responses(403),
)
async def list_alerts(
    principal: ClinicStaffOrButler,
    repo: ReportRepoDep,
    clock: ClockDep,
    settings: SettingsDep,
    audit: AuditDep,
    open_only: Annotated[bool, Query(alias="open")] = True,
    raised_from: Annotated[datetime | None, Query()] = None,
    raised_before: Annotated[datetime | None, Query()] = None,
) -> AlertList:
    mother_ids: list[uuid.UUID] | None = None
    if principal.role == Role.BUTLER:  # the alerts of the mothers she looks after today
        if principal.butler_id is None:
            return AlertList(items=[])
        today = local_today(clock, settings.tz)
        mother_ids = list(
            await repo.session.scalars(visible_mother_ids(principal.butler_id, today))
        )
    rows = await repo.alerts(
        open_only=open_only,
        mother_ids=mother_ids,
        raised_from=raised_from,
        raised_before=raised_before,
    )
    audit.record_many(
        "alert.list", "alert", [a.id for a in rows], mothers={a.id: a.mother_id for a in rows}
    )
    return AlertList(items=[AlertPublic.of(a) for a in rows])


@router.get(
    "/alerts/indicators",
    tags=["alerts"],
    response_model=AlertIndicators,
    summary="The register's indicators: open, unacknowledged rate, median and P90 to closure",
    responses=problem_responses(403),
)
async def alert_indicators(
    _reader: AdminOrDoctor,
    repo: ReportRepoDep,
    clock: ClockDep,
    settings: SettingsDep,
    raised_from: Annotated[datetime | None, Query()] = None,
    raised_before: Annotated[datetime | None, Query()] = None,
) -> AlertIndicators:
    rows = await repo.alerts(
        open_only=False, mother_ids=None, raised_from=raised_from, raised_before=raised_before
    )
    target = timedelta(minutes=settings.critical_ack_minutes)
    found = alerts.indicators(
        [
            alerts.AlertFacts(
                raised_at=a.raised_at,
                acknowledged_at=a.acknowledged_at,
                voided_at=a.voided_at,
                tier=a.level,
            )
            for a in rows
        ],
        now=clock.now(),
        target=target,
    )
    return AlertIndicators(
        raised_from=raised_from,
        raised_before=raised_before,
        total=found.total,
        open=found.open,
        acknowledged=found.acknowledged,
        voided=found.voided,
        escalated=found.escalated,
        open_past_target=found.open_past_target,
        unacknowledged_rate=found.unacknowledged_rate,
        target_minutes=settings.critical_ack_minutes,
        acknowledged_within_target=found.acknowledged_within_target,
        median_minutes_to_acknowledge=found.median_minutes_to_acknowledge,
        p90_minutes_to_acknowledge=found.p90_minutes_to_acknowledge,
    )


@router.post(
    "/alerts/{alert_id}/acknowledge",
    tags=["alerts"],
    response_model=AlertPublic,
    summary="A doctor closes a critical value, with the read-back and the action taken",
    description=(
        "Only a doctor: a butler or the desk gets 403 (a butler records "
        "/mother-contacted instead). The closure stops the escalation and takes every "
        "tier's page off the lists. A retry (the same doctor, read-back and action) answers "
        "the closure as it stands; another read-back or action on a closed alert is 409 (it "
        "is not recorded, nor silently dropped); a voided alert is 409."
    ),
    responses=problem_responses(403, 404, 409),
)
async def acknowledge(
    alert_id: uuid.UUID,
    body: AcknowledgeAlert,
    principal: ClosingDoctor,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> AlertPublic:
    today = local_today(clock, settings.tz)
    await _visible_alert(repo, principal, alert_id, today)
    alert = await service.acknowledge(
        repo,
        alert_id=alert_id,
        actor=principal,
        read_back=body.read_back,
        action_taken=body.action_taken,
        now=clock.now(),
        today=today,
    )
    audit.record("alert.acknowledge", "alert", alert.id, mother_id=alert.mother_id)
    return AlertPublic.of(alert)


@router.post(
    "/alerts/{alert_id}/mother-contacted",
    tags=["alerts"],
    response_model=AlertPublic,
    summary="Record that the mother was reached about a critical value (does not close it)",
    description=(
        "Her butler's part: who reached her, when, and a note. It is on the register; "
        "the alert stays open and escalates until a doctor closes it. A second call "
        "changes nothing; an alert with no mother matched yet or voided is 409."
    ),
    responses=problem_responses(403, 404, 409),
)
async def mother_contacted(
    alert_id: uuid.UUID,
    body: MotherContacted,
    principal: ClinicStaffOrButler,
    repo: ReportRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> AlertPublic:
    today = local_today(clock, settings.tz)
    await _visible_alert(repo, principal, alert_id, today)
    alert = await service.record_mother_contacted(
        repo, alert_id=alert_id, actor=principal, note=body.note, now=clock.now(), today=today
    )
    audit.record("alert.mother_contacted", "alert", alert.id, mother_id=alert.mother_id)
    return AlertPublic.of(alert)


@router.post(
    "/alerts/escalate",
    tags=["alerts"],
    response_model=AlertList,
    summary="Move overdue alerts one tier up (also run by the worker)",
    responses=problem_responses(403),
)
async def escalate(
    _admin: AdminOnly,
    repo: ReportRepoDep,
    clock: ClockDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> AlertList:
    escalated = await service.escalate_overdue(
        repo, now=clock.now(), plan=service.escalation_plan(settings)
    )
    audit.record_many(
        "alert.escalate",
        "alert",
        [a.id for a in escalated],
        mothers={a.id: a.mother_id for a in escalated},
    )
    return AlertList(items=[AlertPublic.of(a) for a in escalated])
