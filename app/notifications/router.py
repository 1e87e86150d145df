from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from app.auth.dependencies import AdminPrincipal
from app.core.errors import problem_responses
from app.core.pagination import PageDep, PageInfo, paginate
from app.core.routing import SessionDep, make_router
from app.notifications.models import OutboxMessage

router = make_router(
    prefix="/v1", tags=["notifications"], responses=problem_responses(401, 403, 422)
)


class NotificationPublic(BaseModel):
    """Delivery status only: ids, topic, channel, state. Never a text or a phone number."""

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
    _admin: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    state: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
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
    return NotificationPage(
        items=[NotificationPublic.model_validate(r) for r in rows],
        page=info,
    )
