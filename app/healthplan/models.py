"""Her health-management plan, its versions, and the nutrition assessments.

Every version is kept. A signed version never changes: the service refuses it and the database
does too (triggers in migration 0018 refuse an UPDATE or DELETE of a signed version), so a
change after signing is a new version that must be signed again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class HealthPlan(UUIDPrimaryKey, Base):
    """One per pregnancy: the head of its versions (the newest, and the one in force)."""

    __tablename__ = "health_plans"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), unique=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    latest_version: Mapped[int]
    signed_version: Mapped[int | None]  # the version in force: the newest signed one
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("latest_version >= 1", name="latest_version_positive"),
        CheckConstraint(
            "signed_version IS NULL OR (signed_version >= 1 AND signed_version <= latest_version)",
            name="signed_version_known",
        ),
    )


class HealthPlanVersion(UUIDPrimaryKey, Base):
    """One version of her plan: its sections, what it was made from, who made and signed it."""

    __tablename__ = "health_plan_versions"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("health_plans.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))  # generated | changed | assessment
    sections: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    change_note: Mapped[str] = mapped_column(String(1000))
    created_by_id: Mapped[uuid.UUID | None]
    created_by_name: Mapped[str] = mapped_column(String(100))
    created_by_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    signed_by_id: Mapped[uuid.UUID | None]
    signed_by_name: Mapped[str | None] = mapped_column(String(100))
    signed_by_role: Mapped[str | None] = mapped_column(String(20))
    signed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("plan_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("kind IN ('generated', 'changed', 'assessment')", name="kind_known"),
        CheckConstraint("length(change_note) > 0", name="change_note_given"),
        CheckConstraint(
            "(signed_at IS NULL AND signed_by_name IS NULL AND signed_by_role IS NULL)"
            " OR (signed_at IS NOT NULL AND signed_by_name IS NOT NULL"
            " AND signed_by_role IN ('doctor', 'nutritionist'))",
            name="signed_by_a_clinician",
        ),
    )


class NutritionAssessment(UUIDPrimaryKey, Base):
    """The nutritionist's (or a doctor's) assessment: what she eats, does and takes, her BMI,
    weight-gain status and any diabetes as they stood, and the plan version it produced."""

    __tablename__ = "nutrition_assessments"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mothers.id", ondelete="CASCADE"))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    ga_days: Mapped[int]
    diet: Mapped[str] = mapped_column(String(2000))
    activity: Mapped[str] = mapped_column(String(1000))
    supplements: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(2000))
    bmi: Mapped[float | None] = mapped_column(Float)
    bmi_group: Mapped[str | None] = mapped_column(String(20))
    gwg_table: Mapped[str | None] = mapped_column(String(40))
    gain_kg: Mapped[float | None] = mapped_column(Float)
    gwg_status: Mapped[str | None] = mapped_column(String(20))
    diabetes: Mapped[str | None] = mapped_column(String(20))  # gdm | overt_diabetes
    plan_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("health_plan_versions.id", ondelete="SET NULL")
    )
    assessed_by_id: Mapped[uuid.UUID | None]
    assessed_by_name: Mapped[str] = mapped_column(String(100))
    assessed_by_role: Mapped[str] = mapped_column(String(20))
    assessed_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("length(diet) > 0", name="diet_given"),
        CheckConstraint(
            "gwg_status IS NULL OR gwg_status IN ('below', 'within', 'above')",
            name="gwg_status_known",
        ),
        CheckConstraint(
            "diabetes IS NULL OR diabetes IN ('gdm', 'overt_diabetes')", name="diabetes_known"
        ),
        CheckConstraint(
            "assessed_by_role IN ('doctor', 'nutritionist')", name="assessed_by_a_clinician"
        ),
    )
