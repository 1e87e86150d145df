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
- **Her hour's wait** (BOOKING_MAX_WAIT_MINUTES, 15 by default). The session's sums let an
  early hour hold more work than its rooms do in it. So the booking also forecasts, at each
  station type she needs, the wait of every mother of the session at the arrival times
  given (``station_waits``: first come, first served, one mother to a room, each room within
  its hours). It is refused when, with her, she or a mother coming at or after her arrival
  would wait longer than the limit, and longer than without her. A booking without a time
  takes the first hour that accepts her; a refused hour is offered the session's nearest
  hours that would take her, then the next sessions. The 15 minutes were chosen on the
  booking-requests day of the simulator (bench/RESULTS.md): 10, 15 and 20 gave a p90 wait of
  14.6, 11.5 and 33.1 minutes with 36, 37 and 36 of 56 requests accepted that morning.
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
from app.visits.domain import SessionShape, free_slots, nearest_first

EPSILON = 1e-6  # float sums of learned minutes: "exactly at capacity" stays accepted
# A room that closes at 11:59:59 closes at noon: the time of day has no 24:00, and clinics
# write the end of a day or session so; times here are on a five-minute grid.
CLOSING_SLACK = 1 / 60
MAX_WAIT_MINUTES = 15.0  # the default of BOOKING_MAX_WAIT_MINUTES
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
    # A refusal for her hour's queue: the longest forecast wait there with her, and the most
    # a booking may make (the session's demand and capacity stay as they are).
    wait_minutes: float | None = None
    max_wait_minutes: float | None = None

    @property
    def load(self) -> float | None:
        """Demand over capacity (1.0: exactly full); None without capacity."""
        if self.capacity_minutes <= 0:
            return None
        return self.demand_minutes / self.capacity_minutes

    @property
    def over(self) -> bool:
        if self.wait_minutes is not None:
            return True
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
        # Each through by the hour's end: the rooms' share of the work from her on, and her
        # own exam in one room (a scan is not shared between two rooms).
        out[i] = max(min(hour_minutes - late_work / servers, hour_minutes - work), early_end)
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


def station_waits(
    hours: SessionHours, rooms: Sequence[Rooms], items: Sequence[tuple[time, float]]
) -> list[float]:
    """The forecast wait of each booking at one station type (``rooms``: its stations), for
    ``items`` (her arrival time, her minutes there) in booking order. The mothers are taken
    in the order they come (at the same time, in booking order), each into the room that can
    start her first and finish her before it closes, as one room takes one mother at a time:
    her wait is from her arrival to that start (inf: no room can see her before it closes).
    A forecast at the learned minutes: it does not know the order the routing will call them
    in, nor what else each mother does first."""
    day = hours.day
    free = [
        [_minutes(day, r.opens_at), _minutes(day, r.closes_at)]
        for r in rooms
        for _ in range(r.servers)
    ]
    order = sorted(range(len(items)), key=lambda i: (items[i][0], i))
    waits = [0.0] * len(items)
    for i in order:
        at, work = _minutes(day, items[i][0]), items[i][1]
        if work <= 0:
            continue
        starts = [
            (max(at, room[0]), n)
            for n, room in enumerate(free)
            if max(at, room[0]) + work <= room[1] + CLOSING_SLACK + EPSILON
        ]
        if not starts:
            waits[i] = math.inf
            continue
        start, n = min(starts)
        waits[i] = start - at
        free[n][0] = start + work
    return waits


def _wait_refusals(
    hours: SessionHours,
    rooms: Sequence[Rooms],
    booked: Sequence[Booked],
    rearranged: Mapping[int, time],
    need: Need,
    slot: time,
    arrival: time,
    types: Iterable[StationLoad],
    max_wait: float,
) -> list[StationLoad]:
    """Her station types where, with her, a mother booked at or after her arrival would wait
    longer than ``max_wait`` minutes, and longer than without her."""
    out: list[StationLoad] = []
    arrivals = [rearranged.get(i, b.arrival or b.slot) for i, b in enumerate(booked)]
    for load in types:
        station_type = load.station_type
        mine = [r for r in rooms if r.station_type == station_type]
        others = [
            (at, b.need.minutes.get(station_type, 0.0))
            for at, b in zip(arrivals, booked, strict=True)
        ]
        with_her = station_waits(hours, mine, [*others, (arrival, need.minutes[station_type])])
        without = station_waits(hours, mine, others)
        after = [i for i, (at, work) in enumerate(others) if at >= arrival and work > 0]
        worst = max([with_her[-1], *(with_her[i] for i in after)])
        before = max([0.0, *(without[i] for i in after)])
        if worst > max_wait + EPSILON and worst > before + EPSILON:
            out.append(
                replace(
                    load,
                    hour=slot,
                    arrival=arrival,
                    wait_minutes=worst,
                    max_wait_minutes=max_wait,
                )
            )
    return out


