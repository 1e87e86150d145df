from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.visits.domain import VisitStatus

ACTIVE_STATUSES_SQL = "status IN ('booked', 'checked_in', 'in_progress')"


class ClinicSession(UUIDPrimaryKey, Base):
    """A dated clinic session, e.g. VIP clinic on Tuesday 08:00-12:00, 8 mothers per hour."""

    __tablename__ = "clinic_sessions"

    name: Mapped[str] = mapped_column(String(100))
    session_date: Mapped[date] = mapped_column(index=True)
    starts_at: Mapped[time]
    ends_at: Mapped[time]
    per_hour: Mapped[int] = mapped_column(SmallInteger)
    is_open: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("per_hour > 0", name="per_hour_positive"),
    )


class Visit(UUIDPrimaryKey, Base):
    """One attendance at the VIP clinic (an appointment)."""

    __tablename__ = "visits"

    mother_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mothers.id", ondelete="CASCADE"))
    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clinic_sessions.id", ondelete="RESTRICT"), index=True
    )
    visit_date: Mapped[date] = mapped_column(index=True)
    scheduled_at: Mapped[datetime]
    slot_start: Mapped[time]
    # When she is asked to come, inside her booked hour, so that the session's bottleneck
    # station is not met by everyone at once (app/visits/capacity.py). None: a walk-in, or
    # booked before arrival times were given.
    arrival_at: Mapped[datetime | None]
    # The exam codes her care plan was expected to order on the visit's day, as known when
    # it was booked (the session's forecast reads them; None: booked before forecasts).
    forecast_exams: Mapped[list[str] | None] = mapped_column(JSON)
    window_code: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[VisitStatus] = mapped_column(str_enum(VisitStatus, "status"))
    walk_in: Mapped[bool] = mapped_column(default=False)
    # Urgent (red risk with symptoms, or a doctor's flag): first in every queue.
    urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    urgent_reason: Mapped[str | None] = mapped_column(String(300))
    accompanying_butler_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butlers.id", ondelete="SET NULL"), index=True
    )
    arrived_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        # Scanning twice, or booking twice, never gives a mother two live visits on one day.
        Index(
            "uq_visits_one_active_per_mother_day",
            "mother_id",
            "visit_date",
            unique=True,
            postgresql_where=text(ACTIVE_STATUSES_SQL),
            sqlite_where=text(ACTIVE_STATUSES_SQL),
        ),
    )


class VisitStatusChange(UUIDPrimaryKey, Base):
    """Every transition (and reschedule) of a visit, timestamped. Append-only."""

    __tablename__ = "visit_status_changes"

    visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[VisitStatus | None] = mapped_column(str_enum(VisitStatus, "from_status"))
    to_status: Mapped[VisitStatus] = mapped_column(str_enum(VisitStatus, "to_status"))
    reason: Mapped[str | None] = mapped_column(String(500))
    changed_at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str] = mapped_column(String(100))


class ExamOrderStatus:
    ORDERED = "ordered"
    DONE = "done"
    CANCELLED = "cancelled"


class ExamOrder(UUIDPrimaryKey, Base):
    """One exam for one visit; its order number is what the lab system quotes back."""

    __tablename__ = "exam_orders"

    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    exam_code: Mapped[str] = mapped_column(String(40))
    exam_name: Mapped[str] = mapped_column(String(120))
    fasting: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(20))  # care_plan | added
    status: Mapped[str] = mapped_column(String(20), default=ExamOrderStatus.ORDERED)
    ordered_by_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("visit_id", "exam_code"),
        CheckConstraint("status IN ('ordered', 'done', 'cancelled')", name="status_known"),
        CheckConstraint("source IN ('care_plan', 'added')", name="source_known"),
    )


LIVE_LINK_SQL = "revoked_at IS NULL"


class HerVisitLink(UUIDPrimaryKey, Base):
    """The link to her own page for one visit: only a digest of its token is kept (the token
    is in the QR code and nowhere else); valid on the visit's day only; one live per visit,
    a new one revokes the old."""

    __tablename__ = "her_visit_links"

    visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None]
    created_by_name: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None]
    revoked_by_name: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        Index(
            "uq_her_visit_links_live",
            "visit_id",
            unique=True,
            postgresql_where=text(LIVE_LINK_SQL),
            sqlite_where=text(LIVE_LINK_SQL),
        ),
    )
