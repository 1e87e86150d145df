"""Each firing of a clinical rule (with the inputs that fired it and who decided what it
suggested) and the flags on a pregnancy that the firings raise (one open flag per code)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clinical.rules import FiringState
from app.core.database import Base, UUIDPrimaryKey, str_enum

OPEN_FLAG = "cleared_at IS NULL"


class RuleFiring(UUIDPrimaryKey, Base):
    """A rule fired: which one, from which version of the rules, on what inputs, why. A
    suggestion waits for a clinician (``suggested`` → confirmed / dismissed, with who); what a
    correction or an amendment took away is ``withdrawn``, never deleted."""

    __tablename__ = "rule_firings"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[str] = mapped_column(String(60))
    rules_version: Mapped[str] = mapped_column(String(40))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(60))
    grade: Mapped[str | None] = mapped_column(String(20))
    explanation: Mapped[str] = mapped_column(String(1000))
    measurement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("measurements.id", ondelete="CASCADE"), index=True
    )
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    suggested_grade: Mapped[str | None] = mapped_column(String(20))  # a risk suggestion
    fired_at: Mapped[datetime]
    state: Mapped[FiringState] = mapped_column(str_enum(FiringState, "state"))
    decided_by_id: Mapped[uuid.UUID | None]
    decided_by_name: Mapped[str | None] = mapped_column(String(100))
    decided_by_role: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        # A decision says who made it and when; a suggestion or a recording has none yet.
        CheckConstraint(
            "(state IN ('confirmed', 'dismissed', 'withdrawn')) = (decided_at IS NOT NULL)",
            name="decision_has_time",
        ),
        CheckConstraint(
            "decided_at IS NULL OR decided_by_name IS NOT NULL", name="decision_says_who"
        ),
        CheckConstraint("measurement_id IS NULL OR report_id IS NULL", name="one_source_at_most"),
    )


class PregnancyFlag(UUIDPrimaryKey, Base):
    """Something the rules found about this pregnancy that others act on (gdm, anaemia with its
    grade, glucose monitoring …): open until cleared. A suggested flag awaits a clinician."""

    __tablename__ = "pregnancy_flags"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    grade: Mapped[str | None] = mapped_column(String(20))
    suggested: Mapped[bool]  # awaits a clinician's confirmation
    firing_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rule_firings.id", ondelete="CASCADE"), index=True
    )
    raised_at: Mapped[datetime]
    confirmed_by_id: Mapped[uuid.UUID | None]
    confirmed_by_name: Mapped[str | None] = mapped_column(String(100))
    confirmed_by_role: Mapped[str | None] = mapped_column(String(20))
    confirmed_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(100))
    clear_reason: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        Index(
            "uq_pregnancy_flags_open_per_code",
            "pregnancy_id",
            "code",
            unique=True,
            postgresql_where=text(OPEN_FLAG),
            sqlite_where=text(OPEN_FLAG),
        ),
        CheckConstraint(
            "cleared_at IS NULL OR (cleared_by IS NOT NULL AND clear_reason IS NOT NULL)",
            name="clearing_says_why",
        ),
        CheckConstraint(
            "confirmed_at IS NULL OR confirmed_by_name IS NOT NULL", name="confirmation_says_who"
        ),
    )
