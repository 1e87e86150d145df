"""Sessions, booking, check-in and status changes of visits. Services flush; never commit."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError

from app.assignments.repository import AssignmentRepository
from app.assignments.service import Policy, arrange_escort, end_cover
from app.careplan import domain as plan
from app.careplan import service as care_plan
from app.careplan.domain import Guideline
from app.core.clock import ClinicTime
from app.core.errors import Conflict, NotFound, invalid_field
from app.core.ids import uuid7
from app.core.principal import Principal
from app.feed.changes import touch
from app.mothers.domain import (
    RiskGrade,
    format_gestational_age,
    gestational_age_days,
    mask_name,
)
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherRepository
from app.mothers.risk import prompt_reassessment, trace_missed_visit
from app.notifications.outbox import notify_butler
from app.queues.catalogue import load_catalogue
from app.queues.domain import Catalogue
from app.queues.models import Station
from app.queues.policy import Ctx, QueuePolicy
from app.queues.routing import close_visit_entries, route
from app.visits import capacity
from app.visits.domain import (
    SessionShape,
    VisitStatus,
    first_free_slot,
    free_slots,
    local_datetime,
    nearest_first,
)
from app.visits.models import ClinicSession, ExamOrder, ExamOrderStatus, Visit
from app.visits.repository import VisitRepository
from app.visits.schemas import (
    ClinicSessionCreate,
    ClinicSessionPublic,
    SessionAlternative,
    SessionForecast,
    SessionHour,
    StationLoadPublic,
    VisitList,
    VisitListItem,
    VisitTicket,
)
from app.visits.status import IllegalTransition, move_status, record_status


class SessionFull(Conflict):
    slug = "session-full"
    title = "The clinic session has no room at that time"


class AlreadyBooked(Conflict):
    slug = "already-booked"
    title = "She already has a visit at that time"


class BookedAnotherDay(Conflict):
    slug = "booked-another-day"
    title = "She is booked on another day"


class OutsideWindow(Conflict):
    slug = "outside-care-plan-window"
    title = "The date is outside the care-plan window"


class OverCapacity(Conflict):
    slug = "station-over-capacity"
    title = "The session's stations have no room for her exams"


@dataclass(frozen=True, slots=True)
class Clinic(ClinicTime):
    """What the visit rules need from the app: its clock reading, zone and guideline tables."""

    now: datetime
    tz: ZoneInfo
    guidelines: dict[str, Guideline]
    queue_policy: QueuePolicy = field(default_factory=QueuePolicy)
    region_flags: frozenset[str] = frozenset()
    # BOOKING_MAX_WAIT_MINUTES: the longest forecast wait at a station a booking may make
    max_wait_minutes: float = capacity.MAX_WAIT_MINUTES

    def queue_ctx(self, actor: Principal) -> Ctx:
        return Ctx(now=self.now, tz=self.tz, actor=actor, policy=self.queue_policy)

    def guideline(self, pregnancy: Pregnancy) -> Guideline:
        try:
            return self.guidelines[pregnancy.care_plan_code]
        except KeyError as exc:
            raise Conflict(
                f"The care-plan table {pregnancy.care_plan_code!r} of this pregnancy is not "
                "installed."
            ) from exc


def _shape(session: ClinicSession) -> SessionShape:
    return SessionShape(session.session_date, session.starts_at, session.ends_at, session.per_hour)


def _earliest(session: ClinicSession, clinic: Clinic) -> time | None:
    """The first hour a booking may take: on the session's day, the hour it is now."""
    return (
        _shape(session).slot_of(clinic.local_time) if session.session_date == clinic.today else None
    )


def _not_counting(
    visit: Visit | None, session_id: uuid.UUID, counts: dict[time, int]
) -> dict[time, int]:
    """A session's bookings per hour without ``visit`` (a reschedule: her own place)."""
    if visit is not None and visit.session_id == session_id:
        counts = {**counts, visit.slot_start: counts.get(visit.slot_start, 1) - 1}
    return counts


# Clinic sessions -------------------------------------------------------------------------


async def create_sessions(
    repo: VisitRepository, *, data: ClinicSessionCreate, now: datetime
) -> list[ClinicSession]:
    sessions = [
        ClinicSession(
            name=data.name,
            session_date=data.session_date + timedelta(weeks=week),
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            per_hour=data.per_hour,
            is_open=True,
            created_at=now,
        )
        for week in range(data.repeat_weeks + 1)
    ]
    repo.session.add_all(sessions)
    await repo.session.flush()
    return sessions


def session_view(
    session: ClinicSession,
    booked: int,
    *,
    slots: dict[time, int] | None = None,
    clinic: ClinicTime | None = None,
    stations: list[StationLoadPublic] | None = None,
) -> ClinicSessionPublic:
    """The session with its places: ``places_left`` counts only what can still be booked
    (none when it is closed; on its day, none in the hours already begun or past)."""
    shape = _shape(session)
    capacity = shape.capacity
    counts = slots or {}
    hours = []
    for start in shape.slots():
        taken = counts.get(start, 0)
        left = max(shape.per_hour - taken, 0)
        if not session.is_open or (clinic is not None and _hour_gone(session, start, clinic)):
            left = 0
        hours.append(SessionHour(starts_at=start, booked=taken, places_left=left))
    if slots is None:  # no per-hour counts read: the session's whole room
        places_left = max(capacity - booked, 0) if session.is_open else 0
    else:
        places_left = sum(h.places_left for h in hours)
    return ClinicSessionPublic(
        id=session.id,
        name=session.name,
        session_date=session.session_date,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        per_hour=session.per_hour,
        capacity=capacity,
        booked=booked,
        available=max(capacity - booked, 0),
        places_left=places_left,
        is_open=session.is_open,
        hours=hours if slots is not None else [],
        stations=stations or [],
    )


