from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.local_time import local_of
from app.core.types import Instant


class QueuePlace(BaseModel):
    station: str
    station_name: str
    ticket: str
    state: Literal["waiting", "called", "in_service"]
    room: int | None = Field(description="Where to go, once called")
    position: int | None = Field(description="1 = next, among those waiting there")
    estimated_wait_minutes: int | None
    not_before: datetime | None = Field(description="A timed draw or a rejoin: not called before")
    not_before_local: ClassVar[Any] = local_of("not_before")


class QueueStatus(BaseModel):
    """Where she is in the clinic's queues, as of their last change."""

    places: list[QueuePlace]
    next_station: str | None = Field(description="Where to go next when she is free")
    steps_done: int
    steps_total: int


class DoctorAdvice(BaseModel):
    """A doctor's review of the report, for her butler to bring her (in plain words)."""

    review_id: uuid.UUID
    report_id: uuid.UUID
    reviewer_name: str
    reviewed_at: datetime
    advice: str
    of_earlier_version: bool = Field(
        description="Given on an earlier version: the amended report awaits the doctor's review"
    )


class AssignmentItem(BaseModel):
    """One thing to act on. ``kind`` says which fields are set; items come most urgent first."""

    kind: Literal["alert", "visit", "report_pickup", "report_delivery", "task"]
    id: uuid.UUID = Field(description="The alert, visit, report or task id.")
    mother_id: uuid.UUID
    mrn: str
    name: str
    at: datetime | None = Field(description="Visit time, alert deadline, ready time or due time.")
    title: str
    role: Literal["primary", "cover"] | None = None
    status: str | None = None
    queue: QueueStatus | None = Field(default=None, description="Visits today: her queues")
    advice: DoctorAdvice | None = Field(
        default=None,
        description="Report pickup and delivery, and the task to bring it: the doctor's advice",
    )


class Assignments(BaseModel):
    butler_id: uuid.UUID
    day: date
    version: int = Field(description="Bumped by every change to this list (the ETag says it too).")
    cursor: str = Field(
        default="0",
        description="The feed's cursor at this answer: follow GET /v1/me/events?after= from it.",
    )
    items: list[AssignmentItem]


class FeedEventPublic(BaseModel):
    seq: int = Field(description="The event's place in the feed (the same number as cursor).")
    cursor: str = Field(
        description="This event as a cursor: pass as ?after= or Last-Event-ID to read after it."
    )
    kind: str
    ref_type: str | None = Field(
        description="What the event is about (alert, assignment, mother, report, review, "
        "station, task, visit): fetch it by ref_id."
    )
    ref_id: uuid.UUID | None
    created_at: datetime


class FeedPage(BaseModel):
    events: list[FeedEventPublic]
    next_cursor: str = Field(
        description="Pass as ?after= (or Last-Event-ID) to read on; unchanged when empty. "
        "Every cursor of the feed is this string of digits."
    )


class TaskCreate(BaseModel):
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)
    ] = Field(examples=["Help with admission to the delivery ward"])
    due_at: Instant


class TaskComplete(BaseModel):
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class TaskPublic(BaseModel):
    id: uuid.UUID
    mother_id: uuid.UUID
    butler_id: uuid.UUID | None
    title: str
    due_at: datetime
    created_by_name: str
    created_at: datetime
    completed_at: datetime | None
    completion_note: str | None


class CoverDecline(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
