"""The clinic-day simulator: a day of arrivals and exams replayed in seconds on a simulated clock.

It drives the service's own queue code from outside it (``app.queues``: routing, station
operations, the glucose drink) against a scratch SQLite database migrated like production,
and compares routing strategies on the same arrivals:
``fixed`` (one exam at a time in catalogue order, first come first served) and ``parallel``
(the project's routing). Stations are the scenario's; the exam catalogue is the default one.

Every mother walks to a station the moment she is called (she is on her butler's phone) and
the exam starts at once; service times are drawn from the scenario.

A mother's waiting time is the part of her day the clinic's queues take: her time in the
clinic, from arrival to the end of her last exam, less every minute in which she was being
examined or was under a timed test (an OGTT, from its first draw to its last). Each minute
counts once: three places held at once are one wait, and a queue she stands in while her OGTT
runs costs her nothing, because the test keeps her there anyway. Her idle time, the same but
with the OGTT's hours counted as idle, is shown beside it, with the floor that the timed draws
set on it whatever the routing (docs/queues.md, "Measuring a day").
"""

from __future__ import annotations

import heapq
import json
import queue
import random
import shutil
import statistics
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.principal import Principal, PrincipalKind
from app.core.settings import OgttBetweenDraws, Routing
from app.mothers.domain import gestational_age_days
from app.mothers.models import Mother, Pregnancy
from app.queues.catalogue import load_catalogue
from app.queues.domain import GLUCOSE_DRINK, REST, BetweenDraws, Catalogue
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.operations import (
    call_next,
    close_station,
    entry_by_id,
    finish,
    start,
    station_by_code,
)
from app.queues.policy import Ctx, QueuePolicy
from app.queues.routing import route
from app.queues.timing import record_timing_start
from app.visits.models import Visit
from app.wiring import session_factory
from sim import optimum
from sim.population import checked_in_visit, clinic_session

if TYPE_CHECKING:
    from sim.booking import BookedDay

DAY = date(2026, 12, 1)
TZ = ZoneInfo("Asia/Shanghai")
OVERTIME = timedelta(hours=4)  # the simulation stops this long after closing at the latest
BIN_MINUTES = 30


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with what is wrong in it."""


class Dist(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: float = Field(gt=0, le=480)
    sd: float = Field(default=0, ge=0, le=240)


class StationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z][A-Z0-9]{0,9}$")
    type: str = Field(min_length=2, max_length=30)
    servers: int = Field(default=1, ge=1, le=20)
    closes_at: time | None = Field(default=None, description="closes early (a room breaks down)")


class Arrivals(BaseModel):
    model_config = ConfigDict(extra="forbid")
    booked_per_hour: float = Field(ge=0, le=120)
    punctuality_sd_minutes: float = Field(default=0, ge=0, le=120)
    walk_ins: int = Field(default=0, ge=0, le=1000)


class VisitMix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(gt=0)
    gestational_week: int = Field(ge=4, le=42)
    exams: list[str] = Field(min_length=1)


class BookingRequest(BaseModel):
    """One mother asking for a visit on the scenario's day (issue 19, point 3): booked through
    the service's own rules (sim/booking.py) she gets the day and an arrival time, or a refusal
    with another session; the day booked so is compared with the day "as requested" (every
    request coming at her wished time)."""

    model_config = ConfigDict(extra="forbid")
    wished_at: time = Field(description="the time she asks for (her arrival if taken as asked)")
    gestational_week: int = Field(ge=4, le=42)
    exams: list[str] = Field(
        min_length=1,
        description="the exam codes her visit needs (the care plan's, which needs her record, "
        "is not derived here)",
    )
    walk_in: bool = Field(default=False, description="turns up unbooked at wished_at")
    count: int = Field(default=1, ge=1, le=200, description="this many identical requests")


class BookingRules(BaseModel):
    """How a day of booking requests is booked and kept."""

    model_config = ConfigDict(extra="forbid")
    per_hour: int = Field(default=12, ge=1, le=200, description="the session's places per hour")
    alternatives: int = Field(
        default=3, ge=0, le=10, description="following days' sessions (the same hours) offered"
    )
    punctuality_sd_minutes: float = Field(default=0, ge=0, le=120)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    seed: int = 1
    opens_at: time
    closes_at: time
    stations: list[StationSpec] = Field(min_length=1)
    service_minutes: dict[str, Dist] = Field(
        description="per station type, or per exam code (an exam's own overrides its station's)"
    )
    arrivals: Arrivals | None = Field(default=None, description="none: booking_requests")
    visit_mix: list[VisitMix] | None = Field(default=None, min_length=1)
    between_draws: list[str] = Field(
        default=["rest", "any"],
        min_length=1,
        description="the OGTT_BETWEEN_DRAWS settings to compare (rest, any, listed:<codes>); "
        "a day without a timed exam runs under the first only",
    )
    overloaded: bool = Field(
        default=False,
        description="booked past a station type's capacity on purpose: judged on fairness "
        "(the routing's p90 wait no worse than fixed order's), not on the optimum's 1.5x",
    )
    booking_requests: list[BookingRequest] | None = Field(
        default=None,
        min_length=1,
        description="the day's booking requests, in booking order, instead of arrivals and "
        "visit_mix: replayed as requested and as booked through the service's rules",
    )
    booking: BookingRules = Field(default_factory=BookingRules)
    glucose_drink_minutes: float = Field(
        default=2,
        ge=0,
        le=30,
        description="from the end of the OGTT's fasting draw to the start of the drink, which "
        "the lab then records (its draws count from it)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        codes = [s.code for s in self.stations]
        if len(set(codes)) != len(codes):
            raise ValueError("station codes must be unique")
        for value in self.between_draws:
            between_setting(value)
        types = {s.type for s in self.stations}
        missing = sorted(types - set(self.service_minutes))
        if missing:
            raise ValueError(f"service_minutes has no entry for station types {missing}")
        given = (self.arrivals is not None, self.visit_mix is not None)
        if given != ((False, False) if self.booking_requests is not None else (True, True)):
            raise ValueError("give arrivals and visit_mix, or booking_requests (not both)")
        for r in self.booking_requests or []:
            if not r.walk_in and not self.opens_at <= r.wished_at < self.closes_at:
                raise ValueError(f"booking_requests: {r.wished_at} is outside the session")
        return self

    def exam_lists(self) -> list[list[str]]:
        """Every visit's exams: the visit mix's, or the booking requests'."""
        return [m.exams for m in self.visit_mix or []] + [
            r.exams for r in self.booking_requests or []
        ]


