from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.mothers.domain import DatingMethod, RiskGrade


class PregnancyStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Mother(UUIDPrimaryKey, Base):
    __tablename__ = "mothers"

    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    national_id: Mapped[str] = mapped_column(String(18), unique=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    date_of_birth: Mapped[date]
    language: Mapped[str] = mapped_column(String(20))
    # The plain link to her primary butler; the assignment rules replace it with history.
    primary_butler_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butlers.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    pregnancies: Mapped[list[Pregnancy]] = relationship(
        back_populates="mother", lazy="raise", order_by="Pregnancy.created_at"
    )


class Pregnancy(UUIDPrimaryKey, Base):
    """One episode; a mother has at most one active at a time (a partial unique index)."""

    __tablename__ = "pregnancies"

    mother_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[PregnancyStatus] = mapped_column(str_enum(PregnancyStatus, "status"))
    lmp_date: Mapped[date | None]
    edd_date: Mapped[date] = mapped_column(index=True)
    dating_method: Mapped[DatingMethod] = mapped_column(str_enum(DatingMethod, "dating_method"))
    gravida: Mapped[int] = mapped_column(SmallInteger)
    para: Mapped[int] = mapped_column(SmallInteger)
    risk_grade: Mapped[RiskGrade] = mapped_column(str_enum(RiskGrade, "risk_grade"), index=True)
    care_plan_code: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    mother: Mapped[Mother] = relationship(back_populates="pregnancies", lazy="raise")

    __table_args__ = (
        CheckConstraint("gravida >= 1 AND gravida <= 30", name="gravida_range"),
        CheckConstraint("para >= 0 AND para < gravida", name="para_below_gravida"),
        Index(
            "uq_pregnancies_one_active_per_mother",
            "mother_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )


class RiskGradeChange(UUIDPrimaryKey, Base):
    """Who changed a pregnancy's risk grade, when and why. Append-only."""

    __tablename__ = "risk_grade_changes"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    from_grade: Mapped[RiskGrade | None] = mapped_column(str_enum(RiskGrade, "from_grade"))
    to_grade: Mapped[RiskGrade] = mapped_column(str_enum(RiskGrade, "to_grade"))
    reason: Mapped[str] = mapped_column(String(500))
    changed_by_id: Mapped[uuid.UUID | None]
    changed_by_name: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]


class DatingChange(UUIDPrimaryKey, Base):
    """Each dating of a pregnancy (LMP, ultrasound, reported), so a re-dating keeps its history."""

    __tablename__ = "pregnancy_dating_changes"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    lmp_date: Mapped[date | None]
    edd_date: Mapped[date]
    dating_method: Mapped[DatingMethod] = mapped_column(str_enum(DatingMethod, "dating_method"))
    previous_edd_date: Mapped[date | None]
    reason: Mapped[str] = mapped_column(String(500))
    changed_by_id: Mapped[uuid.UUID | None]
    changed_by_name: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]