def _hour_gone(session: ClinicSession, start: time, clinic: ClinicTime) -> bool:
    """Past days, and on its day the hours before the current one (that one still takes a
    booking, as ``_bookable_slot`` allows)."""
    if session.session_date != clinic.today:
        return session.session_date < clinic.today
    if clinic.local_time >= session.ends_at:
        return True
    current = _shape(session).slot_of(clinic.local_time)
    return current is not None and start < current


# Capacity: the work per station type a session's bookings bring -----------------------------


def session_hours(session: ClinicSession) -> capacity.SessionHours:
    return capacity.SessionHours(
        session.id, session.session_date, session.starts_at, session.ends_at
    )


def rooms_of(stations: list[Station]) -> list[capacity.Rooms]:
    return [capacity.Rooms(s.station_type, s.servers, s.opens_at, s.closes_at) for s in stations]


async def expected_exams(
    repo: VisitRepository, pregnancy: Pregnancy, clinic: Clinic, day: date
) -> list[str]:
    """The exams her plan will order if she checks in on ``day``: what check-in orders."""
    return await care_plan.exams_to_order(
        repo.session,
        pregnancy=pregnancy,
        guideline=clinic.guideline(pregnancy),
        today=day,
        enrolled_on=pregnancy.created_at.astimezone(clinic.tz).date(),
        region_flags=clinic.region_flags,
    )


async def _booked_in(
    repo: VisitRepository,
    clinic: Clinic,
    catalogue: Catalogue,
    session_ids: list[uuid.UUID],
    *,
    ignore: uuid.UUID | None = None,
) -> dict[uuid.UUID, list[capacity.Booked]]:
    """Each session's bookings as the rules count them: a visit checked in by its orders,
    one booked by the exams forecast when it was booked (or, booked before forecasts, by
    asking her plan now)."""
    out: dict[uuid.UUID, list[capacity.Booked]] = {s: [] for s in session_ids}
    visits = [v for v in await repo.visits_of_sessions(session_ids) if v.id != ignore]
    orders = await repo.orders_of([v.id for v in visits])
    for visit in visits:
        codes = [o.exam_code for o in orders[visit.id] if o.status != ExamOrderStatus.CANCELLED]
        if not codes and visit.forecast_exams is not None:
            codes = list(visit.forecast_exams)
        elif not codes:
            pregnancy = await repo.session.get(Pregnancy, visit.pregnancy_id)
            assert pregnancy is not None
            codes = await expected_exams(repo, pregnancy, clinic, visit.visit_date)
        arrival = visit.arrival_at.astimezone(clinic.tz).time() if visit.arrival_at else None
        out[visit.session_id].append(
            capacity.Booked(
                capacity.need_of(codes, catalogue), visit.slot_start, arrival, ref=visit.id
            )
        )
    return out


def station_loads(
    loads: list[capacity.StationLoad], stations: list[Station]
) -> list[StationLoadPublic]:
    first: dict[str, Station] = {}
    for station in stations:
        first.setdefault(station.station_type, station)
    return [
        StationLoadPublic(
            station_type=s.station_type,
            name=first[s.station_type].name if s.station_type in first else None,
            name_zh=first[s.station_type].name_zh if s.station_type in first else None,
            rooms=s.servers,
            demand_minutes=round(s.demand_minutes, 1),
            capacity_minutes=round(s.capacity_minutes, 1),
            load_percent=round(s.load * 100, 1) if s.load is not None else None,
            over=s.over,
            wait_minutes=round(s.wait_minutes, 1)
            if s.wait_minutes is not None and math.isfinite(s.wait_minutes)
            else None,
            max_wait_minutes=s.max_wait_minutes,
        )
        for s in loads
    ]


async def forecasts(
    repo: VisitRepository, clinic: Clinic, sessions: list[ClinicSession]
) -> dict[uuid.UUID, tuple[int, list[capacity.StationLoad]]]:
    """Per session: the visits counted and the forecast load per station type."""
    catalogue = await load_catalogue(repo.session)
    rooms = rooms_of(await repo.stations())
    booked = await _booked_in(repo, clinic, catalogue, [s.id for s in sessions])
    return {
        s.id: (
            len(booked[s.id]),
            capacity.loads(session_hours(s), rooms, [b.need for b in booked[s.id]]),
        )
        for s in sessions
    }


async def session_forecast(
    repo: VisitRepository, clinic: Clinic, session: ClinicSession
) -> SessionForecast:
    count, loads = (await forecasts(repo, clinic, [session]))[session.id]
    stations = await repo.stations()
    known = [s for s in loads if s.load is not None]
    neck = min(known, key=lambda s: (-(s.load or 0.0), s.station_type)) if known else None
    return SessionForecast(
        session_id=session.id,
        session_date=session.session_date,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        booked=count,
        bottleneck=neck.station_type if neck is not None and neck.demand_minutes > 0 else None,
        stations=station_loads(loads, stations),
    )


ALTERNATIVES = 3  # sessions offered when one is refused
ALTERNATIVE_DAYS = 28  # looked for within this many days after it


@dataclass(frozen=True, slots=True)
class Her:
    """Who is booked, as the checks of a booking need her (for the sessions offered too)."""

    pregnancy: Pregnancy
    window_code: str | None
    taken: set[str]  # the care-plan windows her other visits serve
    refuse_outside_window: bool
    moving: Visit | None = None  # a reschedule: her visit, not counted against her


