"""Her measurements, one row a reading. Rows are never edited: a correction is a new row that
names the one it replaces (``corrects_id``); the replaced row stays, marked superseded with who
corrected it and why. At most one row replaces a given row (a unique index), and a pregnancy
has at most one current height and one current pre-pregnancy weight (a partial unique index)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.measurements.domain import MeasurementKind, MeasurementSource

BASELINE_WHERE = "kind IN ('height', 'pre_pregnancy_weight') AND superseded_at IS NULL"


class Measurement(UUIDPrimaryKey, Base):
    """A reading in its canonical unit (``unit``), with what was entered kept in ``entered``."""

    __tablename__ = "measurements"

    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE")
    )
    kind: Mapped[MeasurementKind] = mapped_column(str_enum(MeasurementKind, "kind"))
    value: Mapped[float] = mapped_column(Float)
    value2: Mapped[float | None] = mapped_column(Float)  # diastolic, blood pressure only
    result: Mapped[str | None] = mapped_column(String(20))  # urine protein, NST
    unit: Mapped[str] = mapped_column(String(20))
    entered: Mapped[dict[str, Any]] = mapped_column(JSON)
    measured_at: Mapped[datetime]
    ga_days: Mapped[int | None] = mapped_column(SmallInteger)
    source: Mapped[MeasurementSource] = mapped_column(str_enum(MeasurementSource, "source"))
    reported_by_mother: Mapped[bool]
    visit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    recorded_by_id: Mapped[uuid.UUID | None]
    recorded_by_name: Mapped[str] = mapped_column(String(100))
    recorded_by_role: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime]
    # The station it was taken at, when a station account recorded it (0028; None: another
    # role, or a reading from before): a station account corrects only its own station's.
    station_code: Mapped[str | None] = mapped_column(String(10))
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("measurements.id", ondelete="RESTRICT")
    )
    superseded_at: Mapped[datetime | None]
    superseded_by_name: Mapped[str | None] = mapped_column(String(100))
    correction_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint(
            "(kind = 'blood_pressure') = (value2 IS NOT NULL)", name="diastolic_for_bp_only"
        ),
        CheckConstraint("kind <> 'blood_pressure' OR value > value2", name="systolic_above"),
        CheckConstraint(
            "(kind IN ('urine_protein', 'nst')) = (result IS NOT NULL)", name="result_for_tests"
        ),
        CheckConstraint(
            "source <> 'butler' OR reported_by_mother", name="butler_reports_for_mother"
        ),
        CheckConstraint("ga_days IS NULL OR (ga_days >= 0 AND ga_days <= 320)", name="ga_range"),
        CheckConstraint(
            "(superseded_at IS NULL) = (superseded_by_name IS NULL)", name="superseded_by_whom"
        ),
        CheckConstraint(
            "corrects_id IS NULL OR length(correction_reason) > 0", name="correction_has_reason"
        ),
        CheckConstraint("corrects_id IS NULL OR corrects_id <> id", name="not_self_correcting"),
        Index(
            "ix_measurements_pregnancy_id_kind_measured_at", "pregnancy_id", "kind", "measured_at"
        ),
        Index(
            "uq_measurements_corrects_id",
            "corrects_id",
            unique=True,
            postgresql_where=text("corrects_id IS NOT NULL"),
            sqlite_where=text("corrects_id IS NOT NULL"),
        ),
        # One current height and one current pre-pregnancy weight per pregnancy (0022): a
        # correction marks the old row superseded (flushed first) before adding its own.
        Index(
            "uq_measurements_one_current_baseline",
            "pregnancy_id",
            "kind",
            unique=True,
            postgresql_where=text(BASELINE_WHERE),
            sqlite_where=text(BASELINE_WHERE),
        ),
    )
