from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.types import Instant
from app.reports.domain import PickupState, ReportStatus
from app.reviews.domain import AbnormalSource, FollowUpKind


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Why = Annotated[str, _text(2, 300)]
Note = Annotated[str, _text(2, 500)]
ExamCode = Annotated[str, _text(1, 64)]
Interpretation = Annotated[str, _text(2, 4000)]
Advice = Annotated[str, _text(2, 2000)]


# A request body refuses what it does not know: a misspelt "advice_for_mothr" is a 422 naming
# it, never a review stored without the advice the doctor meant to give.
FORBID_EXTRA = ConfigDict(extra="forbid")


class AbnormalPick(BaseModel):
    model_config = FORBID_EXTRA

    seq: int = Field(ge=1, description="The observation's sequence number in the report (OBX-1)")
    why: Why | None = Field(
        default=None, description="Why it matters; default: the lab's flag or critical reason"
    )


class FollowUpCreate(BaseModel):
    """One follow-up: due in N days or N weeks (at the clinic's morning hour, 09:00 local, on
    that date), or at a time (exactly one of the three)."""

    model_config = FORBID_EXTRA

    kind: FollowUpKind
    in_days: int | None = Field(default=None, ge=1, le=280, examples=[3])
    in_weeks: int | None = Field(default=None, ge=1, le=40, examples=[2])
    due_at: Instant | None = None
    exam_code: ExamCode | None = Field(
        default=None,
        description="repeat_test: the exam to repeat, a code of the exam catalogue "
        "(GET /v1/exam-types); default: the exam this report answers",
        examples=["cbc"],
    )
    note: Note | None = Field(
        default=None, examples=["Repeat the blood count after two weeks of iron"]
    )


class ReviewCreate(BaseModel):
    model_config = FORBID_EXTRA

    interpretation: Interpretation = Field(
        examples=["Mild anaemia (Hb 105 g/L); platelets normal."]
    )
    abnormal_items: list[AbnormalPick] | None = Field(
        default=None,
        max_length=100,
        description=(
            "The observations to highlight. Left out: the ones the lab flagged (OBX-8 other "
            "than N) or that are on the critical list. An empty list: none."
        ),
    )
    advice_for_mother: Advice = Field(
        description="What her butler tells her, in plain words",
        examples=["Take the iron tablets daily with orange juice, not with tea or milk."],
    )
    follow_ups: list[FollowUpCreate] = Field(default_factory=list, max_length=10)


class AbnormalItemPublic(BaseModel):
    seq: int
    code: str
    display: str | None
    value: str | None
    unit: str | None
    flag: str | None
    why: str


class FollowUpPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: FollowUpKind
    exam_code: str | None
    due_at: datetime
    note: str | None
    task_id: uuid.UUID = Field(description="Her butler's task (GET /v1/me/assignments)")


class ReviewPublic(BaseModel):
    id: uuid.UUID
    report_id: uuid.UUID
    mother_id: uuid.UUID = Field(description="The mother the review was given to")
    mother_mrn: str | None = Field(description="Her MRN (the mother the review was given to)")
    mother_masked_name: str | None = Field(description="Her name, masked as lists mask it (王*琪)")
    of_current_mother: bool = Field(
        description="False: given to a mother the report was since detached from (a "
        "clinician's view of the report's history; always withdrawn then)"
    )
    report_version: int = Field(description="The report's version when it was reviewed")
    report_status: ReportStatus = Field(description="The report's status when it was reviewed")
    current: bool = Field(description="False: the review of an earlier version of the report")
    superseded_at: datetime | None
    superseded_reason: str | None = Field(
        description="Why it is no longer current: an amended report, a doctor's revision "
        "(revised by …), or withdrawn"
    )
    withdrawn: bool = Field(
        description="The report was withdrawn or was not hers: this advice no longer stands"
    )
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    reviewer_name: str
    reviewer_role: str
    reviewed_at: datetime
    interpretation: str
    abnormal_items: list[AbnormalItemPublic]
    abnormal_source: AbnormalSource = Field(
        description="lab_flags: the lab's flags as they came; doctor: chosen by the doctor"
    )
    advice_for_mother: str
    advice_task_id: uuid.UUID | None = Field(
        description="Reviewed after delivery: her butler's task to bring the advice"
    )
    follow_ups: list[FollowUpPublic]


class ReviewList(BaseModel):
    items: list[ReviewPublic]


class EarlierReview(BaseModel):
    id: uuid.UUID
    report_version: int
    reviewer_name: str
    reviewed_at: datetime


class AwaitingReview(BaseModel):
    report_id: uuid.UUID
    mother_id: uuid.UUID
    mrn: str
    name: str
    code: str | None
    display: str | None
    status: ReportStatus
    pickup_state: PickupState
    critical: bool
    abnormal: bool = Field(description="A critical value, a flagged result or one not assessed")
    ready_at: datetime | None = Field(description="Since when it waits")
    version: int
    earlier_review: EarlierReview | None = Field(
        description="An amended report: the review of its earlier version, kept"
    )


class AwaitingReviews(BaseModel):
    items: list[AwaitingReview]
