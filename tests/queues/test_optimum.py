"""The best possible day (sim/optimum.py): tiny days whose optimum is known by hand, and the
optimum against the strategies on a short simulated day."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import OgttBetweenDraws
from app.queues.domain import BetweenDraws
from sim.optimum import Instance, Job, Room, Service, solve
from sim.simulator import Scenario, run_scenario
from tests.helpers.scenarios import SHORT as SHORT_MORNING

M = 60  # seconds in a minute: the model counts seconds

VITALS = Room("VIT", "vitals", 1)
DOCTOR = Room("DOC", "doctor", 1)
LAB = Room("LAB", "blood_draw", 1)


def vitals(minutes: int) -> Service:
    return Service("vitals", 0, ("vitals",), minutes * M)


def doctor(minutes: int) -> Service:
    return Service("doctor", 0, ("consultation",), minutes * M, last=True)


def ogtt() -> list[Service]:
    """A fasting draw of 5 minutes, then draws of 2 minutes at 60 and 120 after the drink, ±5."""
    return [
        Service("blood_draw", 0, ("ogtt",), 5 * M, fasting=True),
        Service("blood_draw", 60, ("ogtt",), 2 * M, True, False, False, 5 * M, True),
        Service("blood_draw", 120, ("ogtt",), 2 * M, True, False, False, 5 * M, True),
    ]


def day(*jobs: Job, rooms: tuple[Room, ...], between: BetweenDraws | None = None) -> Instance:
    return Instance(
        jobs=jobs,
        stations=rooms,
        horizon=6 * 60 * M,
        drink_seconds=2 * M,
        between=between or BetweenDraws(),
    )


def test_two_mothers_for_one_room_one_waits_the_other_s_service() -> None:
    a = Job(1, 0, (vitals(10),))
    b = Job(2, 0, (vitals(10),))
    result = solve(day(a, b, rooms=(VITALS,)), time_limit=5, workers=1)
    assert result.status == "OPTIMAL"
    assert sorted(result.waits) == [0.0, 10.0]
    assert result.wait_mean == 5.0
    assert result.wait_bound == 5.0


def test_the_doctor_comes_last_even_when_seeing_her_first_would_wait_less() -> None:
    """Mother 1 has vitals (3) and the doctor (10); mother 2 only vitals (5), one vitals room.
    Were the doctor allowed first, nobody would wait (1: doctor 0-10, vitals 10-13). Doctor
    last: 1's vitals first (0-3), 2 waits 3 minutes; 2 first would cost 1 five."""
    one = Job(1, 0, (vitals(3), doctor(10)))
    two = Job(2, 0, (vitals(5),))
    result = solve(day(one, two, rooms=(VITALS, DOCTOR)), time_limit=5, workers=1)
    assert result.status == "OPTIMAL"
    assert result.waits == [0.0, 3.0]
    assert result.starts[(1, "doctor", 0)] >= result.starts[(1, "vitals", 0)] + 3 * M


def test_the_ogtt_draws_keep_their_window_and_the_other_mother_waits_for_it() -> None:
    """Mother 1's fasting draw 0-5, drink at 7: her 1-hour draw starts in 62..72. Mother 2
    comes at 62 for a 12-minute blood draw in the one lab room: served first (62-74) she would
    push the draw past 72, so the draw goes at 62 (its earliest) and she waits 2 minutes. The
    OGTT's own hours are not waiting, and the doctor follows the last draw."""
    one = Job(1, 0, (*ogtt(), doctor(10)))
    two = Job(2, 62 * M, (Service("blood_draw", 0, ("cbc",), 12 * M),))
    result = solve(day(one, two, rooms=(LAB, DOCTOR)), time_limit=10, workers=1)
    assert result.status == "OPTIMAL"
    assert result.waits == [0.0, 2.0]
    assert result.starts[(1, "blood_draw", 60)] == 62 * M  # due at 67, 5 minutes early
    second = result.starts[(1, "blood_draw", 120)]
    assert 122 * M <= second <= 132 * M
    assert result.starts[(1, "doctor", 0)] >= second + 2 * M


def test_between_the_draws_she_sits_still_unless_the_clinic_allows_an_exam() -> None:
    """A 20-minute scan and the OGTT, one mother. At rest the scan comes before or after the
    test, and the scan is her own time, not waiting: no wait either way, and the scan never
    starts between the fasting draw and the last draw."""
    scan = Service("ultrasound", 0, ("us_obstetric",), 20 * M)
    rooms = (LAB, DOCTOR, Room("US", "ultrasound", 1))
    mother = Job(1, 0, (*ogtt(), scan, doctor(10)))
    rest = solve(day(mother, rooms=rooms), time_limit=5, workers=1)
    allowed = solve(
        day(mother, rooms=rooms, between=BetweenDraws(OgttBetweenDraws.ANY)),
        time_limit=5,
        workers=1,
    )
    assert rest.status == allowed.status == "OPTIMAL"
    assert rest.waits == allowed.waits == [0.0]
    test_start = rest.starts[(1, "blood_draw", 0)]
    scan_start = rest.starts[(1, "ultrasound", 0)]
    last_draw = rest.starts[(1, "blood_draw", 120)]
    assert scan_start + 20 * M <= test_start or scan_start >= last_draw + 2 * M


def test_a_station_that_closes_starts_nobody_after_it() -> None:
    """Two rooms of one type, the second closing at minute 5: the second mother, coming at 6,
    must wait for the first room."""
    rooms = (Room("US1", "ultrasound", 1), Room("US2", "ultrasound", 1, closes=5 * M))
    scan = Service("ultrasound", 0, ("us_obstetric",), 15 * M)
    result = solve(day(Job(1, 0, (scan,)), Job(2, 6 * M, (scan,)), rooms=rooms), time_limit=5)
    assert result.status == "OPTIMAL"
    # Mother 1 in US2 (0-15, it closes behind her) leaves US1 to mother 2: nobody waits.
    assert result.waits == [0.0, 0.0]
    late = solve(day(Job(1, 6 * M, (scan,)), Job(2, 6 * M, (scan,)), rooms=rooms), time_limit=5)
    assert sorted(late.waits) == [0.0, 15.0]


# The simulator tests' short morning, an hour long, busier, with a 30-week mix (no OGTT).
SHORT = {
    **SHORT_MORNING,
    "closes_at": "09:00",
    "arrivals": {"booked_per_hour": 8, "punctuality_sd_minutes": 5, "walk_ins": 1},
    "visit_mix": [
        SHORT_MORNING["visit_mix"][0],
        {
            "weight": 1,
            "gestational_week": 30,
            "exams": ["cbc", "urine", "us_obstetric", "vitals", "consultation"],
        },
    ],
}


def test_the_optimum_waits_no_longer_than_either_strategy(tmp_path: Path) -> None:
    scenario = Scenario.model_validate(SHORT)
    c = run_scenario(scenario, workdir=tmp_path, progress=False, optimum_seconds=4)
    best = c.optimum
    assert best is not None
    assert best.status in ("OPTIMAL", "FEASIBLE")
    assert best.wait_mean is not None
    assert best.mothers == c.results[0].mothers
    for r in c.results:
        # The model counts whole seconds: a rounding's worth of slack per mother.
        assert best.wait_mean <= r.wait_mean + 0.1, (r.strategy, r.wait_mean, best.wait_mean)
    assert best.wait_bound <= best.wait_mean
    assert c.to_optimum is not None
    assert c.to_optimum >= 0.95
