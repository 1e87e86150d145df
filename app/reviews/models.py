"""A doctor's review of a lab report and the follow-up orders it gave.

Reviews are never edited: an amended or corrected report marks the review of the earlier
version superseded (kept, with why) and awaits a new one; a doctor's revision supersedes the
review it replaces; a withdrawn report (cancelled, detached, moved to another patient) marks
its review withdrawn, which is never advice again. The database holds the invariants:
one current review per report, only a doctor reviews, only a released (final, corrected,
amended, appended) report is reviewed, every follow-up is a butler's task.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.reviews.domain import AbnormalSource, FollowUpKind

CURRENT_REVIEW = "superseded_at IS NULL"


class ReportReview(UUIDPrimaryKey, Base):
    __tablename__ = "report_reviews"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    # What was reviewed: the report's version and status, and the lab message it came in.
    report_version: Mapped[int]
    report_status: Mapped[str] = mapped_column(String(20))
    lab_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    reviewer_id: Mapped[uuid.UUID | None]
    reviewer_name: Mapped[str] = mapped_column(String(100))
    reviewer_role: Mapped[str] = mapped_column(String(20))
    interpretation: Mapped[str] = mapped_column(Text)
    abnormal_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    abnormal_source: Mapped[AbnormalSource] = mapped_column(
        str_enum(AbnormalSource, "abnormal_source")
    )
    advice_for_mother: Mapped[str] = mapped_column(Text)
    reviewed_at: Mapped[datetime]
    # Reviewed after her butler had delivered the report: the task to bring her the advice.
    advice_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butler_tasks.id", ondelete="SET NULL")
    )
    superseded_at: Mapped[datetime | None]
    superseded_reason: Mapped[str | None] = mapped_column(String(300))
    # The report was withdrawn or was not hers: the advice no longer stands (clinicians see
    # it in her history, marked; her butler never again).
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        # One current review per report: two doctors at once, one of them gets 409.
        Index(
            "uq_report_reviews_current",
            "report_id",
            unique=True,
            postgresql_where=text(CURRENT_REVIEW),
            sqlite_where=text(CURRENT_REVIEW),
        ),
        CheckConstraint("reviewer_role = 'doctor'", name="reviewed_by_a_doctor"),
        CheckConstraint(
            "report_status IN ('final', 'corrected', 'amended', 'appended')",
            name="of_a_released_report",
        ),
        CheckConstraint(
            "length(interpretation) > 0 AND length(advice_for_mother) > 0",
            name="interpretation_and_advice_given",
        ),
        CheckConstraint(
            "superseded_at IS NULL OR superseded_reason IS NOT NULL", name="superseded_says_why"
        ),
        CheckConstraint("report_version > 0", name="report_version_positive"),
        CheckConstraint(
            "withdrawn_at IS NULL OR (withdrawn_reason IS NOT NULL AND superseded_at IS NOT NULL)",
            name="withdrawn_says_why_and_is_not_current",
        ),
    )


class FollowUpOrder(UUIDPrimaryKey, Base):
    """ "Repeat the test in 2 weeks", "see the nutritionist", "call her in 3 days": each one
    her butler's task with its due time (the overdue reminders apply to it)."""

    __tablename__ = "follow_up_orders"

    review_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("report_reviews.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[FollowUpKind] = mapped_column(str_enum(FollowUpKind, "kind"))
    exam_code: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(500))
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("butler_tasks.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(
            "kind <> 'repeat_test' OR exam_code IS NOT NULL", name="repeat_names_the_test"
        ),
        CheckConstraint("kind <> 'other' OR note IS NOT NULL", name="other_says_what"),
        CheckConstraint("due_at >= created_at", name="due_after_ordered"),
    )
