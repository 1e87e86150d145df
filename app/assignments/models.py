from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum


class AssignmentRole(StrEnum):
    PRIMARY = "primary"  # the whole pregnancy (FHIR CareTeam participant with a period)
    COVER = "cover"  # one visit day, when the primary is off duty or busy


class CareAssignment(UUIDPrimaryKey, Base):
    """A butler's period of care for a mother. Closing one and opening the next is the history."""

    __tablename__ = "care_assignments"

    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    butler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("butlers.id", ondelete="RESTRICT"))
    role: Mapped[AssignmentRole] = mapped_column(str_enum(AssignmentRole, "role"))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    valid_on: Mapped[date | None]  # cover only: the one clinic day it grants access
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(500))
    ended_reason: Mapped[str | None] = mapped_column(String(500))
    assigned_by_name: Mapped[str] = mapped_column(String(100))
    # Set when the assignment no longer satisfies the rules (e.g. a risk-grade change).
    flagged_reason: Mapped[str | None] = mapped_column(String(300))
    accepted_at: Mapped[datetime | None]  # cover only: the cover butler said yes

    __table_args__ = (
        Index(
            "uq_care_assignments_one_active_primary",
            "mother_id",
            unique=True,
            postgresql_where=text("role = 'primary' AND ends_at IS NULL"),
            sqlite_where=text("role = 'primary' AND ends_at IS NULL"),
        ),
        Index(
            "uq_care_assignments_one_active_cover_per_visit",
            "visit_id",
            unique=True,
            postgresql_where=text("role = 'cover' AND ends_at IS NULL"),
            sqlite_where=text("role = 'cover' AND ends_at IS NULL"),
        ),
        Index(None, "butler_id", "role", "ends_at"),
        CheckConstraint(
            "(role = 'cover') = (visit_id IS NOT NULL AND valid_on IS NOT NULL)",
            name="cover_has_visit_day",
        ),
    )


class ButlerLeave(UUIDPrimaryKey, Base):
    """A period a butler is away: she is off duty for visits, whatever her roster says."""

    __tablename__ = "butler_leaves"

    butler_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("butlers.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="ends_after_start"),)