def between_setting(value: str) -> BetweenDraws:
    """``rest``, ``any`` or ``listed:us_obstetric,nst``, as OGTT_BETWEEN_DRAWS(_EXAMS) read."""
    mode, _, exams = value.partition(":")
    try:
        return BetweenDraws.parse(OgttBetweenDraws(mode), exams)
    except ValueError as exc:
        raise ValueError(f"between_draws: {value!r} is not rest, any or listed:<codes>") from exc


def between_label(between: BetweenDraws) -> str:
    if between.mode is OgttBetweenDraws.LISTED:
        return f"listed: {', '.join(sorted(between.exams)) or 'none'}"
    return between.mode.value


def load_scenario(path: Path) -> Scenario:
    try:
        return Scenario.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such file") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from exc


@dataclass
class StrategyResult:
    strategy: str
    mothers: int
    finished_by_closing: int
    finished: int
    # Waiting: her minutes in the clinic outside every exam, a timed test (the OGTT) counted
    # as one exam from its first draw to its last. Each minute of her day counts once.
    wait_mean: float
    wait_p50: float
    wait_p90: float
    visit_mean: float
    idle_mean: float  # her minutes outside the exams themselves, the OGTT's hours included
    idle_floor_mean: float  # the idle time her timed draws force whatever the routing
    utilisation: dict[str, float]
    utilisation_by_bin: dict[str, list[float]]
    waits: list[float] = field(repr=False)
    violations: list[str]
    steps_total: int
    steps_done: int
    # When each service began, seconds after opening, by "number:station type:offset": the
    # optimum's search starts from the routing's own day (not written to the JSON).
    schedule: dict[str, float] = field(repr=False, default_factory=dict)
    rooms: dict[str, str] = field(repr=False, default_factory=dict)  # the same keys: station


@dataclass
class Arrival:
    number: int
    at: datetime
    scheduled: datetime
    walk_in: bool
    mix: VisitMix


def _local(t: time) -> datetime:
    return datetime.combine(DAY, t, tzinfo=TZ)


def arrivals_of(scenario: Scenario) -> list[Arrival]:
    """The day's mothers: booked ones spread over the hours (early or late), then walk-ins;
    a day of booking requests: every request at her wished time (sim/booking.py)."""
    if scenario.booking_requests is not None:
        from sim.booking import as_requested

        return as_requested(scenario).arrivals
    assert scenario.arrivals is not None  # the validator's
    assert scenario.visit_mix is not None
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible simulation, not secrets
    opens, closes = _local(scenario.opens_at), _local(scenario.closes_at)
    minutes = (closes - opens).total_seconds() / 60
    booked = int(scenario.arrivals.booked_per_hour * minutes / 60)
    weights = [m.weight for m in scenario.visit_mix]
    out = []
    last_booking = closes - timedelta(minutes=60)  # nobody is booked in the last hour
    span = max(1.0, (last_booking - opens).total_seconds() / 60)
    for i in range(booked):
        scheduled = opens + timedelta(minutes=span * i / max(booked, 1))
        early_late = rng.gauss(0, scenario.arrivals.punctuality_sd_minutes)
        at = min(
            max(scheduled + timedelta(minutes=early_late), opens - timedelta(minutes=20)),
            closes - timedelta(minutes=30),
        )
        out.append(
            Arrival(i + 1, at, scheduled, False, rng.choices(scenario.visit_mix, weights)[0])
        )
    for j in range(scenario.arrivals.walk_ins):
        at = opens + timedelta(minutes=rng.uniform(0, span))
        out.append(
            Arrival(booked + j + 1, at, at, True, rng.choices(scenario.visit_mix, weights)[0])
        )
    return sorted(out, key=lambda a: (a.at, a.number))


def service_minutes(
    scenario: Scenario, number: int, exams: tuple[str, ...], station_type: str, k: int
) -> float:
    """The minutes mother ``number``'s ``k``-th service of these exams takes: drawn from the
    scenario's seed, her number and the exams (common random numbers), so that every strategy
    and the optimum see the same minutes for the same service. Several exams served together
    take the longest one's."""
    key = "+".join(sorted(exams)) or station_type
    rng = random.Random(f"{scenario.seed}:{number}:{key}:{k}")  # noqa: S311 - a simulation
    dists = [scenario.service_minutes[c] for c in exams if c in scenario.service_minutes]
    dist = max(dists, key=lambda d: d.mean) if dists else scenario.service_minutes[station_type]
    return max(1.0, rng.gauss(dist.mean, dist.sd))


def scratch_engine(database_url: str) -> AsyncEngine:
    """The run's own SQLite file: foreign keys on as in the app, no fsync (it is thrown away)."""
    engine = create_async_engine(database_url)

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    event.listen(engine.sync_engine, "connect", pragmas)
    return engine


