from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey

LIVE_SQL = "state IN ('waiting', 'called', 'in_service')"
BUSY_SQL = "state IN ('called', 'in_service')"


class EntryState:
    WAITING = "waiting"
    CALLED = "called"
    IN_SERVICE = "in_service"
    DONE = "done"
    NO_SHOW = "no_show"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"

    LIVE = frozenset({WAITING, CALLED, IN_SERVICE})
    BUSY = frozenset({CALLED, IN_SERVICE})


class StepState:
    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"


class Station(UUIDPrimaryKey, Base):
    """A place where one type of exam is done, with one or more rooms (parallel servers)."""

    __tablename__ = "stations"

    code: Mapped[str] = mapped_column(String(10), unique=True)  # also the ticket prefix
    name: Mapped[str] = mapped_column(String(100))  # English
    name_zh: Mapped[str | None] = mapped_column(String(100))  # Chinese (None: not set)
    # Its places are rooms (诊室) or windows (窗口, a counter): how the TV and her page say it.
    place_kind: Mapped[str] = mapped_column(String(10), default="room", server_default="room")
    station_type: Mapped[str] = mapped_column(String(30), index=True)
    servers: Mapped[int] = mapped_column(SmallInteger)
    opens_at: Mapped[time]
    closes_at: Mapped[time]
    is_open: Mapped[bool] = mapped_column(default=True)
    # When its queue last changed: the estimates shown are as of this moment, so that they
    # (and the butler's ETag) change only when the queue does.
    queue_changed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        CheckConstraint("servers > 0", name="servers_positive"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opening"),
        CheckConstraint("place_kind IN ('room', 'window')", name="place_kind_known"),
    )


class ExamType(Base):
    """The catalogue: where an exam is done and which rules bind it. Data, edited by admins."""

    __tablename__ = "exam_types"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))  # English
    name_zh: Mapped[str | None] = mapped_column(String(120))  # Chinese (None: not set)
    station_type: Mapped[str] = mapped_column(String(30))
    position: Mapped[int] = mapped_column(SmallInteger)  # catalogue order
    fasting: Mapped[bool] = mapped_column(default=False)  # must be done fasting
    after_meal: Mapped[bool] = mapped_column(default=False)  # only once she may eat
    last: Mapped[bool] = mapped_column(default=False)  # last of the day (the doctor)
    # [{"before": "urine", "ga_to": "11+6"}, {"after": "vitals"}]
    precedence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"offset_minutes": 0}, {"offset_minutes": 60, "tolerance_minutes": 5}]
    sequence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    default_service_minutes: Mapped[float] = mapped_column(Float)
    learned_service_minutes: Mapped[float | None] = mapped_column(Float)
    learned_samples: Mapped[int] = mapped_column(default=0)
    turnaround_minutes: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (CheckConstraint("default_service_minutes > 0", name="service_positive"),)


class StationTicket(Base):
    """The last ticket number a station gave out on a day (US-007)."""

    __tablename__ = "station_tickets"

    station_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    last_number: Mapped[int]


