from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from app.core.local_time import local_of
from app.core.types import LocalTime
from app.visits.domain import VisitStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
ExamCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{2,40}$")]


class ClinicSessionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "VIP clinic",
                    "session_date": "2026-12-01",
                    "starts_at": "08:00",
                    "ends_at": "12:00",
                    "per_hour": 8,
                    "repeat_weeks": 4,
                }
            ]
        },
    )

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        "VIP clinic"
    )
    session_date: date
    starts_at: LocalTime
    ends_at: LocalTime
    per_hour: int = Field(ge=1, le=60, description="Mothers that can be booked in each hour.")
    repeat_weeks: int = Field(
        default=0, ge=0, le=52, description="Also create the same session this many weeks on."
    )

    @model_validator(mode="after")
    def _hours(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SessionHour(BaseModel):
    starts_at: LocalTime
    booked: int
    places_left: int


class StationLoadPublic(BaseModel):
    """A station type's forecast work in a session against its rooms' minutes."""

    station_type: str
    name: str | None = Field(description="A station of this type (English).")
    name_zh: str | None = Field(description="A station of this type (Chinese).")
    rooms: int = Field(description="Rooms of this type open during the session's hours.")
    demand_minutes: float = Field(description="Forecast service minutes of its bookings.")
    capacity_minutes: float = Field(description="Its rooms' minutes within the session.")
    load_percent: float | None = Field(
        description="Demand over capacity, in percent (null: no room of this type then)."
    )
    over: bool = Field(description="Past capacity (only an admin's override books so).")
    wait_minutes: float | None = Field(
        default=None,
        description="A refusal for her hour's queue: the longest forecast wait at this station "
        "type with her (a mother booked at or after her arrival); null otherwise, and null with "
        "max_wait_minutes set when a mother would not be seen before the rooms close.",
    )
    max_wait_minutes: float | None = Field(
        default=None,
        description="With wait_minutes: the most a booking may make (BOOKING_MAX_WAIT_MINUTES).",
    )


class SessionForecast(BaseModel):
    session_id: uuid.UUID
    session_date: date
    starts_at: LocalTime
    ends_at: LocalTime
    booked: int = Field(description="Visits counted (booked, here or done today).")
    bottleneck: str | None = Field(description="The station type with the highest load.")
    stations: list[StationLoadPublic]


class SessionAlternative(BaseModel):
    """Another session with room for her (the first of her hours free, her exams fitting)."""

    session_id: uuid.UUID
    name: str
    session_date: date
    starts_at: LocalTime
    ends_at: LocalTime
    hour: LocalTime = Field(
        description="The hour it would book her into: give it as preferred_time to take it."
    )
    arrival_at_local: LocalTime = Field(
        description="The arrival time that hour would give her (clinic time)."
    )
    places_left: int
    bottleneck_load_percent: float | None


class ClinicSessionPublic(BaseModel):
    id: uuid.UUID
    name: str
    session_date: date
    starts_at: LocalTime
    ends_at: LocalTime
    per_hour: int
    capacity: int
    booked: int
    available: int
    places_left: int = Field(
        description="Places still free in the session (0 when closed, over or full)."
    )
    is_open: bool
    hours: list[SessionHour] = Field(
        default_factory=list, description="Each hour-long slot with its places left."
    )
    stations: list[StationLoadPublic] = Field(
        default_factory=list,
        description="The forecast load per station type (in the session list).",
    )


class ClinicSessionList(BaseModel):
    items: list[ClinicSessionPublic]


class VisitBook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mother_id: uuid.UUID
    session_id: uuid.UUID
    preferred_time: LocalTime | None = Field(
        default=None, description="Local time wanted; the first hour with room when left out."
    )
    window_code: str | None = Field(
        default=None,
        max_length=20,
        description="The care-plan window this visit serves; found from the date when left out.",
    )
    override_capacity: StrictBool = Field(
        default=False,
        description="An admin books past a station type's capacity (with override_reason); "
        "anyone else is refused (403). With nothing over capacity it is not used: she is "
        "booked as without it, not audited as an override, and a warning says so (as it does "
        "for an override_reason sent without override_capacity).",
    )
    override_reason: Reason | None = Field(
        default=None, description="Why the capacity is overridden (required with it)."
    )

    @model_validator(mode="after")
    def _reason_with_override(self) -> Self:
        if self.override_capacity and not self.override_reason:
            raise ValueError("override_reason is required with override_capacity")
        return self


class VisitReschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: uuid.UUID
    preferred_time: LocalTime | None = Field(default=None, description="Local time wanted.")
    reason: Reason


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class CheckIn(BaseModel):
    """Scan her card (MRN) or the visit's code; a second scan returns the same visit."""

    model_config = ConfigDict(extra="forbid")

    mrn: str | None = Field(
        default=None,
        max_length=64,
        description="Her MRN as typed or scanned: spaces and case ignored (` mrn 0001 `).",
    )
    visit_id: uuid.UUID | None = None
    scan: str | None = Field(
        default=None,
        max_length=64,
        description="What the scanner read: her MRN or the visit's code (its id), spaces and "
        "case ignored.",
    )
    walk_in: StrictBool = Field(
        default=False,
        description="The desk confirms a walk-in today although she is booked on another day "
        "(without it that is a 409 naming the day).",
    )
    extra_exams: list[ExamCode] = Field(
        default_factory=list, max_length=20, description="Exam codes ordered on top of the plan."
    )

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        given = [k for k in (self.mrn, self.visit_id, self.scan) if k is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of mrn, visit_id and scan")
        for value in (self.mrn, self.scan):
            if value is not None and not "".join(value.split()):
                raise ValueError("the scan is empty")
        return self


class ExamOrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exam_code: ExamCode


class ExamOrderPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_number: str = Field(description="Quoted back by the lab system (OBR-2 / basedOn).")
    exam_code: str
    exam_name: str
    fasting: bool
    source: str
    status: str
    ordered_by_name: str
    created_at: datetime


class VisitStatusChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: VisitStatus | None
    to_status: VisitStatus
    reason: str | None
    changed_at: datetime
    actor_name: str


class VisitNotice(BaseModel):
    """One of ``warnings``, with its code and values: a screen says it in its own language."""

    code: str = Field(
        description="no-window, outside-window, after-proposal, capacity-overridden, "
        "override-unused, override-reason-ignored"
    )
    params: dict[str, str] = Field(default_factory=dict)
    text: str = Field(description="The English text, as in warnings.")


class VisitPublic(BaseModel):
    id: uuid.UUID
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    session_id: uuid.UUID
    visit_date: date
    scheduled_at: datetime
    arrival_at: datetime | None = Field(
        default=None,
        description="When she is asked to come, inside her booked hour (spread over the "
        "session's busiest station; fasting mothers first). null: a walk-in, or booked before.",
    )
    forecast_exams: list[str] | None = Field(
        default=None,
        description="The exams her care plan was expected to order that day when booked.",
    )
    window_code: str | None
    status: VisitStatus
    walk_in: bool
    accompanying_butler_id: uuid.UUID | None
    arrived_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    version: int
    exam_orders: list[ExamOrderPublic] = Field(default_factory=list)
    scheduled_at_local: ClassVar[Any] = local_of("scheduled_at")
    arrival_at_local: ClassVar[Any] = local_of("arrival_at")
    arrived_at_local: ClassVar[Any] = local_of("arrived_at")
    completed_at_local: ClassVar[Any] = local_of("completed_at")
    warnings: list[str] = Field(
        default_factory=list, description="E.g. the date lies outside the care-plan window."
    )
    notices: list[VisitNotice] = Field(
        default_factory=list, description="The same warnings, each with its code and values."
    )


class CheckInResult(VisitPublic):
    already_checked_in: bool = Field(description="true when this scan repeated an earlier one.")


class VisitDetail(VisitPublic):
    history: list[VisitStatusChangePublic]


class BoardVisit(BaseModel):
    visit_id: uuid.UUID
    mother_id: uuid.UUID
    mrn: str
    name: str
    scheduled_at: datetime
    status: VisitStatus
    walk_in: bool
    accompanying_butler_id: uuid.UUID | None
    accompanying_butler_name: str | None = Field(
        default=None, description="The butler escorting her today (beside the id)"
    )
    scheduled_at_local: ClassVar[Any] = local_of("scheduled_at")


class BoardSession(BaseModel):
    session: ClinicSessionPublic
    counts: dict[str, int] = Field(
        description="booked, checked_in, in_progress, completed, no_show, cancelled"
    )
    visits: list[BoardVisit]


class Board(BaseModel):
    day: date
    sessions: list[BoardSession]


class SweepRequest(BaseModel):
    day: date | None = Field(default=None, description="The clinic day; today when left out.")


class SweepResult(BaseModel):
    day: date
    marked_no_show: list[uuid.UUID]


class VisitTicket(BaseModel):
    ticket: str
    station: str
    station_name: str
    state: str = Field(examples=["waiting", "called", "in_service", "done"])
    room: int | None
    called_at: datetime | None
    called_at_local: ClassVar[Any] = local_of("called_at")


class VisitListItem(BaseModel):
    id: uuid.UUID
    mother_id: uuid.UUID
    mother_mrn: str
    mother_masked_name: str
    status: VisitStatus
    visit_date: date
    session_id: uuid.UUID
    session_name: str
    scheduled_at: datetime = Field(description="The booked time (a walk-in: her arrival).")
    local_time: str = Field(description="The booked time in the clinic's zone, HH:MM.")
    arrival_at: datetime | None = Field(
        default=None, description="When she is asked to come (null: a walk-in, or older)."
    )
    walk_in: bool
    urgent: bool
    checked_in_at: datetime | None
    completed_at: datetime | None
    primary_butler_id: uuid.UUID | None
    primary_butler_name: str | None
    accompanying_butler_id: uuid.UUID | None
    accompanying_butler_name: str | None
    butler_names: list[str] = Field(description="Her primary butler and her escort, if any.")
    tickets: list[VisitTicket]
    checked_in_at_local: ClassVar[Any] = local_of("checked_in_at")
    completed_at_local: ClassVar[Any] = local_of("completed_at")
    arrival_at_local: ClassVar[Any] = local_of("arrival_at")


class VisitList(BaseModel):
    day: date | None = Field(description="The day listed (null: every day of one mother).")
    items: list[VisitListItem]
    counts: dict[str, int] = Field(description="Visits listed by status.")


class HerLinkPublic(BaseModel):
    url: str = Field(
        description="Her page, relative; the token is in the fragment (#k=), which no browser "
        "sends to a server or in a Referer",
        examples=["/console/her.html#k=TOKEN"],
    )
    absolute_url: str = Field(description="The same, absolute: what the QR code encodes")
    expires_at: datetime = Field(description="The end of the visit's day, clinic time")
    qr_svg: str = Field(description="The QR code of absolute_url, an <svg> element")
    link_id: uuid.UUID