class Clinic:
    """One strategy's run: the event loop over a scratch database."""

    def __init__(
        self,
        scenario: Scenario,
        routing: Routing,
        database_url: str,
        progress: Callable[[float], None] | None = None,
        between: BetweenDraws = REST,
        arrivals: list[Arrival] | None = None,
    ) -> None:
        self.scenario = scenario
        self.arrivals = arrivals  # None: the scenario's own (arrivals_of)
        self.routing = routing
        self.between = between
        self.engine = scratch_engine(database_url)
        self.factory = session_factory(self.engine)
        # Service times are common random numbers: the same mother's same service takes the
        # same minutes under every strategy, so that the comparison is of the routing alone.
        self.number_of: dict[uuid.UUID, int] = {}  # visit -> arrival number
        self.draws: dict[tuple[int, str], int] = defaultdict(int)
        self.progress = progress
        self.actor = Principal(
            kind=PrincipalKind.CLIENT, id=uuid.UUID(int=0), name="simulator", role="station"
        )
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.seq = 0
        self.busy: dict[tuple[str, int], uuid.UUID] = {}  # (station, room) -> entry

    def push(self, at: datetime, kind: str, data: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, data))

    def ctx(self, now: datetime) -> Ctx:
        policy = QueuePolicy(routing=self.routing, between=self.between)
        return Ctx(now=now, tz=TZ, actor=self.actor, policy=policy)

    async def setup(self) -> None:
        s = self.scenario
        async with self.factory() as session:
            await session.execute(delete(Station))
            for spec in s.stations:
                session.add(
                    Station(
                        code=spec.code,
                        name=spec.code,
                        station_type=spec.type,
                        servers=spec.servers,
                        opens_at=time(0, 0),
                        closes_at=time(23, 59),
                        is_open=True,
                        updated_at=_local(s.opens_at),
                    )
                )
                if spec.closes_at is not None:
                    self.push(_local(spec.closes_at), "close", spec.code)
            catalogue = await load_catalogue(session)
            exams = {e for m in s.exam_lists() for e in m}
            unknown = sorted(e for e in exams if catalogue.rule(e) is None)
            if unknown:
                where = "visit_mix" if s.visit_mix else "booking_requests"
                raise ScenarioError(f"{where} names exams not in the catalogue: {unknown}")
            kinds = {spec.type for spec in s.stations}
            unserved = sorted(
                {
                    catalogue.rules[e].station_type
                    for e in exams
                    if catalogue.rules[e].station_type not in kinds
                }
            )
            if unserved:
                raise ScenarioError(f"no station does {unserved}")
            self.clinic = await clinic_session(
                session, DAY, s.opens_at, s.closes_at, now=_local(s.opens_at)
            )
            await session.commit()
        for arrival in arrivals_of(s) if self.arrivals is None else self.arrivals:
            self.push(arrival.at, "arrive", arrival)

    def duration(self, steps: list[ExamStep], station_type: str) -> float:
        exams = tuple(sorted(s.exam_code for s in steps))
        key = "+".join(exams) or station_type
        number = self.number_of.get(steps[0].visit_id, 0) if steps else 0
        self.draws[(number, key)] += 1  # a second service of the same kind draws anew
        return service_minutes(
            self.scenario, number, exams, station_type, self.draws[(number, key)]
        )

    async def run(self) -> None:
        await self.setup()
        opens = _local(self.scenario.opens_at)
        end = _local(self.scenario.closes_at) + OVERTIME
        total = (end - opens).total_seconds()
        while self.events:
            now = self.events[0][0]
            if now > end:
                break
            async with self.factory() as session:
                catalogue = await load_catalogue(session)
                ctx = self.ctx(now)
                while self.events and self.events[0][0] == now:
                    _at, _seq, kind, data = heapq.heappop(self.events)
                    await self.handle(session, catalogue, ctx, kind, data)
                await self.dispatch(session, ctx)
                await session.commit()
            if self.progress:
                self.progress(min(1.0, max(0.0, (now - opens).total_seconds() / total)))
        await self.engine.dispose()

    async def handle(
        self, session: Any, catalogue: Catalogue, ctx: Ctx, kind: str, data: Any
    ) -> None:
        if kind == "arrive":
            a: Arrival = data
            visit = await checked_in_visit(
                session,
                number=a.number,
                clinic=self.clinic,
                exams=a.mix.exams,
                catalogue=catalogue,
                gestational_week=a.mix.gestational_week,
                scheduled_at=a.scheduled,
                arrived_at=ctx.now,
                walk_in=a.walk_in,
            )
            self.number_of[visit.id] = a.number
            await route(session, visit, ctx)
        elif kind == "finish":
            station_code, room, entry_id = data
            entry = await entry_by_id(session, entry_id)
            created = await finish(session, entry, catalogue, ctx)
            del self.busy[(station_code, room)]
            for e in created:
                if e.available_at > ctx.now:
                    self.push(e.available_at, "tick")
            if await self.awaits_drink(session, entry):  # the nurse hands her the glucose
                drink = ctx.now + timedelta(minutes=self.scenario.glucose_drink_minutes)
                self.push(drink, "drink", entry_id)
        elif kind == "drink":
            entry = await entry_by_id(session, data)
            test = await record_timing_start(
                session, entry, catalogue, ctx, event=GLUCOSE_DRINK, started_at=ctx.now
            )
            for draw in test.draws:
                if draw.entry is not None and draw.entry.available_at > ctx.now:
                    self.push(draw.entry.available_at, "tick")
        elif kind == "close":
            station = await station_by_code(session, data, for_update=True)
            await close_station(session, station, catalogue, ctx)
        # "tick": nothing to do but look for work again

    async def awaits_drink(self, session: Any, entry: QueueEntry) -> bool:
        """Whether this service was an OGTT's fasting draw, whose drink is to be recorded."""
        firsts = select(ExamStep.order_id).where(
            ExamStep.entry_id == entry.id, ExamStep.offset_minutes == 0
        )
        timed = await session.scalar(
            select(ExamStep.id)
            .where(ExamStep.order_id.in_(firsts), ExamStep.timed_from == GLUCOSE_DRINK)
            .limit(1)
        )
        return timed is not None

    async def dispatch(self, session: Any, ctx: Ctx) -> None:
        """Every free room of every open station calls, until nobody may be called."""
        stations = (await session.scalars(select(Station).order_by(Station.code))).all()
        waiting_at = set(
            (
                await session.scalars(
                    select(QueueEntry.station_id).where(QueueEntry.state == EntryState.WAITING)
                )
            ).all()
        )
        for station in stations:
            if not station.is_open or station.id not in waiting_at:
                continue
            for room in range(1, station.servers + 1):
                if (station.code, room) in self.busy:
                    continue
                entry = await call_next(session, station, room, ctx)
                if entry is None:  # nobody callable: a later finish, arrival or due time
                    break  # (each an event) brings this room back
                await start(session, entry, ctx)
                steps = list(
                    await session.scalars(select(ExamStep).where(ExamStep.entry_id == entry.id))
                )
                minutes = self.duration(steps, station.station_type)
                self.busy[(station.code, room)] = entry.id
                self.push(
                    ctx.now + timedelta(minutes=minutes), "finish", (station.code, room, entry.id)
                )


