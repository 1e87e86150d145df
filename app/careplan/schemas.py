from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.careplan.domain import ItemState, WindowStatus
from app.visits.domain import VisitStatus


class PlannedExamPublic(BaseModel):
    code: str
    name: str
    fasting: bool
    optional: bool
    done: bool = Field(description="Resulted, recorded elsewhere, or done and awaiting its result.")
    state: ItemState
    reason: str = Field(description="Why it is in this state, naming the rule's range or record.")
    due_from: date | None
    due_to: date | None = Field(description="The last day it can be done; null: until delivery.")
    condition: str | None = Field(
        default=None, description="The indication that brings it into her plan, if any."
    )


class PlannedWindowPublic(BaseModel):
    code: str
    label: str
    ga_from: str
    ga_to: str
    start_date: date
    end_date: date
    risk_extra: bool
    status: WindowStatus
    exams: list[PlannedExamPublic]
    visit_ids: list[str]


class PlanVisit(BaseModel):
    id: uuid.UUID
    visit_date: date
    scheduled_at: datetime
    window_code: str | None
    status: VisitStatus


class NextVisit(BaseModel):
    from_date: date
    to_date: date
    exams: list[str]
    reason: str


class ChoiceOption(BaseModel):
    code: str
    name: str
    consent_required: bool


class ChoicePublic(BaseModel):
    code: str
    label: str
    options: list[ChoiceOption]
    chosen: str | None = Field(
        description="Her option; null with decided_at set: she declined all."
    )
    consent_recorded: bool | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


class IndicationPublic(BaseModel):
    code: str
    label: str
    reason: str


class CarePlanPublic(BaseModel):
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    guideline_code: str
    guideline_version: str
    edd_date: date
    gestational_age: str
    booking_panel: list[PlannedExamPublic] = Field(
        description="Ordered at her first visit here whatever the week, unless recorded elsewhere."
    )
    indicated: list[PlannedExamPublic] = Field(
        description="Exams an indication or a result of hers calls for (ferritin, bile acids…)."
    )
    windows: list[PlannedWindowPublic]
    choices: list[ChoicePublic]
    indications: list[IndicationPublic]
    next_visit: NextVisit | None = Field(
        description="When to book next: a date range inside the ranges still open."
    )
    past_visits: list[PlanVisit]
    upcoming_visits: list[PlanVisit]


class GuidelineSummary(BaseModel):
    code: str
    version: str
    title: str
    windows: int
    exams: int


class GuidelineList(BaseModel):
    items: list[GuidelineSummary]


class ChoiceCreate(BaseModel):
    choice: str = Field(examples=["prenatal_screening"], max_length=40)
    option: str | None = Field(
        description="Her option; null when she declines every option.",
        examples=["nipt"],
        max_length=40,
    )
    consent: bool = Field(default=False, description="Her informed consent is signed and filed.")
    note: str = Field(default="", max_length=500)


def _from(*names: str) -> AliasChoices:
    """Read a response field from the row's column of another name (or its own name)."""
    return AliasChoices(*names)


class _Record(BaseModel):
    """What a clinician recorded, read straight from its row: who and when."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    recorded_by: str = Field(validation_alias=_from("recorded_by_name", "recorded_by"))
    recorded_at: datetime


class ChoiceRecorded(_Record):
    choice: str = Field(validation_alias=_from("choice_code", "choice"))
    option: str | None = Field(validation_alias=_from("option_code", "option"))
    consent_recorded: bool


class DeclineCreate(BaseModel):
    exam_code: str = Field(examples=["hiv"], max_length=40)
    item_key: str | None = Field(
        default=None, description="Which item of her plan, when the exam recurs.", max_length=80
    )
    reason: str = Field(min_length=1, max_length=500, examples=["declined after counselling"])


class DeclineRecorded(_Record):
    exam_code: str
    item_key: str
    reason: str


class OutsideResultCreate(BaseModel):
    exam_code: str = Field(examples=["hiv"], max_length=40)
    result_date: date
    source: str = Field(
        min_length=1, max_length=200, examples=["Haidian MCH hospital, report 2026-0411"]
    )
    summary: str = Field(default="", max_length=500, examples=["non-reactive"])


class OutsideResultRecorded(_Record):
    exam_code: str
    result_date: date
    source: str
    summary: str


class IndicationCreate(BaseModel):
    code: str = Field(examples=["multiple_pregnancy"], max_length=40)
    present: bool = True
    reason: str = Field(min_length=1, max_length=500, examples=["dichorionic twins on scan"])


class IndicationRecorded(_Record):
    code: str
    present: bool
    reason: str
