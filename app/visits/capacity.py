"""A session's work per station type, and the booking rules that keep it within the rooms.

Pure: the booking (``service.book_visit``), the forecast the desk reads and the simulator all
call these functions on plain values, so that a day booked by the simulator follows the same
rules as one booked at the desk.

- **A mother's need.** The exams her care plan orders on the visit's day (the code check-in
  uses, ``careplan.service.exams_to_order``) become services as routing makes them: each step of
  an exam (the OGTT has three draws) at its station type, the steps due together at one station
  type done in one service that takes as long as its longest exam (one blood draw fills every
  tube, ``queues.routing.expected_minutes``), each exam as long as the catalogue's learned
  service minutes (its default until learned).
- **A session's capacity** at a station type: every room of every station of that type times
  the minutes the station is open within the session's hours. A station type with stations but
  none open in those hours has no capacity: her exam there cannot be done in that session. An
  exam type whose station type has no station at all is not counted (nothing to check).
- **The rule.** A booking is refused when, with her, the work at a station type she needs would
  exceed its capacity (exactly at capacity is accepted), and when in her hour no room of a type
  she needs is open from her arrival time on, or the longest time one stays open after her
  arrival is shorter than her work there. An admin may override, with a reason.
- **Her arrival time**, inside her booked hour: the hour's bottleneck is the station type she
  needs with the highest load, counted in the rooms open in that hour. Each booking arranges
  the hour again (the service writes the others' new times in the same transaction, under the
  session's row lock): the mothers who come fasting (a fasting exam, or a timed test such as
  the OGTT) take the hour's first times at the bottleneck, in booking order, each when the
  bottleneck's rooms are free of the fasting ones before her; the others, from the hour's end
  backwards in booking order, so that each is through by its end, and never before every
  fasting one is through. So no mother who does not come fasting is asked before a fasting
  one of her hour, whatever order they were booked in (an overfull hour gives its last
  arrival time to all it cannot place, fasting or not).

Sessions that overlap on the same day share their stations' rooms; each session's forecast
counts only its own bookings against the rooms in its hours (a known simplification).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from app.queues.domain import Catalogue
from app.visits.domain import SessionShape, first_free_slot

EPSILON = 1e-6  # float sums of learned minutes: "exactly at capacity" stays accepted
ARRIVAL_STEP = 5  # minutes: arrival times are given on a five-minute grid
HOUR = 60


@dataclass(frozen=True, slots=True)
class Rooms:
    """A station as capacity counts it: its type, rooms and opening hours."""

    station_type: str
    servers: int
    opens_at: time
    closes_at: time


@dataclass(frozen=True, slots=True)
class Need:
    """One mother's forecast work at one session: minutes per station type."""

    minutes: Mapping[str, float]
    early: bool  # she comes fasting (a fasting exam or a timed test): early in her hour
    exams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Booked:
    """A booking already in the session: her need, her hour and her arrival time."""

    need: Need
    slot: time
    arrival: time | None = None
    ref: uuid.UUID | None = None  # the caller's key for it (the service: the visit's id)


@dataclass(frozen=True, slots=True)
class SessionHours:
    session_id: uuid.UUID
    day: date
    starts_at: time
    ends_at: time


