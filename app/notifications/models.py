from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    # Report-ready texts that end without being sent (dispatcher.py): another text of the
    # same window told her already; her daily limit held it back.
    COALESCED = "coalesced"
    SUPPRESSED = "suppressed"


class OutboxMessage(UUIDPrimaryKey, Base):
    """A notification written in the same transaction as the change it announces.

    A dispatcher sends it after commit; a rolled-back request leaves no message behind.
    Payloads carry ids only, never names, numbers or results.
    """

    __tablename__ = "outbox_messages"

    topic: Mapped[str] = mapped_column(String(60))
    butler_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butlers.id", ondelete="SET NULL"), index=True
    )
    mother_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Where it goes: butler_app, sms, front_desk, front_desk_lead, doctor (see dispatcher.py).
    channel: Mapped[str] = mapped_column(String(20), default="butler_app")
    state: Mapped[str] = mapped_column(String(10), default=OutboxState.PENDING)  # OutboxState
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index(
            "ix_outbox_messages_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
