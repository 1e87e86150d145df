from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.auth.dependencies import AdminOnly, AuditDep, DeskOrButler, Idempotent
from app.core import ratelimit
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import problem_responses
from app.core.pagination import PageDep, PageInfo, paginate
from app.core.routing import SessionDep, make_router
from app.mothers.dependencies import ReadableMother
from app.notifications.models import OutboxMessage
from app.notifications.outbox import enqueue

router = make_router(
    prefix="/v1", tags=["notifications"], responses=problem_responses(401, 403, 422)
)


class NotificationPublic(BaseModel):
    """Delivery status only: ids, topic, channel, state. Never a text or a phone number.

    ``coalesced``: a report-ready text sent as one with another of the same window;
    ``suppressed``: not sent, her daily text limit was reached (``last_error`` says so; the
    automatic texts leave the last of her day to the staff). ``dispatched_at`` on a text
    still ``pending``: when the dispatcher decided and counted it (it is being sent, or
    waits for a retry)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    topic: str
    channel: str
    butler_id: uuid.UUID | None
    mother_id: uuid.UUID | None
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    dispatched_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationPublic]
    page: PageInfo


@router.get(
    "/notifications",
    response_model=NotificationPage,
    summary="Delivery status of notifications, newest first (admins)",
)
async def list_notifications(
    _admin: AdminOnly,
    session: SessionDep,
    audit: AuditDep,
    page: PageDep,
    state: Annotated[
        str | None, Query(pattern="^(pending|delivered|failed|coalesced|suppressed)$")
    ] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
) -> NotificationPage:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(page.limit + 1)
    if page.after is not None:
        stmt = stmt.where(OutboxMessage.id < page.after)
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)
    rows = list(await session.scalars(stmt))
    rows, info = paginate(rows, page, key=lambda r: r.id)
    audit.record_many(
        "notification.list",
        "notification",
        [r.id for r in rows],
        mothers={r.id: r.mother_id for r in rows},
    )
    return NotificationPage(
        items=[NotificationPublic.model_validate(r) for r in rows],
        page=info,
    )


class SmsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: Literal["visit_reminder", "call_back", "report_ready"] = Field(
        description="A fixed text with no clinical content; the butler brings the results."
    )


@router.post(
    "/mothers/{mother_id}/sms",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotificationPublic,
    summary="Text her one of the fixed messages (rate-limited per mother and per account)",
    dependencies=[Idempotent],
    responses=problem_responses(404, 429),
)
async def send_sms(
    body: SmsRequest,
    principal: DeskOrButler,
    mother: ReadableMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> NotificationPublic:
    now = clock.now()
    await ratelimit.spend(
        session,
        f"sms:mother:{mother.id}",
        limit=settings.sms_per_mother_per_day,
        window=timedelta(days=1),
        now=now,
        what="Texts to one mother",
        tz=settings.tz,  # her day is the clinic's calendar day
    )
    await ratelimit.spend(
        session,
        f"sms:account:{principal.scope_key}",
        limit=settings.sms_per_account_per_hour,
        window=timedelta(hours=1),
        now=now,
        what="Texts from one account",
    )
    message = await enqueue(
        session,
        topic=f"sms.{body.template}",
        now=now,
        mother_id=mother.id,
        payload={"channel": "sms", "template": body.template, "sent_by": principal.name},
    )
    await session.flush()
    audit.record("mother.sms", "mother", mother.id, detail={"template": body.template})
    return NotificationPublic.model_validate(message)