async def _alternatives(
    repo: VisitRepository,
    clinic: Clinic,
    her: Her,
    refused: ClinicSession,
    catalogue: Catalogue,
    rooms: list[capacity.Rooms],
    *,
    booked_here: list[capacity.Booked],
    need: capacity.Need,
    asked: time | None,
) -> list[SessionAlternative]:
    """What the desk is offered, each a booking that would succeed as this one would have:
    when she asked for an hour, up to two other hours of the same session (the nearest
    first), then the next sessions after ``refused``, each at its first hour that takes her
    (a free hour, her care-plan window when dates outside it are refused, no other visit of
    hers that day, room for her exams there and no wait past the limit)."""
    out: list[SessionAlternative] = []
    if asked is not None:
        counts = _not_counting(her.moving, refused.id, await repo.slot_counts(refused.id))
        free = free_slots(_shape(refused), counts, earliest=_earliest(refused, clinic))
        for slot in nearest_first(free, asked):
            if len(out) == min(capacity.SAME_DAY_HOURS, ALTERNATIVES):
                break
            decision = capacity.decide(
                session_hours(refused),
                rooms,
                booked_here,
                need,
                slot,
                max_wait=clinic.max_wait_minutes,
            )
            if decision.accepted:
                out.append(_alternative(refused, slot, decision, need, counts, clinic))
    ignore = her.moving.id if her.moving is not None else None
    later = [
        s
        for s in await repo.clinic_sessions(
            start=refused.session_date,
            end=refused.session_date + timedelta(days=ALTERNATIVE_DAYS),
        )
        if s.id != refused.id
        and s.is_open
        and (s.session_date, s.starts_at, s.id)
        > (refused.session_date, refused.starts_at, refused.id)
    ]
    slots = {
        sid: _not_counting(her.moving, sid, counts)
        for sid, counts in (await repo.slot_counts_of([s.id for s in later])).items()
    }
    booked = await _booked_in(repo, clinic, catalogue, [s.id for s in later], ignore=ignore)
    guideline = clinic.guideline(her.pregnancy)
    for s in later:
        if len(out) == ALTERNATIVES:
            break
        if s.session_date == clinic.today and s.ends_at <= clinic.local_time:
            continue
        hours = free_slots(_shape(s), slots[s.id], earliest=_earliest(s, clinic))
        if not hours:
            continue
        if her.refuse_outside_window:
            window, ga_day = _choose_window(
                guideline,
                her.pregnancy,
                day=s.session_date,
                window_code=her.window_code,
                taken=her.taken,
            )
            if _window_warning(window, ga_day):
                continue
        other = await repo.active_visit_on(her.pregnancy.mother_id, s.session_date)
        if other is not None and other.id != ignore:
            continue
        theirs = capacity.need_of(
            await expected_exams(repo, her.pregnancy, clinic, s.session_date), catalogue
        )
        for slot in hours:
            decision = capacity.decide(
                session_hours(s),
                rooms,
                booked[s.id],
                theirs,
                slot,
                max_wait=clinic.max_wait_minutes,
            )
            if decision.accepted:
                out.append(_alternative(s, slot, decision, theirs, slots[s.id], clinic))
                break
    return out


def _alternative(
    session: ClinicSession,
    slot: time,
    decision: capacity.Decision,
    need: capacity.Need,
    counts: dict[time, int],
    clinic: Clinic,
) -> SessionAlternative:
    neck = capacity.bottleneck(decision.loads, need)
    return SessionAlternative(
        session_id=session.id,
        name=session.name,
        session_date=session.session_date,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        hour=slot,
        arrival_at_local=decision.arrival or slot,
        places_left=session_view(session, 0, slots=counts, clinic=clinic).places_left,
        bottleneck_load_percent=round(neck.load * 100, 1)
        if neck is not None and neck.load is not None
        else None,
    )


def _over_text(over: list[capacity.StationLoad]) -> str:
    return "; ".join(
        (
            f"at {s.station_type} a mother of the {s.hour:%H:%M} hour would not be seen before"
            f" its rooms close if she came too (arriving {s.arrival:%H:%M})"
        )
        if s.wait_minutes is not None
        and not math.isfinite(s.wait_minutes)
        and s.hour is not None
        and s.arrival is not None
        else (
            f"at {s.station_type} a mother of the {s.hour:%H:%M} hour would wait about"
            f" {s.wait_minutes:.0f} minutes with her (arriving {s.arrival:%H:%M}); a booking may"
            f" make at most {s.max_wait_minutes:.0f}"
        )
        if s.wait_minutes is not None and s.hour is not None and s.arrival is not None
        else (
            f"{s.station_type} has no room open in the {s.hour:%H:%M} hour after her arrival"
            f" at {s.arrival:%H:%M}"
            if not s.capacity_minutes
            else f"{s.station_type} stays open only {s.capacity_minutes:.0f} minutes after her"
            f" arrival at {s.arrival:%H:%M} in the {s.hour:%H:%M} hour; her exams there take"
            f" {s.demand_minutes:.0f}"
        )
        if s.hour is not None and s.arrival is not None
        else f"{s.station_type} would need {s.demand_minutes:.0f} of its {s.capacity_minutes:.0f}"
        f" minutes ({s.servers} room{'s' if s.servers != 1 else ''})"
        if s.servers
        else f"{s.station_type} has no room open in the session's hours"
        for s in over
    )


