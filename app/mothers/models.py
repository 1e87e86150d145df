from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.mothers import search_keys
from app.mothers.dating import DatingOutcome, ScanMeasurement
from app.mothers.domain import DatingMethod, Risk, RiskDecision, RiskGrade


def search_key(length: int) -> String:
    """A search key: compared byte by byte (code points), whatever the database's collation,
    so that a prefix is a range of one btree index (PostgreSQL's "C", SQLite's BINARY)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


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
    # What the search box finds her by (app/mothers/search_keys.py), kept in step with her
    # name, MRN and phone whenever they are set; each is a btree index with the id after it.
    search_name: Mapped[str | None] = mapped_column(search_key(search_keys.NAME_KEY_MAX))
    search_given: Mapped[str | None] = mapped_column(search_key(search_keys.NAME_KEY_MAX))
    search_pinyin: Mapped[str | None] = mapped_column(search_key(search_keys.PINYIN_KEY_MAX))
    search_pinyin_alt: Mapped[str | None] = mapped_column(search_key(search_keys.PINYIN_KEY_MAX))
    search_initials: Mapped[str | None] = mapped_column(search_key(search_keys.INITIALS_KEY_MAX))
    search_initials_alt: Mapped[str | None] = mapped_column(
        search_key(search_keys.INITIALS_KEY_MAX)
    )
    search_mrn: Mapped[str | None] = mapped_column(search_key(search_keys.MRN_KEY_MAX))
    search_phone4: Mapped[str | None] = mapped_column(search_key(4))

    pregnancies: Mapped[list[Pregnancy]] = relationship(
        back_populates="mother", lazy="raise", order_by="Pregnancy.created_at"
    )

    __table_args__ = tuple(
        Index(f"ix_mothers_{column}", column, "id") for column in search_keys.KEY_COLUMNS
    )

    @validates("name", "mrn", "phone")
    def _keep_search_keys(self, key: str, value: str) -> str:
        for column, derived in search_keys.keys_for(key, value).items():
            setattr(self, column, derived)
        return value


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
    # Her colour (green to red); purple is never a colour, it stands beside it (NHFPC 2017).
    risk_grade: Mapped[RiskGrade] = mapped_column(str_enum(RiskGrade, "risk_grade"), index=True)
    purple: Mapped[bool] = mapped_column(default=False, server_default=false())
    care_plan_code: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # The scan the dating rests on (the earliest that confirmed it, or the one that revised it).
    dating_scan_date: Mapped[date | None]
    dating_scan_measurement: Mapped[ScanMeasurement | None] = mapped_column(
        str_enum(ScanMeasurement, "dating_scan_measurement")
    )
    dating_scan_value_mm: Mapped[float | None] = mapped_column(Float)
    dating_scan_ga_days: Mapped[int | None] = mapped_column(SmallInteger)
    ivf_transfer_date: Mapped[date | None]
    ivf_embryo_age_days: Mapped[int | None] = mapped_column(SmallInteger)

    mother: Mapped[Mother] = relationship(back_populates="pregnancies", lazy="raise")

    @property
    def risk(self) -> Risk:
        return Risk(RiskGrade(self.risk_grade), bool(self.purple))

    __table_args__ = (
        CheckConstraint("gravida >= 1 AND gravida <= 30", name="gravida_range"),
        CheckConstraint("para >= 0 AND para < gravida", name="para_below_gravida"),
        CheckConstraint("risk_grade <> 'purple'", name="risk_grade_is_a_colour"),
        CheckConstraint(
            "(dating_scan_date IS NULL AND dating_scan_measurement IS NULL"
            " AND dating_scan_ga_days IS NULL) OR (dating_scan_date IS NOT NULL"
            " AND dating_scan_measurement IS NOT NULL AND dating_scan_ga_days IS NOT NULL"
            " AND dating_scan_ga_days >= 0 AND dating_scan_ga_days <= 308)",
            name="dating_scan_complete",
        ),
        CheckConstraint(
            "(ivf_transfer_date IS NULL AND ivf_embryo_age_days IS NULL)"
            " OR (ivf_transfer_date IS NOT NULL AND ivf_embryo_age_days >= 0"
            " AND ivf_embryo_age_days <= 7)",
            name="ivf_complete",
        ),
        CheckConstraint(
            "dating_method <> 'ivf' OR ivf_transfer_date IS NOT NULL",
            name="ivf_dating_has_transfer",
        ),
        Index(
            "uq_pregnancies_one_active_per_mother",
            "mother_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )


class RiskGradeChange(UUIDPrimaryKey, Base):
    """Who changed (or confirmed) a pregnancy's risk grade, when and why. Append-only.

    Rows before issue 20 may say to_grade 'purple': purple was then a grade of its own, and
    history is not rewritten."""

    __tablename__ = "risk_grade_changes"

    pregnancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pregnancies.id", ondelete="CASCADE"), index=True
    )
    from_grade: Mapped[RiskGrade | None] = mapped_column(str_enum(RiskGrade, "from_grade"))
    to_grade: Mapped[RiskGrade] = mapped_column(str_enum(RiskGrade, "to_grade"))
    from_purple: Mapped[bool | None]
    to_purple: Mapped[bool] = mapped_column(default=False, server_default=false())
    decision: Mapped[RiskDecision] = mapped_column(
        str_enum(RiskDecision, "decision"), server_default=RiskDecision.CHANGED.value
    )
    factors: Mapped[list[str] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    changed_by_id: Mapped[uuid.UUID | None]
    changed_by_name: Mapped[str] = mapped_column(String(100))
    changed_by_role: Mapped[str | None] = mapped_column(String(20))
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
    # What the change was judged on (ACOG 700); empty on rows before issue 20.
    outcome: Mapped[DatingOutcome | None] = mapped_column(str_enum(DatingOutcome, "outcome"))
    scan_date: Mapped[date | None]
    scan_measurement: Mapped[ScanMeasurement | None] = mapped_column(
        str_enum(ScanMeasurement, "scan_measurement")
    )
    scan_value_mm: Mapped[float | None] = mapped_column(Float)
    scan_ga_days: Mapped[int | None] = mapped_column(SmallInteger)
    dated_ga_days: Mapped[int | None] = mapped_column(SmallInteger)  # GA by the dating in force
    difference_days: Mapped[int | None] = mapped_column(SmallInteger)
    threshold_days: Mapped[int | None] = mapped_column(SmallInteger)
    ivf_transfer_date: Mapped[date | None]
    ivf_embryo_age_days: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(1000))
    changed_by_id: Mapped[uuid.UUID | None]
    changed_by_name: Mapped[str] = mapped_column(String(100))
    changed_by_role: Mapped[str | None] = mapped_column(String(20))
    changed_at: Mapped[datetime]
