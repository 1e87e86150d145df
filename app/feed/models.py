from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class FeedState(Base):
    """One row per butler: the version of her assignments, bumped in every changing transaction.

    Bumping it takes the row lock, so changes for one butler commit in version order: a reader
    of the feed never sees version n+1 before version n (no gaps).
    """

    __tablename__ = "butler_feed_state"

    butler_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("butlers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class FeedEvent(UUIDPrimaryKey, Base):
    """What changed for a butler, at which version: the /v1/me/events feed."""

    __tablename__ = "butler_feed_events"

    butler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("butlers.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(60))
    ref_type: Mapped[str | None] = mapped_column(String(20))
    ref_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("butler_id", "seq"),)


class Task(UUIDPrimaryKey, Base):
    """Something a butler must do for a mother (help with admission, a follow-up call …)."""

    __tablename__ = "butler_tasks"

    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    butler_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butlers.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[datetime]
    created_by_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completion_note: Mapped[str | None] = mapped_column(String(1000))
    reminders_sent: Mapped[int] = mapped_column(default=0)
