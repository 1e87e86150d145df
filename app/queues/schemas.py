from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.local_time import local_of
from app.core.types import Instant, LocalTime
from app.measurements.schemas import ReadingIn

_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")


PlaceKind = Literal["room", "window"]


def _no_nulls(model: BaseModel) -> None:
    """PATCH semantics: a field left out is kept; null is not a value these fields can take."""
    nulls = sorted(f for f in model.model_fields_set if getattr(model, f) is None)
    if nulls:
        raise ValueError(f"{', '.join(nulls)} cannot be null; leave a field out to keep it")


class StationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str = Field(description="Its name in English")
    name_zh: str | None = Field(description="Its name in Chinese (null: not set; show name)")
    place_kind: str = Field(description="room or window: how its places are called")
    station_type: str
    servers: int
    opens_at: LocalTime
    closes_at: LocalTime
    is_open: bool
    waiting: int = 0
    busy_rooms: int = 0


class StationList(BaseModel):
    items: list[StationPublic]


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Short code, also the ticket prefix, e.g. US2", max_length=10)
    name: str = Field(min_length=1, max_length=100, description="In English")
    name_zh: str | None = Field(
        default=None, min_length=1, max_length=100, description="In Chinese"
    )
    place_kind: PlaceKind = "room"
    station_type: str = Field(description="The kind of exam done here, e.g. ultrasound")
    servers: int = Field(default=1, ge=1, le=20, description="Rooms (parallel servers)")
    opens_at: LocalTime = time(7, 30)
    closes_at: LocalTime = time(17, 30)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        value = value.strip().upper()
        if not _CODE.fullmatch(value):
            raise ValueError("1-10 capital letters and digits, starting with a letter")
        return value

    @field_validator("station_type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not _TYPE.fullmatch(value):
            raise ValueError("lower-case letters, digits and _, like blood_draw")
        return value

    @model_validator(mode="after")
    def _hours(self) -> StationCreate:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class StationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, description="In English")
    name_zh: str | None = Field(
        default=None, min_length=1, max_length=100, description="In Chinese"
    )
    place_kind: PlaceKind | None = None
    servers: int | None = Field(default=None, ge=1, le=20)
    opens_at: LocalTime | None = None
    closes_at: LocalTime | None = None
    is_open: bool | None = Field(
        default=None, description="false closes it: its waiting mothers move to a sibling station"
    )

    @model_validator(mode="after")
    def _set_fields_have_values(self) -> StationUpdate:
        _no_nulls(self)
        return self


class ExamTypePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str = Field(description="Its name in English")
    name_zh: str | None = Field(description="Its name in Chinese (null: not set; show name)")
    station_type: str
    position: int
    fasting: bool
    after_meal: bool
    last: bool
    precedence: list[dict[str, Any]]
    sequence: list[dict[str, Any]]
    default_service_minutes: float
    learned_service_minutes: float | None
    learned_samples: int
    turnaround_minutes: int


class ExamTypeList(BaseModel):
    items: list[ExamTypePublic]


class ExamTypeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120, description="In English")
    name_zh: str | None = Field(
        default=None, min_length=1, max_length=120, description="In Chinese"
    )
    station_type: str | None = None
    position: int | None = Field(default=None, ge=1, le=1000)
    fasting: bool | None = None
    after_meal: bool | None = None
    last: bool | None = None
    precedence: list[dict[str, Any]] | None = Field(
        default=None, description='e.g. [{"before": "urine", "ga_to": "11+6"}, {"after": "vitals"}]'
    )
    sequence: list[dict[str, Any]] | None = Field(
        default=None,
        description='timed steps, e.g. [{"offset_minutes": 0}, {"offset_minutes": 60, '
        '"tolerance_minutes": 5, "from": "glucose_drink"}]; "from" names the event the '
        "station records that the offsets count from (else the end of the first step)",
    )
    default_service_minutes: float | None = Field(default=None, gt=0, le=480)
    turnaround_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 30)

    @field_validator("station_type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and not _TYPE.fullmatch(value):
            raise ValueError("lower-case letters, digits and _, like blood_draw")
        return value

    @model_validator(mode="after")
    def _set_fields_have_values(self) -> ExamTypeUpdate:
        _no_nulls(self)
        return self


class QueueEntryPublic(BaseModel):
    """A place in a station's queue. Names are masked; the station sees them on a call."""

    id: uuid.UUID
    ticket: str
    station: str
    station_type: str
    room: int | None
    state: str
    visit_id: uuid.UUID
    mother_id: uuid.UUID
    masked_name: str
    exams: list[str]
    exams_zh: list[str] = Field(
        default_factory=list,
        description="The same exams in Chinese (the English name where none is set)",
    )
    step_offset: int
    fasting: bool
    urgent: bool
    infection_control: bool = Field(description="Purple grade: infection-control handling")
    position: int | None = None
    estimated_wait_minutes: int | None = None
    expected_minutes: float
    entered_at: datetime
    available_at: datetime
    due_at: datetime | None
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    recalls: int
    no_shows: int
    previous_id: uuid.UUID | None
    held: str | None = Field(
        default=None,
        description="A station's waiting list: why call-next passes her over now (at another "
        "exam now, her timed draw is due first); null: she is called in her turn",
    )
    called_at_local: ClassVar[Any] = local_of("called_at")
    due_at_local: ClassVar[Any] = local_of("due_at")
    available_at_local: ClassVar[Any] = local_of("available_at")


class CalledMother(BaseModel):
    """Who to call, with the two identifiers to check before the exam (name and MRN)."""

    entry: QueueEntryPublic
    name: str
    mrn: str


class CallResult(BaseModel):
    called: CalledMother | None
    waiting: int = Field(description="Entries still waiting at this station")
    reason: str | None = Field(default=None, description="Why nobody was called")


class CallNext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room: int = Field(default=1, ge=1, le=20)


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station: str = Field(description="Code of the station to move her place to")


class Undo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["call", "start", "finish"] = Field(
        description="What the room did last and takes back: its call (she waits again, where "
        "she was), its start (she is called again) or its finish (she is in service again)"
    )
    room: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="The room that undoes it; when given, only that room's own action is "
        "undone (409 `not-last-action` if another room of the station did it)",
    )


class CancelOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=300)


class UrgentFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urgent: bool
    reason: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _reason(self) -> UrgentFlag:
        if self.urgent and not (self.reason and self.reason.strip()):
            raise ValueError("say why she is urgent")
        return self


class AwaitingStart(BaseModel):
    """A finished first draw whose timed test waits for the station to record its start."""

    entry_id: uuid.UUID = Field(description="Her finished service: record the drink on it")
    ticket: str
    masked_name: str
    exam: str
    exam_zh: str = ""
    event: str = Field(examples=["glucose_drink"])
    first_step_done_at: datetime
    waiting_for: str = Field(examples=["glucose drink not started"])


class StationQueue(BaseModel):
    station: StationPublic
    serving: list[QueueEntryPublic]
    waiting: list[QueueEntryPublic] = Field(
        description="Who waits now, one line per mother, in the order call-next takes them: "
        "first whom it calls now (the first is called next), then those it passes over now "
        "(`held` says why). Nobody here is being served here or listed in `scheduled`",
    )
    scheduled: list[QueueEntryPublic] = Field(
        default_factory=list,
        description="Not callable yet, by the time she may be called (`available_at`): a timed "
        "draw not yet due (its `due_at`), or a rejoin after a no-show; one line per mother",
    )
    awaiting_start: list[AwaitingStart] = Field(
        default_factory=list,
        description="OGTTs whose fasting draw was done here today and whose glucose drink is "
        "not recorded yet: their timed draws are not due until it is",
    )
    next_to_call: list[uuid.UUID] = Field(
        default_factory=list,
        description="Waiting entry ids in the order call-next takes them now (one per mother; "
        "the waiting-room board's next): a mother busy elsewhere or whose draw is not yet due "
        "is not among them",
    )
    as_of: Instant | None


class FinishExam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(
        default_factory=list,
        max_length=20,
        description="What the exam measured: vitals (weight, blood_pressure, pulse) or nst "
        "(nst result, fetal_heart_rate); stored as her measurements with this visit.",
    )


class GlucoseDrink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: Instant = Field(
        description="When she began the glucose drink: the 1- and 2-hour draws count from it. "
        "Not before the fasting draw finished (to the minute), not in the future; a second, "
        "different time is refused (409), the same time again is a retry."
    )


class TimedDrawPublic(BaseModel):
    label: str | None
    offset_minutes: int
    tolerance_minutes: int | None
    due_at: datetime | None
    earliest_at: datetime | None
    latest_at: datetime | None
    state: str
    ticket: str | None = Field(description="Her place for this draw, once queued")


class TimedTestPublic(BaseModel):
    """The timed test's start as the station recorded it, and when each draw is due."""

    entry_id: uuid.UUID
    exam_code: str
    event: str
    started_at: datetime
    recorded_at: datetime
    recorded_by: str
    draws: list[TimedDrawPublic]


class PendingStep(BaseModel):
    exam_code: str
    label: str | None
    station_type: str | None
    waiting_for: list[str]


class VisitQueuePublic(BaseModel):
    visit_id: uuid.UUID
    places: list[QueueEntryPublic]
    suggested_next: QueueEntryPublic | None
    expected_finish: Instant | None
    not_yet_queued: list[PendingStep]
    steps_done: int
    steps_total: int
    history: list[QueueEntryPublic]