async def _capacity_check(
    repo: VisitRepository,
    *,
    her: Her,
    session: ClinicSession,
    slots: list[time],
    asked: bool,
    clinic: Clinic,
    override: str | None,
) -> tuple[list[str], time, capacity.Decision]:
    """Her exams on the session's day against its stations' rooms (the session row is locked:
    bookings into it are decided one at a time). Past capacity, or a station type of hers not
    open long enough in her hour: 409 with the next sessions that would book her, unless
    ``override`` (an admin's reason) books her anyway. The hour's other bookings whose arrival
    time the decision arranges again are given it (in this transaction). ``slots``: the hours
    she may take, tried in order (the first whose rules accept her is hers; none: the first's
    refusal); ``asked``: the one hour she asked for (the others of the session are offered)."""
    catalogue = await load_catalogue(repo.session)
    rooms = rooms_of(await repo.stations())
    exams = await expected_exams(repo, her.pregnancy, clinic, session.session_date)
    need = capacity.need_of(exams, catalogue)
    ignore = her.moving.id if her.moving is not None else None
    booked = (await _booked_in(repo, clinic, catalogue, [session.id], ignore=ignore))[session.id]
    slot, decision = slots[0], None
    for candidate in slots:
        tried = capacity.decide(
            session_hours(session),
            rooms,
            booked,
            need,
            candidate,
            max_wait=clinic.max_wait_minutes,
        )
        if tried.accepted:
            slot, decision = candidate, tried
            break
        decision = decision or tried
    assert decision is not None
    if decision.over and override is None:
        alternatives = await _alternatives(
            repo,
            clinic,
            her,
            session,
            catalogue,
            rooms,
            booked_here=booked,
            need=need,
            asked=slot if asked else None,
        )
        raise OverCapacity(
            f"This session cannot take her exams: {_over_text(decision.over)}."
            + (" Another session has room." if alternatives else " No session soon has room."),
            extra={
                "session_id": str(session.id),
                "station_types": [
                    s.model_dump(mode="json")
                    for s in station_loads(decision.over, await repo.stations())
                ],
                "alternatives": [a.model_dump(mode="json") for a in alternatives],
            },
        )
    await _rearrange(repo, session, booked, decision, clinic)
    return exams, slot, decision


async def _rearrange(
    repo: VisitRepository,
    session: ClinicSession,
    booked: list[capacity.Booked],
    decision: capacity.Decision,
    clinic: Clinic,
) -> None:
    """The new arrival times the booking gives the others of her hour (only visits still
    booked: one checked in is here already); each one's butler's feed hears of it."""
    for index, at in decision.rearranged.items():
        ref = booked[index].ref
        visit = await repo.visit(ref) if ref is not None else None
        if visit is None or visit.status is not VisitStatus.BOOKED:
            continue
        visit.arrival_at = local_datetime(session.session_date, at, clinic.tz)
        visit.updated_at = clinic.now
        visit.version += 1
        if visit.accompanying_butler_id is not None:
            await touch(
                repo.session,
                visit.accompanying_butler_id,
                kind="visit.rescheduled",
                now=clinic.now,
                ref_type="visit",
                ref_id=visit.id,
            )


# The visit list ----------------------------------------------------------------------------


async def visit_list(
    repo: VisitRepository,
    *,
    day: date | None,
    statuses: frozenset[VisitStatus],
    mother_id: uuid.UUID | None,
    only_mothers: Select[uuid.UUID] | None,
    tz: ZoneInfo,
) -> VisitList:
    """The desk's list: each visit with her MRN and masked name, her butlers and her tickets
    (a place moved on by a no-show or a transfer shows as the place it became)."""
    rows = await repo.listed_visits(
        day=day, statuses=statuses, mother_id=mother_id, only_mothers=only_mothers
    )
    entries = await repo.entries_of_visits([v.id for v, _, _ in rows])
    butler_ids = {
        b for v, m, _ in rows for b in (v.accompanying_butler_id, m.primary_butler_id) if b
    }
    names = await repo.butler_names(butler_ids)
    items = []
    counts = {s.value: 0 for s in VisitStatus}
    for visit, mother, session in rows:
        counts[visit.status.value] += 1
        places = entries[visit.id]
        superseded = {e.previous_id for e, _ in places if e.previous_id is not None}
        primary = names.get(mother.primary_butler_id) if mother.primary_butler_id else None
        escort = names.get(visit.accompanying_butler_id) if visit.accompanying_butler_id else None
        items.append(
            VisitListItem(
                id=visit.id,
                mother_id=mother.id,
                mother_mrn=mother.mrn,
                mother_masked_name=mask_name(mother.name),
                status=visit.status,
                visit_date=visit.visit_date,
                session_id=session.id,
                session_name=session.name,
                scheduled_at=visit.scheduled_at,
                local_time=f"{visit.scheduled_at.astimezone(tz):%H:%M}",
                arrival_at=visit.arrival_at,
                walk_in=visit.walk_in,
                urgent=visit.urgent,
                checked_in_at=visit.arrived_at,
                completed_at=visit.completed_at,
                primary_butler_id=mother.primary_butler_id,
                primary_butler_name=primary,
                accompanying_butler_id=visit.accompanying_butler_id,
                accompanying_butler_name=escort,
                butler_names=list(dict.fromkeys(n for n in (primary, escort) if n)),
                tickets=[
                    VisitTicket(
                        ticket=e.ticket,
                        station=st.code,
                        station_name=st.name,
                        state=e.state,
                        room=e.room,
                        called_at=e.called_at,
                    )
                    for e, st in places
                    if e.id not in superseded
                ],
            )
        )
    return VisitList(day=day, items=items, counts=counts)


# Booking ----------------------------------------------------------------------------------


async def _pregnancy(mothers: MotherRepository, mother: Mother) -> Pregnancy:
    pregnancy = await mothers.active_pregnancy(mother.id)
    if pregnancy is None:
        raise Conflict("She has no active pregnancy episode to book a visit for.")
    return pregnancy


