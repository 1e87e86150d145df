"""The best possible day: a clairvoyant schedule of a scenario, to measure the routing against.

Everything the day will bring is known in advance: who arrives when, with which exams, and
how many minutes each of her services will take (the very minutes the simulator draws for
the strategies, ``sim.simulator.service_minutes``: the same seed, arrival number, exams and
draw count, so the optimum sees the day the strategies saw). An OR-Tools CP-SAT model then
places every service, under the rules the simulator checks (``check_rules``):

- one place at a time per mother (her services never overlap);
- each service at one station of its type; a station serves ``servers`` mothers at once; a
  station that closes early (``closes_at``) starts nobody from then on (a service under way
  finishes, as ``close_station`` does). Like the simulator's stations, they serve from the
  first arrival (the simulator opens them at midnight) to the end of the run;
- nothing before she arrives, everything done by the end of the run (closing + OVERTIME);
- a service is what the routing makes one: her steps of one station type and offset together
  (one venipuncture fills every tube);
- precedence from the catalogue (with its gestational-age ranges), after-meal exams after every
  fasting one, the ``last`` exam (the doctor) after everything else;
- a timed test (the OGTT): the glucose drink ``glucose_drink_minutes`` after the fasting draw
  ends, each timed draw starting within its tolerance (±5 min) of drink + offset; between the
  fasting draw and the last draw she has another exam only as OGTT_BETWEEN_DRAWS allows, and
  never before the drink.

It minimises the simulator's waiting (its module docstring and ``measure``): her time from
arrival to the end of her last service, less every minute in a service or under the timed test
(its first draw begun to its last draw done), each minute once. A service either lies wholly
inside the test's window (from the drink to the last draw; only where the setting allows it) or
wholly outside it, so the union of those minutes is linear in the model: the test's window plus
every service outside it. Times are whole seconds, rounded down (a service is up to a second
shorter than drawn), so that the routing's own day, rounded alike, is a schedule of the model.

CP-SAT runs for a time limit; the answer is the best schedule it found and the bound it proved
(no schedule of this day waits less on average). ``OPTIMAL`` means the two met. The project's
routing's own schedule may be given as a hint, so the search starts from a schedule at least as
good as the routing's.
"""

from __future__ import annotations

import math
import statistics
import threading
import time as _time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.queues.domain import REST, BetweenDraws, Catalogue

Key = tuple[int, str, int]  # (arrival number, station type, step offset): one service


@dataclass(frozen=True, slots=True)
class Service:
    """One service of one mother: her steps of one station type and offset, done together."""

    station_type: str
    offset: int  # 0, or a timed step's offset in minutes
    exams: tuple[str, ...]
    seconds: int  # how long it takes (known in advance: the clairvoyant day)
    fasting: bool = False
    after_meal: bool = False
    last: bool = False
    # A timed step: the window around first-step end (+ drink) + offset, in seconds.
    tolerance: int = 0
    timed_from_drink: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """A mother's day: her arrival (seconds from the origin) and her services."""

    number: int
    arrival: int
    services: tuple[Service, ...]
    # (earlier, later) pairs of indexes into services: the earlier ends before the later starts
    precedence: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Room:
    """A station: its type, rooms, and the second from which it starts nobody (None: never)."""

    code: str
    station_type: str
    servers: int
    closes: int | None = None


@dataclass(frozen=True, slots=True)
class Instance:
    jobs: tuple[Job, ...]
    stations: tuple[Room, ...]
    horizon: int  # every service ends by then (seconds from the origin)
    drink_seconds: int = 120  # from the end of the OGTT's fasting draw to the drink
    between: BetweenDraws = REST
    closes: int | None = None  # the clinic's closing time, for "done by closing"


@dataclass
class OptimumResult:
    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, MODEL_INVALID
    mothers: int
    wait_mean: float | None  # the best schedule found, minutes per mother
    wait_bound: float  # no schedule waits less on average (proven)
    wait_p50: float | None
    wait_p90: float | None
    finished_by_closing: int | None
    seconds: float  # the solver's wall time
    time_limit: float
    waits: list[float] = field(repr=False, default_factory=list)
    starts: dict[Key, int] = field(repr=False, default_factory=dict)

    @property
    def found(self) -> bool:
        return self.wait_mean is not None