async def measure(
    scenario: Scenario, routing: Routing, database_url: str, between: BetweenDraws = REST
) -> StrategyResult:
    """Read the finished day back from the database: waits, lengths, use, and the rules."""
    engine = scratch_engine(database_url)
    factory = session_factory(engine)
    async with factory() as session:
        catalogue = await load_catalogue(session)
        entries = (await session.scalars(select(QueueEntry))).all()
        steps = (await session.scalars(select(ExamStep))).all()
        visits = (await session.scalars(select(Visit))).all()
        edds = dict(
            (
                await session.execute(
                    select(Visit.id, Pregnancy.edd_date).join(
                        Pregnancy, Pregnancy.id == Visit.pregnancy_id
                    )
                )
            ).all()
        )
        stations = {s.id: s for s in (await session.scalars(select(Station))).all()}
        mrns = dict(
            (
                await session.execute(
                    select(Visit.id, Mother.mrn).join(Mother, Mother.id == Visit.mother_id)
                )
            ).all()
        )
    await engine.dispose()

    opens, closes = _local(scenario.opens_at), _local(scenario.closes_at)
    waits: dict[uuid.UUID, float] = defaultdict(float)
    last_finish: dict[uuid.UUID, datetime] = {}
    busy_minutes: dict[str, float] = defaultdict(float)
    bins = int((closes - opens).total_seconds() // 60 // BIN_MINUTES)
    by_bin: dict[str, list[float]] = {s.code: [0.0] * bins for s in stations.values()}
    serving: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    for e in entries:
        if e.called_at is not None and (e.finished_at or e.closed_at):
            serving[e.visit_id].append((e.called_at, e.finished_at or e.closed_at))  # type: ignore[arg-type]
    under_test = _test_windows(steps, entries)
    for e in entries:
        if e.state == EntryState.DONE and e.started_at and e.finished_at:
            code = stations[e.station_id].code
            busy_minutes[code] += (e.finished_at - e.started_at).total_seconds() / 60
            last_finish[e.visit_id] = max(last_finish.get(e.visit_id, e.finished_at), e.finished_at)
            for b in range(bins):  # minutes of service inside each half hour
                lo = opens + timedelta(minutes=b * BIN_MINUTES)
                hi = lo + timedelta(minutes=BIN_MINUTES)
                overlap = (min(hi, e.finished_at) - max(lo, e.started_at)).total_seconds() / 60
                if overlap > 0:
                    by_bin[code][b] += overlap
    # Early and overtime work count as open time.
    day_start = min([opens, *(e.started_at for e in entries if e.started_at is not None)])
    day_end = max([closes, *last_finish.values()])
    open_minutes = (day_end - day_start).total_seconds() / 60
    utilisation = {
        s.code: round(busy_minutes[s.code] / (s.servers * open_minutes), 3)
        for s in stations.values()
    }
    utilisation_by_bin = {
        s.code: [round(v / (s.servers * BIN_MINUTES), 3) for v in by_bin[s.code]]
        for s in stations.values()
    }
    ga_days = {v: gestational_age_days(edd, DAY) for v, edd in edds.items()}
    violations = check_rules(steps, entries, ga_days, catalogue, between)
    drink_delay = {  # from the fasting draw's end to the drink, per visit
        s.visit_id: (s.timing_started_at - s.done_at).total_seconds() / 60
        for s in steps
        if s.timing_started_at is not None and s.done_at is not None
    }
    cutoff = closes + OVERTIME  # a mother still here when the run stops waited until then
    floors: list[float] = []
    idle: dict[uuid.UUID, float] = defaultdict(float)
    for v in visits:  # her time in the clinic, less the time she was being examined
        if v.arrived_at is None:
            continue
        stay = (last_finish.get(v.id, cutoff) - v.arrived_at).total_seconds() / 60
        examined = _minutes(_union(serving[v.id]))
        idle[v.id] = max(0.0, stay - examined)
        waits[v.id] = max(0.0, stay - _minutes(_union(serving[v.id] + under_test[v.id])))
        shortest = _shortest_stay(
            v.id, entries, catalogue_last(catalogue), drink_delay.get(v.id, 0.0)
        )
        floors.append(max(0.0, shortest - examined))
    wait_list = [waits[v.id] for v in visits]
    idle_list = [idle[v.id] for v in visits]
    lengths = [
        (last_finish[v.id] - v.arrived_at).total_seconds() / 60
        for v in visits
        if v.id in last_finish and v.arrived_at is not None
    ]
    done_visits = {
        v.id for v in visits if all(s.state == StepState.DONE for s in steps if s.visit_id == v.id)
    }
    by_closing = sum(1 for v in done_visits if v in last_finish and last_finish[v] <= closes)
    q = statistics.quantiles(wait_list, n=10) if len(wait_list) >= 2 else [0.0] * 9
    return StrategyResult(
        strategy=routing.value,
        mothers=len(visits),
        finished_by_closing=by_closing,
        finished=len(done_visits),
        wait_mean=round(statistics.fmean(wait_list), 1) if wait_list else 0.0,
        wait_p50=round(statistics.median(wait_list), 1) if wait_list else 0.0,
        wait_p90=round(q[8], 1),
        visit_mean=round(statistics.fmean(lengths), 1) if lengths else 0.0,
        idle_mean=round(statistics.fmean(idle_list), 1) if idle_list else 0.0,
        idle_floor_mean=round(statistics.fmean(floors), 1) if floors else 0.0,
        utilisation=utilisation,
        utilisation_by_bin=utilisation_by_bin,
        waits=[round(w, 1) for w in wait_list],
        violations=violations,
        steps_total=len(steps),
        steps_done=sum(1 for s in steps if s.state == StepState.DONE),
        schedule={
            f"{int(mrns[e.visit_id][3:])}:{e.station_type}:{e.step_offset}": (
                e.started_at - opens
            ).total_seconds()
            for e in entries
            if e.state == EntryState.DONE and e.started_at is not None
        },
        rooms={
            f"{int(mrns[e.visit_id][3:])}:{e.station_type}:{e.step_offset}": stations[
                e.station_id
            ].code
            for e in entries
            if e.state == EntryState.DONE and e.started_at is not None
        },
    )


def catalogue_last(catalogue: Catalogue) -> set[str]:
    """The station types of the exams that come last (the doctor)."""
    return {rule.station_type for rule in catalogue.rules.values() if rule.last}


def _shortest_stay(
    visit_id: uuid.UUID, entries: Any, last: set[str], drink_minutes: float = 0.0
) -> float:
    """The shortest stay her timed draws allow: the first draw, the drink, the span to the last
    draw, the last draw and what must follow it (the doctor), with the service times she really
    had. Zero for a visit without a timed exam."""
    mine = [e for e in entries if e.visit_id == visit_id and e.state == EntryState.DONE]
    timed = [e for e in mine if e.step_offset > 0]
    if not timed:
        return 0.0

    def took(e: Any) -> float:
        return float((e.finished_at - e.started_at).total_seconds() / 60)

    final = max(timed, key=lambda e: e.step_offset)
    anchor = min(
        (e for e in mine if e.station_type == final.station_type and e.step_offset == 0),
        key=lambda e: e.finished_at,
        default=None,
    )
    after = [e for e in mine if e.finished_at > final.finished_at]
    span: float = (took(anchor) if anchor else 0.0) + drink_minutes + final.step_offset
    span += took(final)
    return span + sum(took(e) for e in after if e.station_type in last)


def _test_windows(steps: Any, entries: Any) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
    """Each timed test's own span, first draw begun to last draw done: she is under test then,
    whatever the routing does, so none of it is waiting. Per visit."""
    entry_by_id = {e.id: e for e in entries}
    by_order: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for s in steps:
        by_order[s.order_id].append(s)
    windows: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    for order_steps in by_order.values():
        if not any(s.offset_minutes > 0 for s in order_steps):
            continue
        first = entry_by_id.get(min(order_steps, key=lambda s: s.offset_minutes).entry_id)
        last = entry_by_id.get(max(order_steps, key=lambda s: s.offset_minutes).entry_id)
        if first is None or last is None or first.started_at is None:
            continue
        end = last.finished_at or last.closed_at
        if end is not None and end > first.started_at:
            windows[first.visit_id].append((first.started_at, end))
    return windows


def _union(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _subtract(
    spans: list[tuple[datetime, datetime]], cuts: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out = []
    for lo, hi in spans:
        pieces = [(lo, hi)]
        for clo, chi in cuts:
            pieces = [
                part
                for plo, phi in pieces
                for part in ((plo, min(phi, clo)), (max(plo, chi), phi))
                if part[1] > part[0]
            ]
        out += pieces
    return out


def _minutes(spans: list[tuple[datetime, datetime]]) -> float:
    return sum((hi - lo).total_seconds() for lo, hi in spans) / 60


def check_rules(
    steps: Any,
    entries: Any,
    ga_days: dict[uuid.UUID, int],
    catalogue: Catalogue,
    between: BetweenDraws = REST,
) -> list[str]:
    """The constraints, checked on what happened: each a line naming the mother and the rule."""
    out: list[str] = []
    entry_by_id = {e.id: e for e in entries}
    for e in entries:  # every service's times in order
        times = [e.entered_at, e.called_at, e.started_at, e.finished_at]
        shown = [t for t in times if t is not None]
        if shown != sorted(shown) or (e.called_at is not None and e.called_at < e.available_at):
            out.append(f"entry {e.ticket}: times out of order")
    done_entries = [e for e in entries if e.state == EntryState.DONE]
    served: dict[uuid.UUID, int] = defaultdict(int)
    for s in steps:
        if s.state == StepState.DONE:
            entry = entry_by_id.get(s.entry_id) if s.entry_id else None
            if entry is None or entry.state != EntryState.DONE:
                out.append(f"step {s.id} done without a finished service")
            served[s.id] += 1
    by_visit: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for s in steps:
        by_visit[s.visit_id].append(s)
    started = {e.id: e.started_at for e in done_entries}
    for visit_id, vsteps in by_visit.items():
        done = [s for s in vsteps if s.state == StepState.DONE]

        def start_of(s: Any) -> datetime:
            begun: datetime = started.get(s.entry_id) or s.done_at
            return begun

        for s in done:
            rule = catalogue.rule(s.exam_code)
            if rule is None:
                continue
            if rule.last:
                others = [
                    o for o in done if o.id != s.id and not (catalogue.rules[o.exam_code].last)
                ]
                if any(o.done_at > start_of(s) for o in others):
                    out.append(f"visit {visit_id}: {s.exam_code} was not last")
            if rule.after_meal:
                fasting = [o for o in done if catalogue.rules[o.exam_code].fasting]
                if any(o.done_at > start_of(s) for o in fasting):
                    out.append(f"visit {visit_id}: {s.exam_code} before a fasting exam")
            if s.offset_minutes:
                anchor = next(
                    o for o in vsteps if o.order_id == s.order_id and o.offset_minutes == 0
                )
                counted_from = anchor.timing_started_at if s.timed_from else anchor.done_at
                if counted_from is None:
                    out.append(
                        f"visit {visit_id}: {s.exam_code} +{s.offset_minutes} before the drink"
                    )
                    continue
                due = counted_from + timedelta(minutes=s.offset_minutes)
                slack = timedelta(minutes=s.tolerance_minutes or 0)
                if not due - slack <= start_of(s) <= due + slack:
                    off = (start_of(s) - due).total_seconds() / 60
                    out.append(
                        f"visit {visit_id}: {s.exam_code} +{s.offset_minutes} off by {off:.0f} min"
                    )
            for p in rule.precedence:
                if p.before and p.applies(ga_days[visit_id]):
                    later = [o for o in done if o.exam_code == p.before]
                    if any(start_of(o) < s.done_at for o in later):
                        out.append(f"visit {visit_id}: {s.exam_code} not before {p.before}")
        # While a timed test runs: nothing before its drink, then only what the clinic allows.
        for anchor in done:
            timed = [o for o in done if o.order_id == anchor.order_id and o.offset_minutes > 0]
            if anchor.offset_minutes or not timed:
                continue
            last = max(start_of(o) for o in timed)
            for o in done:
                begun = start_of(o)
                if o.order_id == anchor.order_id or not anchor.done_at < begun < last:
                    continue
                drink = anchor.timing_started_at
                if drink is not None and begun < drink:
                    out.append(f"visit {visit_id}: {o.exam_code} before the glucose drink")
                elif not between.allows(o.exam_code):
                    out.append(f"visit {visit_id}: {o.exam_code} between the OGTT's draws")
    return out


@dataclass
class Comparison:
    scenario: str
    results: list[StrategyResult]
    between_draws: str = "rest"  # OGTT_BETWEEN_DRAWS of the run; "-" on a day without an OGTT
    optimum: optimum.OptimumResult | None = None  # the best possible day, when computed
    booking: BookedDay | None = None  # a day of booking requests: which replay, and its counts

    @property
    def title(self) -> str:
        """The scenario, with which replay of a day of booking requests this is."""
        return self.scenario if self.booking is None else f"{self.scenario}, {self.booking.variant}"

    @property
    def name(self) -> str:
        return f"{self.title} ({self.between_draws})"

    def _pair(self) -> tuple[StrategyResult, StrategyResult]:
        fixed = next(r for r in self.results if r.strategy == "fixed")
        ours = next(r for r in self.results if r.strategy == "parallel")
        return fixed, ours

    @property
    def wait_cut(self) -> float:
        fixed, ours = self._pair()
        return 0.0 if fixed.wait_mean == 0 else round(1 - ours.wait_mean / fixed.wait_mean, 3)

    @property
    def meets_target(self) -> bool:
        """The issue's target: waiting cut by 40 %, and the project's routing broke no rule."""
        _, ours = self._pair()
        return self.wait_cut >= 0.40 and not ours.violations

    @property
    def to_optimum(self) -> float | None:
        """The routing's mean waiting over the best schedule found (1.0: as good)."""
        _, ours = self._pair()
        best = self.optimum.wait_mean if self.optimum else None
        if best is None:
            return None
        return (
            round(ours.wait_mean / best, 2) if best > 0 else (1.0 if ours.wait_mean == 0 else None)
        )

    @property
    def to_bound(self) -> float | None:
        """The routing's mean waiting over the proven bound (no schedule waits less)."""
        _, ours = self._pair()
        if self.optimum is None or self.optimum.wait_bound <= 0:
            return None
        return round(ours.wait_mean / self.optimum.wait_bound, 2)

    @property
    def idle_cut(self) -> float:
        """The cut in her idle time in the clinic, the OGTT's hours counted as idle."""
        fixed, ours = self._pair()
        return 0.0 if fixed.idle_mean == 0 else round(1 - ours.idle_mean / fixed.idle_mean, 3)

    @property
    def avoidable_cut(self) -> float:
        """The cut in the idle time above the floor: the part routing can change."""
        fixed, ours = self._pair()
        room = fixed.idle_mean - fixed.idle_floor_mean
        return 0.0 if room <= 0 else round(1 - (ours.idle_mean - ours.idle_floor_mean) / room, 3)


def prepare_template(workdir: Path) -> Path:
    """A scratch SQLite file migrated like production; every run starts from a copy."""
    from app.core.migrations import upgrade

    template = workdir / "template.db"
    upgrade(f"sqlite+aiosqlite:///{template}")
    return template


def settings_to_compare(scenario: Scenario, template: Path) -> list[tuple[BetweenDraws, str]]:
    """The between-draws settings to run the day under, with their labels: each of the
    scenario's when a visit has a timed exam (the OGTT), else the first only (labelled "-")."""
    import asyncio

    async def timed_exams() -> set[str]:
        engine = scratch_engine(f"sqlite+aiosqlite:///{template}")
        try:
            async with session_factory(engine)() as session:
                catalogue = await load_catalogue(session)
        finally:
            await engine.dispose()
        return {code for code, rule in catalogue.rules.items() if rule.sequence}

    settings = [between_setting(v) for v in scenario.between_draws]
    if not {e for m in scenario.exam_lists() for e in m} & asyncio.run(timed_exams()):
        return [(settings[0], "-")]
    return [(b, between_label(b)) for b in settings]


def optimum_instance(
    scenario: Scenario,
    catalogue: Catalogue,
    between: BetweenDraws = REST,
    arrivals: list[Arrival] | None = None,
) -> optimum.Instance:
    """The scenario's day as the optimum sees it: the arrivals and the minutes every service
    will take (the strategies' own draws), seconds counted from its origin (the earlier of the
    opening and the first arrival, to the minute)."""
    arrivals = arrivals_of(scenario) if arrivals is None else arrivals
    closes = _local(scenario.closes_at)
    origin = optimum_origin(scenario, arrivals)
    jobs = []
    for a in arrivals:
        ga_day = a.mix.gestational_week * 7 + 1  # what sim.population gives her

        def minutes(
            exams: tuple[str, ...], station_type: str, k: int, number: int = a.number
        ) -> float:
            return service_minutes(scenario, number, exams, station_type, k)

        services, order = optimum.service_list(a.mix.exams, catalogue, ga_day, minutes)
        jobs.append(optimum.Job(a.number, optimum.seconds_between(origin, a.at), services, order))
    rooms = tuple(
        optimum.Room(
            s.code,
            s.type,
            s.servers,
            optimum.seconds_between(origin, _local(s.closes_at)) if s.closes_at else None,
        )
        for s in scenario.stations
    )
    return optimum.Instance(
        jobs=tuple(jobs),
        stations=rooms,
        horizon=optimum.seconds_between(origin, closes + OVERTIME),
        drink_seconds=round(scenario.glucose_drink_minutes * 60),
        between=between,
        closes=optimum.seconds_between(origin, closes),
    )


def optimum_origin(scenario: Scenario, arrivals: list[Arrival] | None = None) -> datetime:
    opens = _local(scenario.opens_at)
    given = arrivals_of(scenario) if arrivals is None else arrivals
    first = min([opens, *(a.at for a in given)])
    return first.replace(second=0, microsecond=0)


def run_optimum(
    scenario: Scenario,
    template: Path,
    *,
    between: BetweenDraws = REST,
    time_limit: float = 20.0,
    workers: int = 2,
    hint: StrategyResult | None = None,
    progress: bool = True,
    label: str | None = None,
    arrivals: list[Arrival] | None = None,
) -> optimum.OptimumResult:
    """The best possible day of the scenario (sim/optimum.py), started from ``hint``'s day."""
    import asyncio

    async def catalogue_of() -> Catalogue:
        engine = scratch_engine(f"sqlite+aiosqlite:///{template}")
        try:
            async with session_factory(engine)() as session:
                return await load_catalogue(session)
        finally:
            await engine.dispose()

    instance = optimum_instance(scenario, asyncio.run(catalogue_of()), between, arrivals)
    starts: dict[optimum.Key, int] = {}
    rooms: dict[optimum.Key, str] = {}
    if hint is not None:
        opens = _local(scenario.opens_at)
        origin = optimum_origin(scenario, arrivals)
        for key, second in hint.schedule.items():
            number, station_type, offset = key.split(":")
            at = opens + timedelta(seconds=second)
            starts[(int(number), station_type, int(offset))] = optimum.seconds_between(origin, at)
            if key in hint.rooms:
                rooms[(int(number), station_type, int(offset))] = hint.rooms[key]
    bar = _bar(f"{scenario.name} ({label or between_label(between)}) optimum") if progress else None
    result = optimum.solve(
        instance,
        time_limit=time_limit,
        workers=workers,
        hint=starts,
        hint_rooms=rooms,
        progress=bar,
    )
    if bar:
        bar(1.0)
        print(file=sys.stderr)
    return result


def run_scenario(
    scenario: Scenario,
    *,
    workdir: Path | None = None,
    template: Path | None = None,
    progress: bool = True,
    between: BetweenDraws = REST,
    label: str | None = None,
    optimum_seconds: float = 0.0,
    optimum_workers: int = 8,
    day: BookedDay | None = None,
) -> Comparison:
    """Both strategies on the same arrivals, each in its own copy of a freshly migrated
    database and its own process (they share nothing, and the machine has cores to spare).
    ``day``: one replay of a day of booking requests (sim/booking.py), its arrivals."""
    import multiprocessing
    import time as _time

    tmp = Path(tempfile.mkdtemp(prefix="clinic-sim-", dir=workdir))
    spawn = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads
    try:
        template = template or prepare_template(tmp)
        outcomes = spawn.Queue()
        shares = {}
        workers = []
        for routing in (Routing.FIXED, Routing.PARALLEL):
            db = tmp / f"{routing.value}.db"
            shutil.copy(template, db)
            shares[routing] = spawn.Value("d", 0.0)
            worker = spawn.Process(
                target=_run_strategy,
                args=(
                    scenario.model_dump_json(),
                    routing.value,
                    f"sqlite+aiosqlite:///{db}",
                    shares[routing],
                    outcomes,
                    between.mode.value,
                    ",".join(sorted(between.exams)),
                    None if day is None else day.arrivals,
                ),
                daemon=True,
            )
            worker.start()
            workers.append(worker)
        bar = _bar(f"{scenario.name} ({label or between_label(between)})") if progress else None
        got: dict[str, StrategyResult] = {}
        while len(got) < len(workers):
            if bar:
                bar(min(share.value for share in shares.values()))
            try:
                routing_value, kind, payload = outcomes.get(timeout=0.2)
            except queue.Empty:
                # A process that ended without a word (killed, out of memory) ends the run; give
                # its last words a moment to arrive first.
                gone = [
                    w
                    for r, w in zip(shares, workers, strict=True)
                    if r.value not in got and w.exitcode is not None
                ]
                if gone and outcomes.empty():
                    _time.sleep(0.5)
                    if outcomes.empty():
                        raise RuntimeError("a simulation process died") from None
                continue
            if kind == "scenario":
                raise ScenarioError(str(payload))
            if kind == "error":
                raise RuntimeError(f"the {routing_value} run failed: {payload}")
            got[routing_value] = payload
        for worker in workers:
            worker.join()
        if bar:
            bar(1.0)
            print(file=sys.stderr)
        best = None
        if optimum_seconds > 0:  # the clairvoyant day, from the routing's own day
            best = run_optimum(
                scenario,
                template,
                between=between,
                time_limit=optimum_seconds,
                workers=optimum_workers,
                hint=got[Routing.PARALLEL.value],
                progress=progress,
                label=label,
                arrivals=None if day is None else day.arrivals,
            )
        return Comparison(
            scenario.name,
            [got[r.value] for r in (Routing.FIXED, Routing.PARALLEL)],
            label or between_label(between),
            best,
            day,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_strategy(
    scenario_json: str,
    routing_value: str,
    url: str,
    share: Any,
    outcomes: Any,
    between_mode: str = "rest",
    between_exams: str = "",
    arrivals: list[Arrival] | None = None,
) -> None:
    """One strategy's day, in its own process; the result (or the failure) goes to the queue."""
    import asyncio
    import traceback

    from app import all_models  # noqa: F401 - every mapper, in this fresh interpreter

    scenario = Scenario.model_validate_json(scenario_json)
    routing = Routing(routing_value)
    between = BetweenDraws.parse(OgttBetweenDraws(between_mode), between_exams)

    def progress(fraction: float) -> None:
        share.value = fraction

    try:
        asyncio.run(Clinic(scenario, routing, url, progress, between, arrivals).run())
        result = asyncio.run(measure(scenario, routing, url, between))
        outcomes.put((routing_value, "ok", result))
    except ScenarioError as exc:
        outcomes.put((routing_value, "scenario", str(exc)))
    except Exception:
        outcomes.put((routing_value, "error", traceback.format_exc(limit=5)))


def _bar(label: str) -> Callable[[float], None]:
    last = [-1]

    def show(fraction: float) -> None:
        filled = int(fraction * 30)
        if filled != last[0]:
            last[0] = filled
            print(
                f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    return show


def table(comparisons: list[Comparison]) -> str:
    """The results as a Markdown table (what bench/RESULTS.md records)."""
    lines = [
        "| scenario | strategy | between OGTT draws | mothers | wait mean | wait p50 | wait p90 | "
        "idle mean | idle floor | visit mean | done by closing | rule violations | busiest (use) |",
        "| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |",
    ]
    for c in comparisons:
        for r in c.results:
            top = max(r.utilisation.items(), key=lambda kv: kv[1], default=("-", 0.0))
            lines.append(
                f"| {c.title} | {r.strategy} | {c.between_draws} | {r.mothers} | "
                f"{r.wait_mean} | {r.wait_p50} | {r.wait_p90} | {r.idle_mean} | "
                f"{r.idle_floor_mean} | {r.visit_mean} | "
                f"{r.finished_by_closing}/{r.mothers} | "
                f"{len(r.violations)} | {top[0]} ({top[1]:.0%}) |"
            )
        o = c.optimum
        if o is not None:
            found = o.found
            lines.append(
                f"| {c.title} | optimum ({o.status.lower()}) | {c.between_draws} | "
                f"{o.mothers} | "
                f"{o.wait_mean if found else '-'} | {o.wait_p50 if found else '-'} | "
                f"{o.wait_p90 if found else '-'} | - | - | - | "
                f"{o.finished_by_closing if found else '-'}/{o.mothers} | 0 | - |"
            )
    lines.append("")
    if any(c.optimum is not None for c in comparisons):
        lines += [
            "| scenario | between OGTT draws | fixed | routing (parallel) | optimum found | "
            "optimum's proven bound | solver | routing / optimum | routing / bound |",
            "| --- | --- | --: | --: | --: | --: | --- | --: | --: |",
        ]
        for c in comparisons:
            if c.optimum is None:
                continue
            fixed, ours = c._pair()
            o = c.optimum
            lines.append(
                f"| {c.title} | {c.between_draws} | {fixed.wait_mean} | {ours.wait_mean} | "
                f"{o.wait_mean if o.found else '-'} | {o.wait_bound} | "
                f"{o.status}, {o.seconds:.0f} s of {o.time_limit:.0f} s | "
                f"{_ratio(c.to_optimum)} | {_ratio(c.to_bound)} |"
            )
        lines.append("")
    days = [c for c in comparisons if c.booking is not None]
    if days:
        lines += [
            "| scenario | day | between OGTT draws | requests | accepted | of them, at another "
            "hour | refused | refused, offered another session | walk-ins | fixed wait mean / p90 "
            "| routing wait mean / p90 | optimum wait mean |",
            "| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
        ]
        for c in days:
            b = c.booking
            assert b is not None
            fixed, ours = c._pair()
            o = c.optimum
            lines.append(
                f"| {c.scenario} | {b.variant} | {c.between_draws} | {b.requests} | "
                f"{b.accepted} | {b.other_hour} | {b.refused} | {b.offered} | {b.walk_ins} | "
                f"{fixed.wait_mean} / {fixed.wait_p90} | {ours.wait_mean} / {ours.wait_p90} | "
                f"{o.wait_mean if o is not None and o.found else '-'} |"
            )
        lines.append("")
    lines += [
        f"- {c.name}: parallel routing cuts mean waiting by {c.wait_cut:.0%} against fixed;"
        f" her idle time in the clinic, the OGTT's hours included, by {c.idle_cut:.0%}, and the"
        f" idle time above its floor (what routing can change) by {c.avoidable_cut:.0%}."
        for c in comparisons
    ]
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def write_json(comparisons: list[Comparison], path: Path) -> None:
    data = [
        {
            "scenario": c.scenario,
            "between_draws": c.between_draws,
            "booking": None
            if c.booking is None
            else {k: v for k, v in asdict(c.booking).items() if k != "arrivals"},
            "wait_cut": c.wait_cut,
            "idle_cut": c.idle_cut,
            "avoidable_idle_cut": c.avoidable_cut,
            "results": [
                {k: v for k, v in asdict(r).items() if k not in ("schedule", "rooms")}
                for r in c.results
            ],
            "optimum": None
            if c.optimum is None
            else {k: v for k, v in asdict(c.optimum).items() if k != "starts"},
            "routing_to_optimum": c.to_optimum,
            "routing_to_bound": c.to_bound,
        }
        for c in comparisons
    ]
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def chart(comparisons: list[Comparison], path: Path) -> None:
    """Waits per strategy (box plots) and each station's use over the day, per scenario."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - the sim extra installs it
        raise RuntimeError("charts need matplotlib: pip install '.[sim]'") from exc

    n = len(comparisons)
    fig, axes = plt.subplots(n, 2, figsize=(13, 4.1 * n), squeeze=False)
    for row, c in enumerate(comparisons):
        left, right = axes[row]
        boxes = [r.waits for r in c.results]
        names = [r.strategy for r in c.results]
        if c.optimum is not None and c.optimum.found:
            boxes.append(c.optimum.waits)
            names.append("optimum")
        left.boxplot(boxes, tick_labels=names)
        # The scenario on a line of its own: a booking day's name fills half the width.
        left.set_title(f"{c.name}\nwaiting minutes per mother")
        left.set_ylabel("minutes")
        ours = next(r for r in c.results if r.strategy == "parallel")
        for code, series in sorted(ours.utilisation_by_bin.items()):
            left_edges = [BIN_MINUTES * i / 60 for i in range(len(series))]
            right.plot(left_edges, [v * 100 for v in series], marker="o", label=code)
        right.set_title(f"{c.name}\nstation use over the day (parallel routing)")
        right.set_xlabel("hours after opening")
        right.set_ylabel("% of rooms busy")
        right.set_ylim(0, 105)
        right.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _within(c: Comparison) -> str:
    """Met when the routing is within 1.5x of the best schedule found; proven only when it is
    within 1.5x of the bound too (the true optimum lies between the two)."""
    if c.optimum is not None and c.optimum.wait_mean == 0 and c._pair()[1].wait_mean > 0:
        return "NO (the best day waits 0)"
    if c.to_optimum is None:
        return "unknown (no schedule found)"
    if c.to_optimum > 1.5:
        return "NO"
    return "yes (proven)" if c.to_bound is not None and c.to_bound <= 1.5 else "yes"


def report(
    comparisons: list[Comparison],
    seconds: list[float],
    paths: list[Path],
    overloaded: dict[str, bool] | None = None,
) -> str:
    """The simulation section of bench/RESULTS.md: machine, date, the table, the targets."""
    import os
    import platform
    from datetime import UTC

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    overloaded = overloaded or {}
    lines = [
        "## Clinic-day simulator (`make simulate`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}. Scenarios: "
        + ", ".join(f"`{p.as_posix()}`" for p in paths)
        + ". Both strategies replay the same arrivals, and the same mother's same service takes "
        "the same minutes under both (common random numbers).",
        "",
        table(comparisons),
        "",
        "| scenario | measure | result | target | met |",
        "| --- | --- | --: | --- | --- |",
        *[
            f"| {c.name} | both strategies took | {t:.1f} s | < 30 s | "
            f"{'yes' if t < 30 else 'NO'} |"
            for c, t in zip(comparisons, seconds, strict=True)
        ],
        *[
            f"| {c.name} | mean waiting cut against fixed, no rule broken | "
            f"{c.wait_cut:.0%} | ≥ 40 % | {'yes' if c.meets_target else 'NO'} |"
            for c in comparisons
            if c.scenario.startswith("busy")
        ],
        *[
            f"| {c.name} | routing's mean waiting over the optimum found (over its bound) | "
            f"{_ratio(c.to_optimum)} ({_ratio(c.to_bound)}) | ≤ 1.5× | "
            f"{_within(c)} |"
            for c in comparisons
            if c.optimum is not None and not overloaded.get(c.scenario, False) and c.booking is None
        ],
        *[
            f"| {c.name} | p90 wait, routing against fixed | "
            f"{c._pair()[1].wait_p90} vs {c._pair()[0].wait_p90} | no worse than fixed | "
            f"{'yes' if c._pair()[1].wait_p90 <= c._pair()[0].wait_p90 else 'NO'} |"
            for c in comparisons
            if overloaded.get(c.scenario, False)
        ],
        *[
            f"| {c.name} | p90 wait of those the service accepted (routing) | "
            f"{c._pair()[1].wait_p90} min | < 30 min | "
            f"{'yes' if c._pair()[1].wait_p90 < 30 else 'NO'} |"
            for c in comparisons
            if c.booking is not None and c.booking.variant == "booked by the service"
        ],
        *[
            f"| {c.name} | refused requests offered another session | "
            f"{c.booking.offered} of {c.booking.refused} | every one | "
            f"{'yes' if c.booking.offered == c.booking.refused else 'NO'} |"
            for c in comparisons
            if c.booking is not None and c.booking.variant == "booked by the service"
        ],
        "",
        "Waiting is her time in the clinic less every minute she was in an exam or under a timed"
        " test (an OGTT, first draw to last), each minute counted once. Idle is the same with"
        " the OGTT's hours counted as idle; its floor is what her timed draws force on it whatever"
        " the routing. Minutes per mother. Between OGTT draws: the clinic's OGTT_BETWEEN_DRAWS"
        " (rest: she sits still from the glucose drink to the last draw, the guideline's;"
        " any: any exam her other rules allow); a day without an OGTT runs once (-)."
        " Chart: `bench/out/simulation.png` (waits per strategy, station use over the day)."
        " Optimum: the clairvoyant day (sim/optimum.py), every arrival and service minute known"
        " in advance, the same rules, solved by OR-Tools CP-SAT within a time limit from the"
        " routing's own day; the true best day waits between the proven bound and the schedule"
        " found, so the routing's true ratio lies between its two ratios."
        " A day of booking requests (sim/booking.py) is replayed twice on the same mothers:"
        " as requested (each at her wished time) and booked by the service (the requests"
        " booked in order by the service's own rules, app/visits/capacity.py; those its day"
        " accepts come at the arrival times it gave, the refused do not come, and each refused"
        " one counts as offered another session when one of the following days had room).",
    ]
    return "\n".join(lines)