async def _bookable_slot(
    repo: VisitRepository,
    *,
    session_id: uuid.UUID,
    preferred: time | None,
    clinic: Clinic,
    ignore_visit: Visit | None = None,
) -> tuple[ClinicSession, list[time], bool]:
    """The session (its row locked) and the hours a booking may take, in the order tried: the
    hour asked for (and True), or every hour with a place from now on (False)."""
    session = await repo.clinic_session(session_id, for_update=True)  # serialises its bookings
    if session is None:
        raise invalid_field("session_id", "no clinic session with that id")
    if not session.is_open:
        raise Conflict("That clinic session is closed for booking.")
    shape = _shape(session)
    if session.session_date < clinic.today or (
        session.session_date == clinic.today and session.ends_at <= clinic.local_time
    ):
        raise Conflict("That clinic session is over.")
    counts = _not_counting(ignore_visit, session.id, await repo.slot_counts(session.id))
    earliest = _earliest(session, clinic)
    if preferred is not None:
        slot = shape.slot_of(preferred)
        if slot is None:
            raise invalid_field(
                "preferred_time",
                f"the session runs {session.starts_at:%H:%M}-{session.ends_at:%H:%M}",
            )
        if earliest is not None and slot < earliest:
            raise Conflict(f"The {slot:%H:%M} hour has already passed.")
        if counts.get(slot, 0) >= shape.per_hour:
            raise SessionFull(
                f"The {slot:%H:%M} hour already has {shape.per_hour} mothers booked.",
                extra={"session_id": str(session.id), "slot": f"{slot:%H:%M}"},
            )
        return session, [slot], True
    free = free_slots(shape, counts, earliest=earliest)
    if not free:
        raise SessionFull(
            f"All {shape.capacity} places of this session are taken.",
            extra={"session_id": str(session.id)},
        )
    return session, free, False


