from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.assignments.models import AssignmentRole

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class ExclusionPublic(BaseModel):
    butler_id: uuid.UUID
    name: str
    rule: str = Field(
        description="inactive, not_on_roster, missing_skill, over_capacity, excluded, "
        "off_duty or busy"
    )
    detail: str


class AssignmentDecision(BaseModel):
    """Why this butler: the rules she satisfies and her caseload before and after."""

    butler_id: uuid.UUID
    name: str
    reasons: list[str]
    load_before: int
    load_after: int
    capacity: int
    excluded: list[ExclusionPublic] = Field(default_factory=list)


class AccompanyingToday(BaseModel):
    visit_id: uuid.UUID
    butler_id: uuid.UUID | None
    is_cover: bool


class PrimaryChange(BaseModel):
    butler_id: uuid.UUID | None = Field(
        default=None, description="The butler the front desk chose; chosen by the rules if null."
    )
    reason: Reason


class CareAssignmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mother_id: uuid.UUID
    butler_id: uuid.UUID
    role: AssignmentRole
    visit_id: uuid.UUID | None
    valid_on: date | None
    starts_at: datetime
    ends_at: datetime | None
    reason: str
    ended_reason: str | None
    assigned_by_name: str
    flagged_reason: str | None


class CareTeam(BaseModel):
    mother_id: uuid.UUID
    primary: CareAssignmentPublic | None
    accompanying_today: AccompanyingToday | None
    history: list[CareAssignmentPublic]


class PrimaryChangeResult(BaseModel):
    decision: AssignmentDecision
    care_team: CareTeam


class ReleaseRequest(BaseModel):
    reason: Reason = Field(examples=["leaves the hospital", "maternity leave until March"])
    dry_run: bool = Field(default=False, description="Show the plan; change nothing.")


class PlannedMove(BaseModel):
    mother_id: uuid.UUID
    mrn: str
    moved: bool
    to: AssignmentDecision | None
    excluded: list[ExclusionPublic] = Field(
        default_factory=list, description="When she cannot move: which rule excluded whom."
    )


class ReleaseResult(BaseModel):
    butler_id: uuid.UUID
    dry_run: bool
    moved: int
    stuck: int
    moves: list[PlannedMove]


class LeaveCreate(BaseModel):
    starts_on: date
    ends_on: date
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class LeavePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    butler_id: uuid.UUID
    starts_on: date
    ends_on: date
    reason: str


class LeaveList(BaseModel):
    items: list[LeavePublic]


class Caseload(BaseModel):
    butler_id: uuid.UUID
    name: str
    active: bool
    capacity: int
    load: int = Field(description="Weighted by risk grade (CASELOAD_WEIGHTS).")
    mothers_by_grade: dict[str, int]
    visits_today: int


class CaseloadList(BaseModel):
    items: list[Caseload]


class MyMother(BaseModel):
    mother_id: uuid.UUID
    mrn: str
    name: str
    role: AssignmentRole
    risk_grade: str | None
    gestational_age: str | None
    next_visit_id: uuid.UUID | None
    next_visit_at: datetime | None
    open_reports: int = Field(description="Reports ready to pick up or picked up, not delivered.")
    flagged_reason: str | None


class MyMothers(BaseModel):
    items: list[MyMother]


class FlaggedList(BaseModel):
    items: list[CareAssignmentPublic]