class QueueEntry(UUIDPrimaryKey, Base):
    """A mother's place in one station's queue for one service (one or more exam steps).

    Entries are never reopened: a no-show, a transfer or a rejoin closes this one and opens the
    next (``previous_id``), so the history of her day is the chain of entries.
    """

    __tablename__ = "queue_entries"

    day: Mapped[date]
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    station_type: Mapped[str] = mapped_column(String(30))
    step_offset: Mapped[int] = mapped_column(default=0)  # timed draws: +60, +120 …
    visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mothers.id", ondelete="CASCADE"))
    ticket: Mapped[str] = mapped_column(String(16))
    ticket_number: Mapped[int]
    state: Mapped[str] = mapped_column(String(20))
    room: Mapped[int | None] = mapped_column(SmallInteger)
    fasting: Mapped[bool] = mapped_column(default=False)
    ref_time: Mapped[datetime]  # booked time, or arrival for a walk-in: the fairness order
    entered_at: Mapped[datetime]
    available_at: Mapped[datetime]  # not callable before (timed draw, rejoin after a no-show)
    due_at: Mapped[datetime | None]  # a timed draw's nominal time
    tolerance_minutes: Mapped[int | None]
    expected_minutes: Mapped[float] = mapped_column(Float)
    called_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(300))
    recalls: Mapped[int] = mapped_column(default=0)
    no_shows: Mapped[int] = mapped_column(default=0)
    # What its finish taught the learned service time, so that an undone finish takes it back:
    # the exam type, the sample (minutes), the mean right after it and its sample number.
    taught_exam: Mapped[str | None] = mapped_column(String(40))
    taught_minutes: Mapped[float | None] = mapped_column(Float)
    taught_mean: Mapped[float | None] = mapped_column(Float)
    taught_sample: Mapped[int | None]
    previous_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("queue_entries.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(
            "state IN ('waiting', 'called', 'in_service', 'done', 'no_show', 'transferred',"
            " 'cancelled')",
            name="state_known",
        ),
        CheckConstraint(f"room IS NOT NULL OR NOT ({BUSY_SQL})", name="busy_has_room"),
        Index("ix_queue_entries_station_state", "station_id", "state"),
        Index("ix_queue_entries_mother_day", "mother_id", "day"),
        # She is called or served at one place at a time …
        Index(
            "uq_queue_entries_mother_busy",
            "mother_id",
            unique=True,
            postgresql_where=text(BUSY_SQL),
            sqlite_where=text(BUSY_SQL),
        ),
        # … a room calls or serves one mother at a time …
        Index(
            "uq_queue_entries_room_busy",
            "station_id",
            "room",
            unique=True,
            postgresql_where=text(BUSY_SQL),
            sqlite_where=text(BUSY_SQL),
        ),
        # … and she holds one live place per kind of service.
        Index(
            "uq_queue_entries_visit_live",
            "visit_id",
            "station_type",
            "step_offset",
            unique=True,
            postgresql_where=text(LIVE_SQL),
            sqlite_where=text(LIVE_SQL),
        ),
    )


class ExamStep(UUIDPrimaryKey, Base):
    """One thing to do at a station for an exam order; a timed OGTT has three (0, +60, +120)."""

    __tablename__ = "exam_steps"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("exam_orders.id", ondelete="CASCADE"))
    visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    exam_code: Mapped[str] = mapped_column(String(40))
    station_type: Mapped[str | None] = mapped_column(String(30))  # None: not in the catalogue
    offset_minutes: Mapped[int] = mapped_column(default=0)
    tolerance_minutes: Mapped[int | None]
    label: Mapped[str | None] = mapped_column(String(60))
    # A timed step: what its offset counts from (None: the end of the first step).
    timed_from: Mapped[str | None] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20), default=StepState.PENDING)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("queue_entries.id", ondelete="SET NULL"), index=True
    )
    done_at: Mapped[datetime | None]
    # A first step: when the event its timed steps count from happened (the glucose drink
    # began), and who recorded it when. Set once.
    timing_started_at: Mapped[datetime | None]
    timing_recorded_at: Mapped[datetime | None]
    timing_recorded_by_id: Mapped[uuid.UUID | None]
    timing_recorded_by_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("order_id", "offset_minutes"),
        CheckConstraint("state IN ('pending', 'done', 'cancelled')", name="state_known"),
        CheckConstraint(
            "timed_from IS NULL OR (offset_minutes > 0 AND timed_from IN ('glucose_drink'))",
            name="timed_from_known",
        ),
        # A start is recorded on a finished first step, with who and when, all or nothing.
        CheckConstraint(
            "(timing_started_at IS NULL AND timing_recorded_at IS NULL"
            " AND timing_recorded_by_name IS NULL)"
            " OR (timing_started_at IS NOT NULL AND timing_recorded_at IS NOT NULL"
            " AND timing_recorded_by_name IS NOT NULL AND offset_minutes = 0"
            " AND state = 'done')",
            name="timing_start_recorded",
        ),
    )


class PreparationNotice(UUIDPrimaryKey, Base):
    """A preparation text sent for a visit on its day (the OGTT's, the day before): one per
    visit, day and kind, so a rerun sends nothing and a visit moved to another day is told
    again."""

    __tablename__ = "preparation_notices"

    visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    visit_date: Mapped[date]
    kind: Mapped[str] = mapped_column(String(30))
    outbox_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("visit_id", "visit_date", "kind"),
        CheckConstraint("kind IN ('ogtt_preparation')", name="kind_known"),
    )
