"""What a clinician recorded about her plan: her choices, declines, outside results, indications.

Each row says who recorded it and when; rows are never edited. A new choice supersedes the
old one (kept), a new indication row replaces the state of that indication (the history stays).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class _Recorded:
    recorded_by_id: Mapped[uuid.UUID | None]
    recorded_by_name: Mapped[str] = mapped_column(String(100))
    recorded_by_role: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime]


class ScreeningChoice(_Recorded, UUIDPrimaryKey, Base):
    """Her choice in a choice group (prenatal screening), with her consent where it is needed."""

    __tablename__ = "screening_choices"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    choice_code: Mapped[str] = mapped_column(String(40))
    option_code: Mapped[str | None] = mapped_column(String(40))  # None: she declined them all
    consent_recorded: Mapped[bool]
    note: Mapped[str] = mapped_column(String(500))
    superseded_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_screening_choices_current",
            "pregnancy_id",
            "choice_code",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
    )


class ExamDecline(_Recorded, UUIDPrimaryKey, Base):
    """She declined an exam of her plan; the clinician who heard it recorded it."""

    __tablename__ = "exam_declines"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    exam_code: Mapped[str] = mapped_column(String(40))
    item_key: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("pregnancy_id", "item_key"),
        CheckConstraint("length(reason) > 0", name="reason_given"),
    )


class OutsideResult(_Recorded, UUIDPrimaryKey, Base):
    """A result from another hospital in this pregnancy, with its source and date."""

    __tablename__ = "outside_results"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    exam_code: Mapped[str] = mapped_column(String(40))
    result_date: Mapped[date]
    source: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))

    __table_args__ = (CheckConstraint("length(source) > 0", name="source_given"),)


class CareIndication(_Recorded, UUIDPrimaryKey, Base):
    """A doctor says an indication holds (twins, itching) or no longer does."""

    __tablename__ = "care_indications"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    present: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(500))