@dataclass(frozen=True, slots=True)
class StationLoad:
    station_type: str
    servers: int  # rooms open during the session
    demand_minutes: float
    capacity_minutes: float
    installed: bool = True  # the clinic has stations of this type (open then or not)
    hour: time | None = (
        None  # the hour it is for (her arrival to the rooms' closing); None: the session
    )
    arrival: time | None = None  # with ``hour``: her arrival time

    @property
    def load(self) -> float | None:
        """Demand over capacity (1.0: exactly full); None without capacity."""
        if self.capacity_minutes <= 0:
            return None
        return self.demand_minutes / self.capacity_minutes

    @property
    def over(self) -> bool:
        return self.installed and self.demand_minutes > self.capacity_minutes + EPSILON


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules say of one booking request into one session."""

    loads: list[StationLoad]  # the session's loads with her
    over: list[StationLoad] = field(default_factory=list)  # the types she pushes past capacity
    arrival: time | None = None
    # The hour arranged again with her: the new arrival of each booking of the hour (by its
    # index in ``booked``) whose arrival changes.
    rearranged: dict[int, time] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.over


def need_of(exam_codes: Iterable[str], catalogue: Catalogue) -> Need:
    """Her work per station type from her exams (codes the catalogue lacks need no station)."""
    services: dict[tuple[str, int], float] = {}
    early = False
    codes = tuple(dict.fromkeys(exam_codes))
    for code in codes:
        rule = catalogue.rule(code)
        if rule is None:
            continue
        early = early or rule.fasting or len(rule.steps) > 1
        for step in rule.steps:
            key = (rule.station_type, step.offset_minutes)
            services[key] = max(services.get(key, 0.0), rule.service_minutes)
    minutes: dict[str, float] = defaultdict(float)
    for (station_type, _), value in services.items():
        minutes[station_type] += value
    return Need(minutes=dict(minutes), early=early, exams=codes)


def _minutes(day: date, at: time) -> float:
    return (datetime.combine(day, at) - datetime.combine(day, time())).total_seconds() / 60


def capacity(hours: SessionHours, rooms: Iterable[Rooms]) -> dict[str, tuple[int, float]]:
    """Per station type: the rooms open during the session and their minutes in its hours
    (every installed type, with none when no station of it is open then)."""
    start, end = _minutes(hours.day, hours.starts_at), _minutes(hours.day, hours.ends_at)
    out: dict[str, tuple[int, float]] = {}
    for r in rooms:
        overlap = min(end, _minutes(hours.day, r.closes_at)) - max(
            start, _minutes(hours.day, r.opens_at)
        )
        servers, minutes = out.get(r.station_type, (0, 0.0))
        if overlap <= 0:
            out[r.station_type] = (servers, minutes)
            continue
        out[r.station_type] = (servers + r.servers, minutes + r.servers * overlap)
    return out


def loads(hours: SessionHours, rooms: Iterable[Rooms], needs: Iterable[Need]) -> list[StationLoad]:
    """The session's forecast per station type: every type with rooms or with demand."""
    cap = capacity(hours, rooms)
    demand: dict[str, float] = defaultdict(float)
    for need in needs:
        for station_type, minutes in need.minutes.items():
            demand[station_type] += minutes
    return [
        StationLoad(
            station_type=t,
            servers=cap.get(t, (0, 0.0))[0],
            demand_minutes=demand.get(t, 0.0),
            capacity_minutes=cap.get(t, (0, 0.0))[1],
            installed=t in cap,
        )
        for t in sorted(set(cap) | set(demand))
    ]


def bottleneck(with_her: Sequence[StationLoad], need: Need) -> StationLoad | None:
    """The station type she needs with the highest load (ties: the first by name)."""
    mine = [s for s in with_her if need.minutes.get(s.station_type, 0) > 0 and s.load is not None]
    if not mine:
        return None
    return min(mine, key=lambda s: (-(s.load or 0.0), s.station_type))


def _hour_end(hours: SessionHours, slot: time) -> float:
    return min(_minutes(hours.day, slot) + HOUR, _minutes(hours.day, hours.ends_at))


def rooms_in_hour(hours: SessionHours, rooms: Iterable[Rooms], slot: time) -> dict[str, int]:
    """Per station type: the rooms open at some time in the hour ``slot`` (of the session)."""
    start, end = _minutes(hours.day, slot), _hour_end(hours, slot)
    out: dict[str, int] = defaultdict(int)
    for r in rooms:
        if min(end, _minutes(hours.day, r.closes_at)) > max(start, _minutes(hours.day, r.opens_at)):
            out[r.station_type] += r.servers
    return dict(out)