def _choose_window(
    guideline: Guideline,
    pregnancy: Pregnancy,
    *,
    day: date,
    window_code: str | None,
    taken: set[str],
) -> tuple[plan.Window | None, int]:
    ga_day = gestational_age_days(pregnancy.edd_date, day)
    grade = RiskGrade(pregnancy.risk_grade)
    if window_code is None:
        return plan.window_on(guideline, grade, ga_day, taken=taken), ga_day
    for window in plan.windows_for(guideline, grade):
        if window.code == window_code:
            return window, ga_day
    raise invalid_field("window_code", f"the {guideline.code} plan has no window {window_code!r}")


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning on a booking: its code and values, for a screen to say it in its own
    language, and the English text (``warnings`` in the API)."""

    code: str
    text: str
    params: dict[str, str] = field(default_factory=dict)


def _window_warning(window: plan.Window | None, ga_day: int) -> Notice | None:
    ga = format_gestational_age(ga_day)
    if window is None:
        return Notice(
            "no-window", f"At {ga} weeks the date lies in no care-plan window.", {"ga": ga}
        )
    if not window.from_day <= ga_day <= window.to_day:
        start, end = format_gestational_age(window.from_day), format_gestational_age(window.to_day)
        return Notice(
            "outside-window",
            f"At {ga} weeks the date lies outside the window {window.label} ({start} to {end}).",
            {"ga": ga, "window": window.code, "from": start, "to": end},
        )
    return None


async def _taken_windows(repo: VisitRepository, pregnancy: Pregnancy) -> set[str]:
    return {
        v.window_code
        for v in await repo.visits_of_pregnancy(pregnancy.id)
        if v.window_code and v.status not in (VisitStatus.CANCELLED, VisitStatus.NO_SHOW)
    }


async def book_visit(
    repo: VisitRepository,
    mothers: MotherRepository,
    *,
    mother: Mother,
    session_id: uuid.UUID,
    preferred: time | None,
    window_code: str | None,
    refuse_outside_window: bool,
    actor: Principal,
    clinic: Clinic,
    policy: Policy,
    override: str | None = None,
) -> tuple[Visit, list[Notice], list[capacity.StationLoad]]:
    """Book her; past a station type's capacity only with ``override`` (an admin's reason:
    the types overridden are returned, for the audit)."""
    pregnancy = await _pregnancy(mothers, mother)
    session, slots, asked = await _bookable_slot(
        repo, session_id=session_id, preferred=preferred, clinic=clinic
    )
    window, ga_day = _choose_window(
        clinic.guideline(pregnancy),
        pregnancy,
        day=session.session_date,
        window_code=window_code,
        taken=await _taken_windows(repo, pregnancy),
    )
    if await repo.active_visit_on(mother.id, session.session_date) is not None:
        raise AlreadyBooked(f"She already has a visit on {session.session_date.isoformat()}.")
    warning = _window_warning(window, ga_day)
    if warning and refuse_outside_window:
        raise OutsideWindow(warning.text)
    late = await _after_the_proposal(repo, pregnancy, clinic, session.session_date)
    her = Her(
        pregnancy,
        window_code=window_code,
        taken=await _taken_windows(repo, pregnancy),
        refuse_outside_window=refuse_outside_window,
    )
    exams, slot, decision = await _capacity_check(
        repo, her=her, session=session, slots=slots, asked=asked, clinic=clinic, override=override
    )
    now = clinic.now
    visit = Visit(
        mother_id=mother.id,
        pregnancy_id=pregnancy.id,
        session_id=session.id,
        visit_date=session.session_date,
        scheduled_at=local_datetime(session.session_date, slot, clinic.tz),
        slot_start=slot,
        arrival_at=local_datetime(session.session_date, decision.arrival or slot, clinic.tz),
        forecast_exams=exams,
        window_code=window.code if window else None,
        status=VisitStatus.BOOKED,
        walk_in=False,
        accompanying_butler_id=None,  # arrange_escort decides
        created_at=now,
        updated_at=now,
        version=1,
    )
    repo.session.add(visit)
    try:
        await repo.session.flush()
    except IntegrityError as exc:  # a concurrent booking for the same day won
        raise AlreadyBooked(f"She already has a visit on {session.session_date}.") from exc
    overridden = decision.over if override is not None else []
    note = None
    if overridden:
        note = Notice(
            "capacity-overridden",
            f"Booked past capacity by {actor.name}: {_over_text(overridden)}.",
            {"by": actor.name, "stations": ", ".join(s.station_type for s in overridden)},
        )
    elif override is not None:  # nothing to override: booked as anyone would be, not audited
        note = Notice(
            "override-unused", "No station was over capacity: the capacity override was not used."
        )
    record_status(
        repo,
        visit,
        to=VisitStatus.BOOKED,
        actor=actor,
        now=now,
        reason=f"capacity override: {override}"[:500] if overridden else None,
    )
    await repo.session.flush()
    await arrange_escort(
        AssignmentRepository(repo.session),
        visit=visit,
        mother=mother,
        pregnancy=pregnancy,
        actor=actor,
        now=now,
        policy=policy,
    )
    return visit, [w for w in (warning, late, note) if w], overridden


async def _after_the_proposal(
    repo: VisitRepository, pregnancy: Pregnancy, clinic: Clinic, day: date
) -> Notice | None:
    """A warning when the date lies after the range her plan proposes (an exam would close)."""
    guideline = clinic.guideline(pregnancy)
    facts = await care_plan.situation(
        repo.session,
        pregnancy=pregnancy,
        guideline=guideline,
        today=clinic.today,
        enrolled_on=pregnancy.created_at.astimezone(clinic.tz).date(),
        region_flags=clinic.region_flags,
    )
    proposal = plan.propose_next_visit(guideline, facts.situation)
    if proposal is None or day <= proposal.to_date:
        return None
    start, end = proposal.from_date.isoformat(), proposal.to_date.isoformat()
    return Notice(
        "after-proposal",
        f"Her plan proposes {start} to {end} ({proposal.reason}); on {day.isoformat()} that is"
        " missed.",
        {"from": start, "to": end, "day": day.isoformat(), "exams": ", ".join(proposal.exams)},
    )


async def reschedule_visit(
    repo: VisitRepository,
    mothers: MotherRepository,
    *,
    visit: Visit,
    session_id: uuid.UUID,
    preferred: time | None,
    reason: str,
    refuse_outside_window: bool,
    actor: Principal,
    clinic: Clinic,
    policy: Policy,
) -> list[Notice]:
    if visit.status is not VisitStatus.BOOKED:
        raise IllegalTransition(
            f"Only a booked visit can be rescheduled; this one is {visit.status.value}.",
            extra={"current_status": visit.status.value, "requested_status": "booked"},
        )
    mother = await mothers.get(visit.mother_id)
    assert mother is not None
    pregnancy = await _pregnancy(mothers, mother)
    session, slots, asked = await _bookable_slot(
        repo, session_id=session_id, preferred=preferred, clinic=clinic, ignore_visit=visit
    )
    other = await repo.active_visit_on(visit.mother_id, session.session_date)
    if other is not None and other.id != visit.id:
        raise AlreadyBooked(f"She already has a visit on {session.session_date.isoformat()}.")
    ga_day = gestational_age_days(pregnancy.edd_date, session.session_date)
    window, _ = _choose_window(
        clinic.guideline(pregnancy),
        pregnancy,
        day=session.session_date,
        window_code=visit.window_code,
        taken=set(),
    )
    warning = _window_warning(window, ga_day)
    if warning and refuse_outside_window:
        raise OutsideWindow(warning.text)
    her = Her(
        pregnancy,
        window_code=visit.window_code,
        taken=set(),
        refuse_outside_window=refuse_outside_window,
        moving=visit,
    )
    exams, slot, decision = await _capacity_check(
        repo, her=her, session=session, slots=slots, asked=asked, clinic=clinic, override=None
    )
    before = visit.scheduled_at
    visit.session_id = session.id
    visit.visit_date = session.session_date
    visit.slot_start = slot
    visit.scheduled_at = local_datetime(session.session_date, slot, clinic.tz)
    visit.arrival_at = local_datetime(session.session_date, decision.arrival or slot, clinic.tz)
    visit.forecast_exams = exams
    visit.version += 1
    visit.updated_at = clinic.now
    record_status(
        repo,
        visit,
        from_=VisitStatus.BOOKED,
        to=VisitStatus.BOOKED,
        actor=actor,
        now=clinic.now,
        reason=f"rescheduled from {before.astimezone(clinic.tz):%Y-%m-%d %H:%M}: {reason}",
    )
    try:
        await repo.session.flush()
    except IntegrityError as exc:
        raise AlreadyBooked(f"She already has a visit on {session.session_date}.") from exc
    await arrange_escort(
        AssignmentRepository(repo.session),
        visit=visit,
        mother=mother,
        pregnancy=pregnancy,
        actor=actor,
        now=clinic.now,
        policy=policy,
    )
    if visit.accompanying_butler_id is not None:  # same escort, new time or day
        await touch(
            repo.session,
            visit.accompanying_butler_id,
            kind="visit.rescheduled",
            now=clinic.now,
            ref_type="visit",
            ref_id=visit.id,
        )
    return [warning] if warning else []


async def change_status(
    repo: VisitRepository,
    *,
    visit: Visit,
    to: VisitStatus,
    actor: Principal,
    clinic: Clinic,
    reason: str | None = None,
) -> Visit:
    if to is VisitStatus.NO_SHOW and visit.visit_date > clinic.today:
        raise Conflict("A visit in the future cannot be a no-show yet.")
    move_status(repo, visit, to, actor=actor, now=clinic.now, reason=reason)
    if to is VisitStatus.IN_PROGRESS:
        visit.started_at = clinic.now
    elif to is VisitStatus.COMPLETED:
        visit.completed_at = clinic.now
    elif to is VisitStatus.CANCELLED:
        visit.cancelled_at = clinic.now
        visit.cancel_reason = reason
    if to in (VisitStatus.COMPLETED, VisitStatus.CANCELLED):
        await close_visit_entries(
            repo.session, visit, clinic.queue_ctx(actor), reason=f"visit {to.value}"
        )
    if visit.accompanying_butler_id is not None:
        await touch(
            repo.session,
            visit.accompanying_butler_id,
            kind=f"visit.{to.value}",
            now=clinic.now,
            ref_type="visit",
            ref_id=visit.id,
        )
    if to in (VisitStatus.CANCELLED, VisitStatus.NO_SHOW):
        await end_cover(
            AssignmentRepository(repo.session),
            visit=visit,
            reason=f"visit {to.value}",
            now=clinic.now,
        )
    await repo.session.flush()
    return visit


async def sweep_no_shows(
    repo: VisitRepository, *, day: date, actor: Principal, clinic: Clinic
) -> list[uuid.UUID]:
    """Booked visits of sessions that have ended become no-shows (end-of-day sweep)."""
    if day > clinic.today:
        raise invalid_field("date", "the day has not happened yet")
    marked = []
    for visit, session in await repo.booked_until(day):
        ended = session.session_date < clinic.today or session.ends_at <= clinic.local_time
        if ended:
            move_status(
                repo,
                visit,
                VisitStatus.NO_SHOW,
                actor=actor,
                now=clinic.now,
                reason="end-of-day sweep: not checked in",
            )
            await end_cover(
                AssignmentRepository(repo.session),
                visit=visit,
                reason="no-show",
                now=clinic.now,
            )
            await trace_missed_visit(repo.session, visit=visit, now=clinic.now)
            if visit.accompanying_butler_id is not None:
                await touch(
                    repo.session,
                    visit.accompanying_butler_id,
                    kind="visit.no_show",
                    now=clinic.now,
                    ref_type="visit",
                    ref_id=visit.id,
                )
            marked.append(visit.id)
    await repo.session.flush()
    return marked


# Check-in ---------------------------------------------------------------------------------


def _new_order(
    visit: Visit, exam: plan.ExamType, *, source: str, actor: Principal, now: datetime
) -> ExamOrder:
    return ExamOrder(
        order_number=f"ORD-{uuid7().hex[-10:].upper()}",
        visit_id=visit.id,
        pregnancy_id=visit.pregnancy_id,
        exam_code=exam.code,
        exam_name=exam.name,
        fasting=exam.fasting,
        source=source,
        status=ExamOrderStatus.ORDERED,
        ordered_by_name=actor.name,
        created_at=now,
    )


async def _walk_in(
    repo: VisitRepository,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    actor: Principal,
    clinic: Clinic,
) -> Visit:
    """A mother without a booking today takes the first place left in today's sessions."""
    now_local = clinic.local_time
    for candidate in await repo.clinic_sessions(start=clinic.today, end=clinic.today):
        if not candidate.is_open or candidate.ends_at <= now_local:
            continue
        session = await repo.clinic_session(candidate.id, for_update=True)
        assert session is not None
        shape = _shape(session)
        counts = await repo.slot_counts(session.id)
        slot = first_free_slot(shape, counts, earliest=shape.slot_of(now_local))
        if slot is None:
            continue
        guideline = clinic.guideline(pregnancy)
        window, _ = _choose_window(
            guideline,
            pregnancy,
            day=clinic.today,
            window_code=None,
            taken=await _taken_windows(repo, pregnancy),
        )
        visit = Visit(
            mother_id=mother.id,
            pregnancy_id=pregnancy.id,
            session_id=session.id,
            visit_date=clinic.today,
            scheduled_at=max(clinic.now, local_datetime(clinic.today, slot, clinic.tz)),
            slot_start=slot,
            window_code=window.code if window else None,
            status=VisitStatus.CHECKED_IN,
            walk_in=True,
            accompanying_butler_id=None,  # arrange_escort decides
            created_at=clinic.now,
            updated_at=clinic.now,
            version=1,
        )
        repo.session.add(visit)
        await repo.session.flush()
        record_status(
            repo, visit, to=VisitStatus.CHECKED_IN, actor=actor, now=clinic.now, reason="walk-in"
        )
        return visit
    raise SessionFull("No clinic session today has room for a walk-in.")