def decide(
    hours: SessionHours,
    rooms: Sequence[Rooms],
    booked: Sequence[Booked],
    need: Need,
    slot: time,
    *,
    max_wait: float | None = MAX_WAIT_MINUTES,
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
        if longest + CLOSING_SLACK + EPSILON < work:
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
    if max_wait is not None:  # her hour's queue: nobody kept waiting past the limit by her
        over_types = {s.station_type for s in over}
        over += _wait_refusals(
            hours,
            rooms,
            booked,
            rearranged,
            need,
            slot,
            arrival,
            [
                s
                for s in with_her
                if need.minutes.get(s.station_type, 0.0) > 0
                and s.installed
                and s.station_type not in over_types
            ],
            max_wait,
        )
    return Decision(loads=with_her, over=over, arrival=arrival, rearranged=rearranged)


# A day of booking requests, booked by these rules without the service (the simulator) ------


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session as the booking sees it: its hours, places per hour and bookings so far."""

    hours: SessionHours
    per_hour: int
    booked: tuple[Booked, ...] = ()

    @property
    def shape(self) -> SessionShape:
        return SessionShape(self.hours.day, self.hours.starts_at, self.hours.ends_at, self.per_hour)


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


SAME_DAY_HOURS = 2  # of the alternatives offered, at most this many other hours of the session


def book_requests(
    sessions: Sequence[OpenSession],
    rooms: Sequence[Rooms],
    requests: Iterable[Request],
    *,
    alternatives: int = 3,
    max_wait: float | None = MAX_WAIT_MINUTES,
) -> list[Placement]:
    """Book requests in order as the service does: the hour asked for (none asked: the first
    hour with a place whose rules accept her), refused past a station type's capacity or its
    hour's wait; a refused request takes the first of the ``alternatives`` the desk is offered
    (other hours of the same session, the nearest first, then the next sessions)."""
    ordered = sorted(sessions, key=lambda s: (s.hours.day, s.hours.starts_at, s.hours.session_id))
    booked = {s.hours.session_id: list(s.booked) for s in ordered}
    out: list[Placement] = []
    where: dict[int, tuple[uuid.UUID, int]] = {}  # a placement's booking in ``booked``
    for request in requests:
        at = next(i for i, s in enumerate(ordered) if s.hours.session_id == request.session_id)
        asked = ordered[at]

        def attempt(s: OpenSession, slot: time, need: Need = request.need) -> Decision:
            return decide(s.hours, rooms, booked[s.hours.session_id], need, slot, max_wait=max_wait)

        refused: list[StationLoad] = []
        choice: tuple[OpenSession, time, Decision] | None = None
        hours = _free_hours(asked, booked[asked.hours.session_id])
        if request.preferred is not None:
            slot = asked_hour(asked, request.preferred)
            if slot is not None and slot in hours:
                decision = attempt(asked, slot)
                if decision.accepted:
                    choice = (asked, slot, decision)
                else:
                    refused = decision.over
            # The desk is offered the nearest hours that accept her: the first is taken.
            hours = nearest_first(hours, slot) if slot is not None else hours
            for other in hours if choice is None else []:
                decision = attempt(asked, other)
                if decision.accepted:
                    choice = (asked, other, decision)
                    break
        else:
            for slot in hours:
                decision = attempt(asked, slot)
                if decision.accepted:
                    choice = (asked, slot, decision)
                    break
                refused = refused or decision.over
        for s in ordered[at + 1 : at + 1 + alternatives] if choice is None else []:
            for slot in _free_hours(s, booked[s.hours.session_id]):
                decision = attempt(s, slot)
                if decision.accepted:
                    choice = (s, slot, decision)
                    break
            if choice is not None:
                break
        if choice is None:
            out.append(Placement(request, None, None, None, False, refused))
            continue
        s, slot, decision = choice
        in_session = booked[s.hours.session_id]
        for i, new_at in decision.rearranged.items():
            in_session[i] = Booked(
                in_session[i].need, in_session[i].slot, new_at, in_session[i].ref
            )
        where[len(out)] = (s.hours.session_id, len(in_session))
        in_session.append(Booked(request.need, slot, decision.arrival))
        moved = s is not asked
        out.append(Placement(request, s.hours.session_id, slot, decision.arrival, moved, refused))
    # Later bookings arrange their hours again: each placement with its hour's final arrival.
    return [
        replace(p, arrival=booked[where[n][0]][where[n][1]].arrival) if n in where else p
        for n, p in enumerate(out)
    ]


def asked_hour(session: OpenSession, preferred: time) -> time | None:
    return session.shape.slot_of(preferred)


def _free_hours(session: OpenSession, booked: Sequence[Booked]) -> list[time]:
    """The session's hours with a place, in order."""
    return free_slots(session.shape, dict(Counter(b.slot for b in booked)))
