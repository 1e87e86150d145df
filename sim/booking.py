"""A day of booking requests, booked through the service's own rules (issue 19, point 3).

A scenario may give the day's booking requests instead of arrivals. The simulator replays the
day twice on the same mothers (the same numbers, so the same service minutes and the same
lateness for each):

- **as requested**: every request comes at the time she wished, as if the desk took them all;
- **booked by the service**: the requests are booked in order by ``app.visits.capacity``'s
  ``book_requests`` into the scenario's session, with the following days' sessions (the same
  hours) as the alternatives the desk offers; those the day's session accepts come at the
  arrival time the rules gave them, the others are counted (with whether another session was
  offered) and do not come. Walk-ins come unbooked in both.

The forecast the booking reads is the service's: the default catalogue with its service minutes
learned as the scenario's means (an exam's own mean, else its station type's). The rooms are the
scenario's stations over the session's hours: a room that closes early (a breakdown) is not
known when the day is booked.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from app.queues.domain import Catalogue
from app.visits.capacity import (
    OpenSession,
    Placement,
    Request,
    Rooms,
    SessionHours,
    asked_hour,
    book_requests,
    need_of,
)
from sim.simulator import (
    DAY,
    Arrival,
    BookingRequest,
    Scenario,
    VisitMix,
    _local,
    scratch_engine,
)

AS_REQUESTED = "as requested"
BOOKED = "booked by the service"


@dataclass
class BookedDay:
    """One replay of a day of booking requests: who comes, and what the booking said."""

    variant: str  # AS_REQUESTED or BOOKED
    requests: int  # booking requests (walk-ins not counted)
    walk_ins: int
    accepted: int  # booked into the day asked for (as requested: all of them)
    refused: int
    offered: int  # refused requests booked into another session the desk offered
    arrivals: list[Arrival] = field(repr=False, default_factory=list)
    # accepted into the day, but at another hour than the one asked (the nearest the desk
    # offered: the hour asked was full, or would have kept a mother waiting too long)
    other_hour: int = 0

    @property
    def refused_unoffered(self) -> int:
        return self.refused - self.offered


def requests_of(scenario: Scenario) -> list[tuple[int, BookingRequest]]:
    """The requests one by one (``count`` expanded), in booking order, numbered from 1."""
    out: list[tuple[int, BookingRequest]] = []
    for request in scenario.booking_requests or []:
        for _ in range(request.count):
            out.append((len(out) + 1, request))
    return out


def lateness(scenario: Scenario, number: int) -> timedelta:
    """Her minutes early or late, drawn from the seed and her number (the same in both days)."""
    rng = random.Random(f"{scenario.seed}:late:{number}")  # noqa: S311 - a reproducible simulation
    return timedelta(minutes=rng.gauss(0, scenario.booking.punctuality_sd_minutes))


def _arrival(
    scenario: Scenario, number: int, request: BookingRequest, scheduled: datetime, walk_in: bool
) -> Arrival:
    opens, closes = _local(scenario.opens_at), _local(scenario.closes_at)
    at = scheduled if walk_in else scheduled + lateness(scenario, number)
    at = min(max(at, opens - timedelta(minutes=20)), closes - timedelta(minutes=30))
    mix = VisitMix(weight=1, gestational_week=request.gestational_week, exams=request.exams)
    return Arrival(number, at, scheduled, walk_in, mix)


def as_requested(scenario: Scenario) -> BookedDay:
    """Every request comes at the time she wished."""
    numbered = requests_of(scenario)
    arrivals = [_arrival(scenario, n, r, _local(r.wished_at), r.walk_in) for n, r in numbered]
    walk_ins = sum(1 for _, r in numbered if r.walk_in)
    requests = len(numbered) - walk_ins
    return BookedDay(
        AS_REQUESTED,
        requests,
        walk_ins,
        requests,
        0,
        0,
        sorted(arrivals, key=lambda a: (a.at, a.number)),
    )


def learned(catalogue: Catalogue, scenario: Scenario) -> Catalogue:
    """The catalogue with the service minutes the service would have learned on such days."""
    rules = {}
    for code, rule in catalogue.rules.items():
        dist = scenario.service_minutes.get(code) or scenario.service_minutes.get(rule.station_type)
        rules[code] = rule if dist is None else replace(rule, service_minutes=dist.mean)
    return Catalogue(rules=rules)


def sessions_of(scenario: Scenario) -> list[OpenSession]:
    """The scenario's session, then as many following days' sessions (the same hours) as the
    desk offers alternatives."""
    return [
        OpenSession(
            SessionHours(
                uuid.UUID(int=k + 1),
                DAY + timedelta(days=k),
                scenario.opens_at,
                scenario.closes_at,
            ),
            scenario.booking.per_hour,
        )
        for k in range(1 + scenario.booking.alternatives)
    ]


def rooms_of(scenario: Scenario) -> list[Rooms]:
    return [
        Rooms(s.type, s.servers, scenario.opens_at, scenario.closes_at) for s in scenario.stations
    ]


def book(scenario: Scenario, catalogue: Catalogue) -> list[Placement]:
    """The requests (not the walk-ins) through the service's ``book_requests``, in order; each
    placement holds its hour's final arrival time (a later booking in the same hour arranges
    the hour again)."""
    forecast = learned(catalogue, scenario)
    sessions = sessions_of(scenario)
    today = sessions[0].hours.session_id
    requests = [
        Request(str(n), today, need_of(r.exams, forecast), r.wished_at)
        for n, r in requests_of(scenario)
        if not r.walk_in
    ]
    return book_requests(
        sessions, rooms_of(scenario), requests, alternatives=scenario.booking.alternatives
    )


def booked_by_the_service(scenario: Scenario, catalogue: Catalogue) -> BookedDay:
    """The accepted bookings at their arrival times, and the walk-ins; the refused counted."""
    placements = book(scenario, catalogue)
    today = uuid.UUID(int=1)
    final = {
        int(p.request.key): p.arrival or p.slot
        for p in placements
        if p.session_id == today and p.slot is not None
    }
    numbered = requests_of(scenario)
    arrivals = [
        _arrival(scenario, n, r, _local(final[n]), False) for n, r in numbered if n in final
    ] + [_arrival(scenario, n, r, _local(r.wished_at), True) for n, r in numbered if r.walk_in]
    refused = [p for p in placements if p.session_id != today]
    asked = sessions_of(scenario)[0]
    other_hour = sum(
        1
        for p in placements
        if p.session_id == today
        and p.request.preferred is not None
        and p.slot != asked_hour(asked, p.request.preferred)
    )
    return BookedDay(
        BOOKED,
        len(placements),
        sum(1 for _, r in numbered if r.walk_in),
        len(placements) - len(refused),
        len(refused),
        sum(1 for p in refused if p.session_id is not None),
        sorted(arrivals, key=lambda a: (a.at, a.number)),
        other_hour,
    )


def catalogue_of(template: Path) -> Catalogue:
    """The default catalogue, as a freshly migrated database holds it."""
    import asyncio

    from app.queues.catalogue import load_catalogue
    from app.wiring import session_factory

    async def load() -> Catalogue:
        engine = scratch_engine(f"sqlite+aiosqlite:///{template}")
        try:
            async with session_factory(engine)() as session:
                return await load_catalogue(session)
        finally:
            await engine.dispose()

    return asyncio.run(load())


def days_of(scenario: Scenario, template: Path) -> list[BookedDay]:
    """Both replays of a day of booking requests."""
    return [as_requested(scenario), booked_by_the_service(scenario, catalogue_of(template))]
