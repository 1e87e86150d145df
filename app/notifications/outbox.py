"""Writing to the outbox. Services call this; the request's commit makes it real."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.changes import touch
from app.notifications.models import OutboxMessage


async def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    now: datetime,
    butler_id: uuid.UUID | None = None,
    mother_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    body = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in (payload or {}).items()}
    message = OutboxMessage(
        topic=topic,
        butler_id=butler_id,
        mother_id=mother_id,
        payload=body,
        channel=str(body.get("channel", "butler_app")),
        state="pending",
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(message)
    if butler_id is not None:  # her phone's list changes with it
        await touch(session, butler_id, kind=topic, now=now)
    return message
