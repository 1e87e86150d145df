"""Writing to the outbox. Services call this; the request's commit makes it real."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.changes import payload_ref, touch
from app.notifications.models import OutboxMessage, OutboxState


async def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    now: datetime,
    butler_id: uuid.UUID | None = None,
    mother_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """One message to deliver (SMS, the desk's board, a butler's phone). Writes only the
    outbox row; a message that also changes a butler's list is sent with ``notify_butler``."""
    body = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in (payload or {}).items()}
    message = OutboxMessage(
        topic=topic,
        butler_id=butler_id,
        mother_id=mother_id,
        payload=body,
        channel=str(body.get("channel", "butler_app")),
        state=OutboxState.PENDING,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(message)
    return message


async def notify_butler(
    session: AsyncSession,
    *,
    topic: str,
    now: datetime,
    butler_id: uuid.UUID | None,
    mother_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """A message for a butler's phone, two effects: the outbox row, and her assignment list
    (feed) changes with it. With no butler (nobody to tell), only the outbox row."""
    message = await enqueue(
        session, topic=topic, now=now, butler_id=butler_id, mother_id=mother_id, payload=payload
    )
    if butler_id is not None:
        ref_type, ref_id = payload_ref(payload, mother_id)
        await touch(session, butler_id, kind=topic, now=now, ref_type=ref_type, ref_id=ref_id)
    return message