async def _booking_facts(repo: VisitRepository, visit: Visit, clinic: Clinic) -> dict[str, Any]:
    session = await repo.session_of(visit)
    return {
        "booked_on": visit.visit_date.isoformat(),
        "booked_time": f"{visit.scheduled_at.astimezone(clinic.tz):%H:%M}",
        "visit_id": str(visit.id),
        "session_name": session.name,
    }


async def check_in(
    repo: VisitRepository,
    mothers: MotherRepository,
    *,
    mother: Mother,
    visit_id: uuid.UUID | None,
    extra_exams: list[str],
    actor: Principal,
    clinic: Clinic,
    policy: Policy,
    walk_in: bool = False,
) -> tuple[Visit, bool]:
    """Check her in for today; a repeated scan returns the same visit and creates nothing.

    Without a visit today she becomes a walk-in, except when she is booked on another day:
    that is a 409 naming the day (she may have the wrong day, or the desk the wrong card),
    unless the desk confirms the walk-in (``walk_in``)."""
    locked = await mothers.get(mother.id, for_update=True)  # one check-in of her at a time
    assert locked is not None
    if visit_id is not None:
        visit = await repo.visit(visit_id, for_update=True)
        if visit is None or visit.mother_id != mother.id:
            raise NotFound("No such visit for this mother.")
        if visit.visit_date != clinic.today:
            if not walk_in:
                raise BookedAnotherDay(
                    f"That visit is on {visit.visit_date.isoformat()}, not today. Check her in "
                    'as a walk-in today only if that is meant ("walk_in": true), or reschedule.',
                    extra=await _booking_facts(repo, visit, clinic),
                )
            # The desk confirmed: a walk-in today for the mother of that visit, exactly as by
            # her MRN (the booked visit stays as it is; a rescan finds today's walk-in).
            visit = await repo.active_visit_on(mother.id, clinic.today)
    else:
        visit = await repo.active_visit_on(mother.id, clinic.today)
    if visit is not None and visit.status in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        return visit, True

    pregnancy = await _pregnancy(mothers, mother)
    guideline = clinic.guideline(pregnancy)
    unknown = sorted(set(extra_exams) - set(guideline.exams))
    if unknown:
        raise invalid_field("extra_exams", f"unknown exam codes: {', '.join(unknown)}")

    if visit is None and not walk_in:
        elsewhere = await repo.active_visits_elsewhere(mother.id, clinic.today)
        if elsewhere:
            booked = elsewhere[0]
            raise BookedAnotherDay(
                f"She is booked on {booked.visit_date.isoformat()} "
                f"at {booked.scheduled_at.astimezone(clinic.tz):%H:%M}, not today. Check her in "
                'as a walk-in today only if that is meant ("walk_in": true), or reschedule.',
                extra=await _booking_facts(repo, booked, clinic),
            )
    if visit is None:
        visit = await _walk_in(repo, mother=mother, pregnancy=pregnancy, actor=actor, clinic=clinic)
    else:
        move_status(repo, visit, VisitStatus.CHECKED_IN, actor=actor, now=clinic.now)
    visit.arrived_at = clinic.now

    # Her plan decides, not the visit's window: the booking panel at her first visit here,
    # what is due today and not yet ordered, done, declined or recorded elsewhere.
    planned = await care_plan.exams_to_order(
        repo.session,
        pregnancy=pregnancy,
        guideline=guideline,
        today=clinic.today,
        enrolled_on=pregnancy.created_at.astimezone(clinic.tz).date(),
        region_flags=clinic.region_flags,
    )
    await care_plan.raise_late_actions(
        repo.session, pregnancy=pregnancy, guideline=guideline, today=clinic.today, now=clinic.now
    )
    # NHFPC 2017: her risk is re-assessed at every visit; a doctor is asked to.
    await prompt_reassessment(repo.session, pregnancy=pregnancy, visit=visit, now=clinic.now)
    for code in planned:
        repo.session.add(
            _new_order(
                visit, guideline.exams[code], source="care_plan", actor=actor, now=clinic.now
            )
        )
    for code in dict.fromkeys(extra_exams):
        if code not in planned:
            repo.session.add(
                _new_order(
                    visit, guideline.exams[code], source="added", actor=actor, now=clinic.now
                )
            )
    # Who is on duty and free may have changed since booking: decide again now she is here.
    await arrange_escort(
        AssignmentRepository(repo.session),
        visit=visit,
        mother=mother,
        pregnancy=pregnancy,
        actor=actor,
        now=clinic.now,
        policy=policy,
    )
    await notify_butler(
        repo.session,
        topic="visit.checked_in",
        now=clinic.now,
        butler_id=visit.accompanying_butler_id,
        mother_id=mother.id,
        payload={"visit_id": visit.id, "session_id": visit.session_id},
    )
    try:
        await repo.session.flush()
    except IntegrityError as exc:  # a concurrent scan created her visit first
        raise Conflict(
            "She was checked in by another desk at the same moment; scan again."
        ) from exc
    await route(repo.session, visit, clinic.queue_ctx(actor))
    return visit, False


async def add_exam_order(
    repo: VisitRepository,
    mothers: MotherRepository,
    *,
    visit: Visit,
    exam_code: str,
    actor: Principal,
    clinic: Clinic,
) -> ExamOrder:
    if visit.status not in (VisitStatus.BOOKED, VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        raise Conflict(f"A {visit.status.value} visit takes no new orders.")
    pregnancy = await repo.session.get(Pregnancy, visit.pregnancy_id)
    assert pregnancy is not None
    guideline = clinic.guideline(pregnancy)
    exam = guideline.exams.get(exam_code)
    if exam is None:
        raise invalid_field("exam_code", f"the {guideline.code} table has no exam {exam_code!r}")
    existing = (await repo.orders_of([visit.id]))[visit.id]
    if any(o.exam_code == exam_code and o.status != ExamOrderStatus.CANCELLED for o in existing):
        raise Conflict(f"{exam.name} is already ordered for this visit.")
    order = _new_order(visit, exam, source="added", actor=actor, now=clinic.now)
    repo.session.add(order)
    try:
        await repo.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{exam.name} is already ordered for this visit.") from exc
    await route(repo.session, visit, clinic.queue_ctx(actor))
    return order
