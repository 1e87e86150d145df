from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class Skill(StrEnum):
    HIGH_RISK = "high_risk"
    INFECTION_CONTROL = "infection_control"
    NUTRITION = "nutrition"
    LACTATION = "lactation"
    PSYCHOLOGICAL_SUPPORT = "psychological_support"


class Butler(UUIDPrimaryKey, Base):
    __tablename__ = "butlers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), unique=True
    )
    display_name: Mapped[str] = mapped_column(String(100))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_caseload: Mapped[int]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (CheckConstraint("max_caseload >= 0", name="max_caseload_not_negative"),)


class RosterShift(UUIDPrimaryKey, Base):
    """A weekly duty period: the butler works ``weekday`` from ``starts_at`` to ``ends_at``."""

    __tablename__ = "roster_shifts"

    butler_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("butlers.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts_at: Mapped[time]
    ends_at: Mapped[time]

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        UniqueConstraint("butler_id", "weekday", "starts_at"),
    )
