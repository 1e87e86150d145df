from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Section = Literal["nutrition", "weight", "fetal_monitoring", "follow_ups"]


class PlanGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000, examples=["first plan after enrolment"])


class ItemFields(BaseModel):
    """An item's fields to set; those left out keep their value (a new item needs a title)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    detail: str | None = Field(default=None, max_length=2000)
    ga_from: int | None = Field(default=None, ge=0, le=308, description="Days since the LMP.")
    ga_to: int | None = Field(default=None, ge=0, le=308)
    due_date: date | None = None
    repeat_days: int | None = Field(default=None, ge=1, le=90)
    for_butler: bool | None = None


class ItemChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    section: Section
    code: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    remove: bool = False
    set: ItemFields | None = Field(default=None, description="The fields to set (not on remove).")


class PlanChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=1000, examples=["energy lowered after review"])
    changes: list[ItemChangeIn] = Field(min_length=1, max_length=50)


class VersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    kind: str
    sections: dict[str, Any]
    inputs: dict[str, Any]
    change_note: str
    created_by_name: str
    created_by_role: str
    created_at: datetime
    signed: bool
    signed_by_name: str | None
    signed_by_role: str | None
    signed_at: datetime | None


class VersionSummary(BaseModel):
    version: int
    kind: str
    change_note: str
    created_by_name: str
    created_at: datetime
    signed_by_name: str | None
    signed_at: datetime | None


class VersionList(BaseModel):
    items: list[VersionSummary]


class PlanPublic(BaseModel):
    plan_id: uuid.UUID
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    latest_version: int
    signed_version: int | None = Field(description="The version in force; null: none signed.")
    stale: bool = Field(
        description="Her data changed since the version in force was made: review the plan."
    )
    stale_reasons: list[str] = Field(examples=[["GDM flagged after signing"]])
    latest: VersionPublic


class DueItemPublic(BaseModel):
    section: str
    code: str
    title: str
    detail: str
    why: str = Field(description="Why it is due now: its GA range, or its date (or overdue).")
    due_date: str | None
    ga_from: int | None
    ga_to: int | None


class DueList(BaseModel):
    mother_id: uuid.UUID
    signed_version: int | None
    signed_by_name: str | None
    gestational_age: str
    under_review: bool = Field(
        default=False,
        description="The plan in force is being reviewed by a clinician (her data changed "
        "since it was made); items whose reason no longer stands are left out until a new "
        "version is signed.",
    )
    under_review_note: str | None = Field(
        default=None, description="For her butler: what under review means (no diagnosis)."
    )
    items: list[DueItemPublic]


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300, examples=["Call her about her food diary"])
    due_in_days: int = Field(ge=0, le=120)


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    diet: str = Field(min_length=1, max_length=2000, examples=["three meals, rice twice a day"])
    activity: str = Field(default="", max_length=1000, examples=["walks 30 min after dinner"])
    supplements: list[str] = Field(
        default_factory=list, max_length=20, examples=[["folic acid 0.4 mg"]]
    )
    note: str = Field(default="", max_length=2000)
    follow_ups: list[FollowUpIn] = Field(default_factory=list, max_length=10)
    visit_id: uuid.UUID | None = None
    sign: bool = Field(
        default=False, description="Sign the plan version the assessment makes, at once."
    )


class AssessmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    visit_id: uuid.UUID | None
    ga_days: int
    diet: str
    activity: str
    supplements: list[str]
    note: str
    bmi: float | None
    bmi_group: str | None
    gwg_table: str | None
    gain_kg: float | None
    gwg_status: str | None
    diabetes: str | None
    assessed_by_name: str
    assessed_by_role: str
    assessed_at: datetime


class AssessmentRecorded(AssessmentPublic):
    plan_version: int
    plan_signed: bool
    task_ids: list[uuid.UUID]
    finished_queue_entry_id: uuid.UUID | None


class AssessmentList(BaseModel):
    items: list[AssessmentPublic]