def hour_arrivals(
    *, hour_minutes: float, servers: int, works: Sequence[tuple[float, bool]]
) -> list[int]:
    """Minutes after the hour's start each mother of the hour is asked to come (five-minute
    grid), for ``works``: her bottleneck minutes and whether she comes fasting, in booking
    order. The fasting ones from the hour's start, each when those before her are through the
    rooms; the others from the hour's end backwards (the first booked the latest), never
    before every fasting one is through; an overfull hour: its last arrival time."""
    last = float(max(int(hour_minutes) - ARRIVAL_STEP, 0))
    if servers <= 0:
        return [0 for _ in works]
    out: list[float] = []
    early_end = 0.0
    for work, early in works:
        out.append(early_end if early else 0.0)
        if early:
            early_end += work / servers
    late_work = 0.0
    for i, (work, early) in enumerate(works):
        if early:
            continue
        late_work += work
        out[i] = max(hour_minutes - late_work / servers, early_end)
    return [int(math.floor(min(max(at, 0.0), last) / ARRIVAL_STEP) * ARRIVAL_STEP) for at in out]


def _open_until(
    hours: SessionHours, rooms: Iterable[Rooms], station_type: str, slot: time
) -> float:
    """When the last room of ``station_type`` open in the hour ``slot`` closes (minutes)."""
    start, end = _minutes(hours.day, slot), _hour_end(hours, slot)
    return max(
        (
            _minutes(hours.day, r.closes_at)
            for r in rooms
            if r.station_type == station_type
            and min(end, _minutes(hours.day, r.closes_at))
            > max(start, _minutes(hours.day, r.opens_at))
        ),
        default=start,
    )


def open_after(
    hours: SessionHours, rooms: Iterable[Rooms], station_type: str, arrival: time, slot: time
) -> tuple[int, float]:
    """The rooms of ``station_type`` open in her hour from her arrival on, and the longest time
    one of them stays open after her arrival (within the session)."""
    at, hour_end = _minutes(hours.day, arrival), _hour_end(hours, slot)
    session_end = _minutes(hours.day, hours.ends_at)
    servers, longest = 0, 0.0
    for r in rooms:
        if r.station_type != station_type:
            continue
        opens, closes = _minutes(hours.day, r.opens_at), _minutes(hours.day, r.closes_at)
        if min(hour_end, closes) <= max(at, opens):
            continue  # not open in her hour after she comes
        servers += r.servers
        longest = max(longest, min(closes, session_end) - max(at, opens))
    return servers, longest


def decide(
    hours: SessionHours,
    rooms: Sequence[Rooms],
    booked: Sequence[Booked],
    need: Need,
    slot: time,
) -> Decision:
    """The rules for one request into one session, at the hour ``slot``: her loads, the types
    she would push past capacity or that are not open long enough in her hour after she comes
    (refused unless overridden), her arrival time and the hour's other arrivals arranged
    again with her."""
    with_her = loads(hours, rooms, [b.need for b in booked] + [need])
    over = [s for s in with_her if need.minutes.get(s.station_type, 0) > 0 and s.over]
    in_hour = rooms_in_hour(hours, rooms, slot)
    hour_minutes = _hour_end(hours, slot) - _minutes(hours.day, slot)
    mine = [s for s in with_her if need.minutes.get(s.station_type, 0) > 0 and s.load is not None]
    # The hour's bottleneck: her type with the highest load, among those with rooms in the hour.
    neck = min(
        (s for s in mine if in_hour.get(s.station_type, 0) > 0),
        key=lambda s: (-(s.load or 0.0), s.station_type),
        default=None,
    )
    arrival = slot
    rearranged: dict[int, time] = {}
    start = datetime.combine(hours.day, slot)
    if neck is not None:
        same_hour = [i for i, b in enumerate(booked) if b.slot == slot]
        offsets = hour_arrivals(
            # Her hour ends for her bottleneck when its last room of the hour closes.
            hour_minutes=min(
                hour_minutes,
                _open_until(hours, rooms, neck.station_type, slot) - _minutes(hours.day, slot),
            ),
            servers=in_hour[neck.station_type],
            works=[
                (booked[i].need.minutes.get(neck.station_type, 0.0), booked[i].need.early)
                for i in same_hour
            ]
            + [(need.minutes[neck.station_type], need.early)],
        )
        arrival = (start + timedelta(minutes=offsets[-1])).time()
        for i, offset in zip(same_hour, offsets, strict=False):
            at = (start + timedelta(minutes=offset)).time()
            if booked[i].arrival != at:
                rearranged[i] = at
    over_types = {s.station_type for s in over}
    for s in with_her:  # her hour: a room open after she comes, long enough for her work
        work = need.minutes.get(s.station_type, 0.0)
        if work <= 0 or not s.installed or s.station_type in over_types:
            continue
        servers, longest = open_after(hours, rooms, s.station_type, arrival, slot)
        if longest + EPSILON < work:
            over.append(
                StationLoad(
                    station_type=s.station_type,
                    servers=servers,
                    demand_minutes=work,
                    capacity_minutes=longest,
                    hour=slot,
                    arrival=arrival,
                )
            )
    return Decision(loads=with_her, over=over, arrival=arrival, rearranged=rearranged)