def service_list(
    exams: Iterable[str],
    catalogue: Catalogue,
    ga_day: int,
    duration: Callable[[tuple[str, ...], str, int], float],
) -> tuple[tuple[Service, ...], tuple[tuple[int, int], ...]]:
    """Her exams as services with their rules; ``duration(exams, station_type, k)`` gives the
    minutes of her k-th service with these exams (k counts from 1, as the simulator's draws)."""
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    tolerance: dict[tuple[str, int], int] = {}
    from_drink: dict[tuple[str, int], bool] = {}
    for code in dict.fromkeys(exams):
        rule = catalogue.rules[code]
        for step in rule.steps:
            key = (rule.station_type, step.offset_minutes)
            groups[key].append(code)
            if step.offset_minutes:
                tolerance[key] = (step.tolerance_minutes or 0) * 60
                from_drink[key] = step.timed_from is not None
    seen: dict[str, int] = defaultdict(int)
    services = []
    for (station_type, offset), codes in sorted(groups.items(), key=lambda kv: kv[0][1]):
        names = tuple(sorted(codes))
        seen["+".join(names)] += 1
        rules = [catalogue.rules[c] for c in names]
        services.append(
            Service(
                station_type=station_type,
                offset=offset,
                exams=names,
                seconds=max(
                    1, math.floor(duration(names, station_type, seen["+".join(names)]) * 60)
                ),
                fasting=any(r.fasting for r in rules),
                after_meal=any(r.after_meal for r in rules) and offset == 0,
                last=any(r.last for r in rules),
                tolerance=tolerance.get((station_type, offset), 0),
                timed_from_drink=from_drink.get((station_type, offset), False),
            )
        )
    order = []
    for i, a in enumerate(services):
        for j, b in enumerate(services):
            if i == j:
                continue
            needed = set().union(*(catalogue.prerequisites(c, ga_day) for c in b.exams))
            if b.offset == 0 and needed & set(a.exams) and not set(a.exams) & set(b.exams):
                order.append((i, j))
    return tuple(services), tuple(order)


def _timed_test(job: Job) -> tuple[int, list[int]] | None:
    """The index of her timed test's first service and of its timed draws (None: no test)."""
    timed = [i for i, s in enumerate(job.services) if s.offset > 0]
    if not timed:
        return None
    kinds = {job.services[i].station_type for i in timed}
    if len(kinds) != 1:
        raise ValueError(f"mother {job.number}: more than one timed test")
    kind = kinds.pop()
    first = next(i for i, s in enumerate(job.services) if s.offset == 0 and s.station_type == kind)
    return first, sorted(timed, key=lambda i: job.services[i].offset)


def _allowed_between(service: Service, between: BetweenDraws) -> bool:
    return all(between.allows(code) for code in service.exams)