class BoardTicket(BaseModel):
    ticket: str
    masked_name: str
    room: int | None = None
    called_at: datetime | None = Field(
        default=None, description="now_calling: when she was (last) called"
    )
    recalls: int = Field(
        default=0, description="now_calling: how often she was called again (a TV chimes anew)"
    )
    position: int | None = Field(default=None, description="next: 1 is called next")
    not_before: datetime | None = Field(
        default=None, description="later: not called before this (a timed draw's window)"
    )
    due_at: datetime | None = Field(default=None, description="later: a timed draw's time")
    called_at_local: ClassVar[Any] = local_of("called_at")
    not_before_local: ClassVar[Any] = local_of("not_before")
    due_at_local: ClassVar[Any] = local_of("due_at")


class StationBoard(BaseModel):
    station: str
    name: str
    name_zh: str | None = Field(default=None, description="In Chinese (null: not set)")
    place_kind: str = Field(default="room", description="room or window")
    now_calling: list[BoardTicket]
    next: list[BoardTicket] = Field(
        description="In the order call-next takes them (its own rule), one line per mother"
    )
    later: list[BoardTicket] = Field(
        default_factory=list,
        description="Waiting but not callable before not_before (OGTT draws not yet due, a "
        "rejoin after a no-show); a mother already listed above is not listed again",
    )
    waiting: int = Field(default=0, description="Mothers waiting here")
    busy_elsewhere: int = Field(
        default=0,
        description="Of those, mothers at another station now: in neither next nor later "
        "(call-next passes over them until they are back), so a TV says how many",
    )
    held: int = Field(
        default=0,
        description="Of those, mothers kept here for their timed draw (this exam would keep "
        "them past it): in neither next nor later, not at another exam either",
    )
    as_of: Instant | None
    as_of_local: ClassVar[Any] = local_of("as_of")


class HerTicket(BaseModel):
    """One of her places today, as her own page shows it: no name, MRN or id."""

    ticket: str
    station: str
    station_name: str
    station_name_zh: str | None = None
    place_kind: str = "room"
    room: int | None
    status: str = Field(examples=["waiting", "called", "in_service", "done"])
    exams: list[str]
    exams_zh: list[str] = Field(
        default_factory=list,
        description="The same exams in Chinese (the English name where none is set)",
    )
    position: int | None = Field(
        description="Waiting: 1 is called next here (the order call-next takes; while she is "
        "at another station, her place here once she is free); null while her time here has "
        "not come (not_before)"
    )
    estimated_wait_minutes: int | None
    called_at: datetime | None
    recalls: int = 0
    not_before: datetime | None = Field(description="Not called before this (a timed draw)")
    due_at: datetime | None = Field(description="A timed draw's time (the OGTT's 1 h, 2 h)")
    called_at_local: ClassVar[Any] = local_of("called_at")
    not_before_local: ClassVar[Any] = local_of("not_before")
    due_at_local: ClassVar[Any] = local_of("due_at")


class HerCall(BaseModel):
    ticket: str
    station: str
    station_name: str
    station_name_zh: str | None = None
    place_kind: str = "room"
    room: int | None
    called_at: datetime | None
    recalls: int
    called_at_local: ClassVar[Any] = local_of("called_at")


class HerNext(BaseModel):
    """What comes next for her: the place suggested, or the exam still to queue for."""

    exams: list[str]
    exams_zh: list[str] = Field(
        default_factory=list,
        description="The same exams in Chinese (the English name where none is set)",
    )
    station: str | None
    station_name: str | None
    station_name_zh: str | None = None
    ticket: str | None
    not_before: datetime | None
    due_at: datetime | None
    waiting_for: list[str] = Field(default_factory=list)
    not_before_local: ClassVar[Any] = local_of("not_before")
    due_at_local: ClassVar[Any] = local_of("due_at")


class HerVisit(BaseModel):
    date: str = Field(description="Her visit's day (YYYY-MM-DD)")
    visit_status: str
    tickets: list[HerTicket]
    called: HerCall | None = Field(description="Where she is called now (go there)")
    next: HerNext | None
    steps_done: int
    steps_total: int
    expected_finish: datetime | None
    expires_at: datetime = Field(description="When this link stops working")
    as_of: datetime | None
    expected_finish_local: ClassVar[Any] = local_of("expected_finish")


class BoardListing(BaseModel):
    """A waiting-room board the TV can show: nothing about any mother."""

    code: str
    name: str = Field(description="In English")
    name_zh: str | None = Field(description="In Chinese (null: not set; show name)")
    place_kind: str = Field(description="room or window: how its places are called")
    station_type: str


class BoardList(BaseModel):
    items: list[BoardListing]