# A day of booking requests, booked by these rules without the service (the simulator) ------


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session as the booking sees it: its hours, places per hour and bookings so far."""

    hours: SessionHours
    per_hour: int
    booked: tuple[Booked, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    key: str  # the caller's name for it
    session_id: uuid.UUID  # the session asked for
    need: Need
    preferred: time | None = None  # the hour asked for (None: the first with a place)


@dataclass(frozen=True, slots=True)
class Placement:
    request: Request
    session_id: uuid.UUID | None  # None: no session (asked or offered) had room
    slot: time | None
    arrival: time | None
    moved: bool  # booked into the first other session offered, not the one asked for
    refused: list[StationLoad]  # why the session asked for said no (empty: it said yes)


def book_requests(
    sessions: Sequence[OpenSession],
    rooms: Sequence[Rooms],
    requests: Iterable[Request],
    *,
    alternatives: int = 3,
) -> list[Placement]:
    """Book requests in order as the service does: the hour asked for (or the first with a
    place), refused past a station type's capacity; a refused request takes the first of the
    next ``alternatives`` sessions with a place and room (what the desk is offered)."""
    ordered = sorted(sessions, key=lambda s: (s.hours.day, s.hours.starts_at, s.hours.session_id))
    booked = {s.hours.session_id: list(s.booked) for s in ordered}
    out: list[Placement] = []
    where: dict[int, tuple[uuid.UUID, int]] = {}  # a placement's booking in ``booked``
    for request in requests:
        at = next(i for i, s in enumerate(ordered) if s.hours.session_id == request.session_id)
        refused: list[StationLoad] = []
        placed: Placement | None = None
        for s in ordered[at : at + 1 + alternatives]:
            first = s.hours.session_id == request.session_id
            slot = _free_hour(s, booked[s.hours.session_id], request.preferred if first else None)
            if slot is None:
                continue
            decision = decide(s.hours, rooms, booked[s.hours.session_id], request.need, slot)
            if not decision.accepted:
                if first:
                    refused = decision.over
                continue
            in_session = booked[s.hours.session_id]
            for i, new_at in decision.rearranged.items():
                in_session[i] = Booked(
                    in_session[i].need, in_session[i].slot, new_at, in_session[i].ref
                )
            where[len(out)] = (s.hours.session_id, len(in_session))
            in_session.append(Booked(request.need, slot, decision.arrival))
            placed = Placement(
                request, s.hours.session_id, slot, decision.arrival, not first, refused
            )
            break
        out.append(placed or Placement(request, None, None, None, False, refused))
    # Later bookings arrange their hours again: each placement with its hour's final arrival.
    return [
        replace(p, arrival=booked[where[n][0]][where[n][1]].arrival) if n in where else p
        for n, p in enumerate(out)
    ]


def _free_hour(
    session: OpenSession, booked: Sequence[Booked], preferred: time | None
) -> time | None:
    """The hour asked for if it has a place, else (none asked) the first hour with one."""
    shape = SessionShape(
        session.hours.day, session.hours.starts_at, session.hours.ends_at, session.per_hour
    )
    counts = Counter(b.slot for b in booked)
    if preferred is not None:
        slot = shape.slot_of(preferred)
        return slot if slot is not None and counts[slot] < shape.per_hour else None
    return first_free_slot(shape, dict(counts))