def solve(
    instance: Instance,
    *,
    time_limit: float = 20.0,
    workers: int = 2,
    hint: Mapping[Key, int] | None = None,
    hint_rooms: Mapping[Key, str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> OptimumResult:
    """The schedule of least total waiting CP-SAT finds within the time limit, and its bound."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    horizon = instance.horizon
    by_type: dict[str, list[Room]] = defaultdict(list)
    for room in instance.stations:
        by_type[room.station_type].append(room)
    per_station: dict[str, list[cp_model.IntervalVar]] = defaultdict(list)
    starts: dict[Key, cp_model.IntVar] = {}
    waits: list[cp_model.LinearExpr] = []
    ends_of: list[cp_model.IntVar] = []
    for job in instance.jobs:
        s_vars, e_vars, ivs = [], [], []
        for service in job.services:
            rooms = by_type.get(service.station_type)
            if not rooms:
                raise ValueError(f"no station does {service.station_type}")
            latest = horizon - service.seconds
            if latest < job.arrival:
                raise ValueError(f"mother {job.number}: cannot finish by the horizon")
            name = f"m{job.number}_{service.station_type}_{service.offset}"
            start = model.new_int_var(job.arrival, latest, f"s_{name}")
            end = model.new_int_var(job.arrival + service.seconds, horizon, f"e_{name}")
            ivs.append(model.new_interval_var(start, service.seconds, end, f"i_{name}"))
            s_vars.append(start)
            e_vars.append(end)
            starts[(job.number, service.station_type, service.offset)] = start
            if len(rooms) == 1:
                room = rooms[0]
                per_station[room.code].append(ivs[-1])
                if room.closes is not None:
                    model.add(start <= room.closes - 1)
                continue
            present = []
            for room in rooms:
                here = model.new_bool_var(f"at_{name}_{room.code}")
                present.append(here)
                chosen = (hint_rooms or {}).get((job.number, service.station_type, service.offset))
                if chosen is not None:
                    model.add_hint(here, chosen == room.code)
                per_station[room.code].append(
                    model.new_optional_interval_var(
                        start, service.seconds, end, here, f"o_{name}_{room.code}"
                    )
                )
                if room.closes is not None:
                    model.add(start <= room.closes - 1).only_enforce_if(here)
            model.add_exactly_one(present)
        model.add_no_overlap(ivs)  # one place at a time
        for a, b in job.precedence:
            model.add(s_vars[b] >= e_vars[a])
        for j, svc in enumerate(job.services):
            for i, other in enumerate(job.services):
                if i == j:
                    continue
                if svc.last and not other.last:
                    model.add(s_vars[j] >= e_vars[i])
                if svc.after_meal and other.fasting:
                    model.add(s_vars[j] >= e_vars[i])
        done = model.new_int_var(job.arrival, horizon, f"done_m{job.number}")
        model.add_max_equality(done, e_vars)
        ends_of.append(done)
        covered: list[cp_model.LinearExprT] = []
        test = _timed_test(job)
        in_test = set()
        if test is not None:
            first, draws = test
            in_test = {first, *draws}
            anchor = e_vars[first] + (
                instance.drink_seconds
                if any(job.services[d].timed_from_drink for d in draws)
                else 0
            )
            for d in draws:
                dsvc = job.services[d]
                due = anchor + dsvc.offset * 60
                model.add(s_vars[d] >= due - dsvc.tolerance)
                model.add(s_vars[d] <= due + dsvc.tolerance)
            last = draws[-1]
            covered.append(e_vars[last] - s_vars[first])  # the test's own window
            for i, other in enumerate(job.services):
                if i in in_test:
                    continue
                before = model.new_bool_var(f"before_m{job.number}_{i}")
                after = model.new_bool_var(f"after_m{job.number}_{i}")
                model.add(e_vars[i] <= s_vars[first]).only_enforce_if(before)
                model.add(s_vars[i] >= e_vars[last]).only_enforce_if(after)
                if _allowed_between(other, instance.between):
                    inside = model.new_bool_var(f"inside_m{job.number}_{i}")
                    model.add(s_vars[i] >= anchor).only_enforce_if(inside)
                    model.add(e_vars[i] <= s_vars[last]).only_enforce_if(inside)
                    model.add_exactly_one([before, after, inside])
                    covered.append(other.seconds * (1 - inside))
                else:
                    model.add_exactly_one([before, after])
                    covered.append(other.seconds)
        else:
            covered.extend(s.seconds for s in job.services)
        waits.append(done - job.arrival - cp_model.LinearExpr.sum(covered))
    for room in instance.stations:
        intervals = per_station.get(room.code, [])
        if not intervals:
            continue
        if room.servers == 1:
            model.add_no_overlap(intervals)
        else:
            model.add_cumulative(intervals, [1] * len(intervals), room.servers)
    model.minimize(sum(waits))
    if hint:
        for key, var in starts.items():
            if key in hint:
                model.add_hint(var, min(max(hint[key], 0), horizon))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 1
    stop = threading.Event()

    def tick() -> None:
        began = _time.monotonic()
        while not stop.wait(0.2):
            if progress:
                progress(min(1.0, (_time.monotonic() - began) / max(time_limit, 0.001)))

    ticker = threading.Thread(target=tick, daemon=True)
    began = _time.monotonic()
    ticker.start()
    try:
        status = solver.solve(model)
    finally:
        stop.set()
        ticker.join()
    seconds = _time.monotonic() - began
    name = solver.status_name(status)
    n = len(instance.jobs)
    bound = max(0.0, solver.best_objective_bound) / 60 / n if n else 0.0
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return OptimumResult(name, n, None, round(bound, 1), None, None, None, seconds, time_limit)
    minutes = [solver.value(w) / 60 for w in waits]
    closing = instance.closes
    by_closing = sum(1 for e in ends_of if solver.value(e) <= closing) if closing is not None else n
    q = (
        statistics.quantiles(minutes, n=10)
        if len(minutes) >= 2
        else [minutes[0] if minutes else 0.0] * 9
    )
    return OptimumResult(
        status=name,
        mothers=n,
        wait_mean=round(statistics.fmean(minutes), 1) if minutes else 0.0,
        wait_bound=round(bound, 1),
        wait_p50=round(statistics.median(minutes), 1) if minutes else 0.0,
        wait_p90=round(q[8], 1),
        finished_by_closing=by_closing,
        seconds=seconds,
        time_limit=time_limit,
        waits=[round(m, 1) for m in minutes],
        starts={k: solver.value(v) for k, v in starts.items()},
    )


def seconds_between(origin: datetime, at: datetime) -> int:
    """Whole seconds, rounded down like the durations: a schedule the simulator ran, its
    starts and durations rounded down, keeps every constraint (floor a + floor b <= floor a+b)."""
    return math.floor((at - origin) / timedelta(seconds=1))
