"""The queue rules on plain values: no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.core.settings import OgttBetweenDraws, Routing
from app.queues.domain import (
    REST,
    BetweenDraws,
    Busy,
    Candidate,
    Catalogue,
    Doable,
    StepView,
    blockers,
    doable_steps,
    estimate_waits,
    parse_precedence,
    parse_sequence,
    sort_key,
    timing_start_problem,
)
from tests.helpers.catalogues import CATALOGUE, DRINK, OGTT_FROM_DRINK, rule

T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


def steps(*codes: str, done: tuple[str, ...] = (), done_at: datetime = T0) -> list[StepView]:
    out = []
    for code in codes:
        order = uuid.uuid4()
        for seq in CATALOGUE.rules[code].steps:
            key = f"{code}+{seq.offset_minutes}" if seq.offset_minutes else code
            out.append(
                StepView(
                    id=uuid.uuid4(),
                    order_id=order,
                    exam_code=code,
                    station_type=CATALOGUE.rules[code].station_type,
                    offset_minutes=seq.offset_minutes,
                    tolerance_minutes=seq.tolerance_minutes,
                    state="done" if key in done else "pending",
                    done_at=done_at if key in done else None,
                )
            )
    return out


def doable(views: list[StepView], ga_day: int = 180) -> set[str]:
    return {
        f"{d.step.exam_code}+{d.step.offset_minutes}" if d.step.offset_minutes else d.step.exam_code
        for d in doable_steps(views, CATALOGUE, ga_day)
    }


def test_the_doctor_is_last_and_after_vitals() -> None:
    views = steps("vitals", "urine", "consultation")
    assert doable(views) == {"vitals", "urine"}
    doctor = next(v for v in views if v.exam_code == "consultation")
    assert blockers(doctor, views, CATALOGUE, 180) == [
        "after vitals",
        "last, after every other exam of the day",
    ]
    assert doable(steps("vitals", "urine", "consultation", done=("vitals", "urine"))) == {
        "consultation"
    }


def test_fasting_exams_come_before_meal_dependent_ones() -> None:
    assert doable(steps("fasting_glucose", "nst")) == {"fasting_glucose"}
    assert doable(steps("fasting_glucose", "nst", done=("fasting_glucose",))) == {"nst"}


def test_the_ogtt_draws_are_timed_from_the_first() -> None:
    views = steps("ogtt", "urine")
    assert doable(views) == {"ogtt", "urine"}
    after_first = steps("ogtt", done=("ogtt",), done_at=T0)
    timed = {d.step.offset_minutes: d for d in doable_steps(after_first, CATALOGUE, 180)}
    assert set(timed) == {60, 120}
    assert timed[60].due_at == T0 + timedelta(minutes=60)
    assert timed[60].available_at == T0 + timedelta(minutes=55)
    assert timed[120].available_at == T0 + timedelta(minutes=115)
    # Fasting lasts until the last draw: nothing after a meal before then.
    pending_nst = steps("ogtt", "nst", done=("ogtt", "ogtt+60"))
    assert "nst" not in doable(pending_nst)


def test_a_precedence_can_hold_only_in_a_range_of_weeks() -> None:
    views = steps("us_early", "urine")
    assert doable(views, ga_day=70) == {"us_early"}  # 10+0: full bladder for the scan
    assert doable(views, ga_day=90) == {"us_early", "urine"}  # 12+6: no longer


def test_the_catalogue_refuses_cycles_and_unknown_exams() -> None:
    CATALOGUE.validate()
    cyclic = Catalogue(
        {
            "a": rule("a", "x", 1, precedence=[{"before": "b"}]),
            "b": rule("b", "x", 2, precedence=[{"before": "a"}]),
        }
    )
    with pytest.raises(ValueError, match="cycle"):
        cyclic.validate()
    with pytest.raises(ValueError, match="unknown exam"):
        Catalogue({"a": rule("a", "x", 1, precedence=[{"after": "zz"}])}).validate()
    with pytest.raises(ValueError, match="exactly one"):
        parse_precedence([{"before": "a", "after": "b"}])
    with pytest.raises(ValueError, match="offset 0"):
        parse_sequence([{"offset_minutes": 60}])


def cand(minutes_booked: int, **kw: object) -> Candidate:
    return Candidate(
        id=uuid.uuid4(),
        ticket_number=int(kw.get("ticket", 1)),  # type: ignore[call-overload]
        ref_time=T0 + timedelta(minutes=minutes_booked),
        entered_at=kw.get("entered", T0),  # type: ignore[arg-type]
        available_at=kw.get("available", T0),  # type: ignore[arg-type]
        due_at=kw.get("due"),  # type: ignore[arg-type]
        urgent=bool(kw.get("urgent", False)),
        fasting=bool(kw.get("fasting", False)),
        station_type=str(kw.get("station", "blood_draw")),
    )


def order(cands: list[Candidate], now: datetime, routing: Routing = Routing.PARALLEL) -> list[int]:
    ranked = sorted(
        cands, key=lambda c: sort_key(c, now=now, routing=routing, ageing=timedelta(minutes=30))
    )
    return [cands.index(c) for c in ranked]


def test_the_sort_key_urgent_then_fasting_then_booked_time() -> None:
    now = T0 + timedelta(minutes=5)
    cands = [cand(0), cand(10, fasting=True), cand(20, urgent=True), cand(-30, ticket=9)]
    assert order(cands, now) == [2, 1, 3, 0]
    # Fasting counts only at the blood draw.
    scan = [cand(0, station="ultrasound"), cand(10, fasting=True, station="ultrasound")]
    assert order(scan, now) == [0, 1]


def test_ageing_means_nobody_waits_forever() -> None:
    old = cand(60, entered=T0)  # booked late, waiting since T0
    fasting = cand(0, fasting=True, entered=T0 + timedelta(minutes=25))
    assert order([old, fasting], T0 + timedelta(minutes=29)) == [1, 0]
    # After 30 minutes she joins the fasting tier, where the booked time decides.
    assert order([old, fasting], T0 + timedelta(minutes=31)) == [1, 0]
    late_fasting = cand(90, fasting=True, entered=T0 + timedelta(minutes=25))
    assert order([old, late_fasting], T0 + timedelta(minutes=31)) == [0, 1]


def test_a_due_timed_draw_goes_first_and_fixed_is_first_come() -> None:
    now = T0 + timedelta(minutes=60)
    due = cand(90, due=now, available=now - timedelta(minutes=5), entered=T0)
    early = cand(0, fasting=True, entered=now - timedelta(minutes=1))
    assert order([early, due], now) == [1, 0]
    a = cand(50, entered=T0 + timedelta(minutes=2), ticket=2)
    b = cand(0, entered=T0 + timedelta(minutes=3), ticket=3, urgent=True)
    assert order([b, a], now, Routing.FIXED) == [1, 0]


def test_waits_are_list_scheduled_over_the_rooms() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    waits = estimate_waits(
        2,
        [Busy(10.0)],
        [(ids[0], 0, 15), (ids[1], 0, 15), (ids[2], 0, 15), (ids[3], 40, 5)],
    )
    assert [(waits[i].position, waits[i].wait_minutes) for i in ids] == [
        (1, 0),  # the free room
        (2, 10),  # when the busy one frees
        (3, 15),
        (4, 40),  # not before she is due
    ]


def test_a_mother_between_timed_draws_yields_to_others() -> None:
    now = T0 + timedelta(minutes=30)
    in_gap = Candidate(
        id=uuid.uuid4(),
        ticket_number=1,
        ref_time=T0,
        entered_at=T0,
        available_at=T0,
        due_at=None,
        urgent=False,
        fasting=False,
        station_type="ultrasound",
        gap_until=T0 + timedelta(minutes=120),  # her 2-hour draw
    )
    later = cand(20, station="ultrasound", ticket=2, entered=T0 + timedelta(minutes=25))
    assert order([in_gap, later], now) == [1, 0]  # she must stay anyway; the other need not
    # After her last draw she is ordinary again, and her ageing counts from then: the other
    # mother, aged already, goes first until she is aged too; then the booked time decides.
    assert order([in_gap, later], T0 + timedelta(minutes=125)) == [1, 0]
    assert order([in_gap, later], T0 + timedelta(minutes=151)) == [0, 1]


# The OGTT timed from the glucose drink, and what she may do between its draws (issue 20) ----


def ogtt_day(
    *others: str,
    done: tuple[int, ...] = (),
    drink: datetime | None = None,
    fasting_done_at: datetime = T0,
) -> list[StepView]:
    """Her OGTT (its fasting draw done at ``fasting_done_at`` when 0 is in ``done``, the drink
    recorded at ``drink``) and other pending exams."""
    order = uuid.uuid4()
    out = [
        StepView(
            id=uuid.uuid4(),
            order_id=order,
            exam_code="ogtt",
            station_type="blood_draw",
            offset_minutes=seq.offset_minutes,
            tolerance_minutes=seq.tolerance_minutes,
            state="done" if seq.offset_minutes in done else "pending",
            done_at=fasting_done_at + timedelta(minutes=seq.offset_minutes)
            if seq.offset_minutes in done
            else None,
            timed_from=seq.timed_from,
            timing_started_at=drink if seq.offset_minutes == 0 else None,
        )
        for seq in DRINK.rules["ogtt"].steps
    ]
    for code in others:
        out.append(
            StepView(
                id=uuid.uuid4(),
                order_id=uuid.uuid4(),
                exam_code=code,
                station_type=DRINK.rules[code].station_type,
                offset_minutes=0,
                tolerance_minutes=None,
                state="pending",
            )
        )
    return out


def doable_now(views: list[StepView], between: BetweenDraws = REST) -> dict[str, Doable]:
    return {
        f"{d.step.exam_code}+{d.step.offset_minutes}"
        if d.step.offset_minutes
        else d.step.exam_code: d
        for d in doable_steps(views, DRINK, 180, between=between)
    }


def test_a_sequence_may_count_from_the_glucose_drink_and_says_so_exactly() -> None:
    steps_ = parse_sequence(OGTT_FROM_DRINK)
    assert [s.timed_from for s in steps_] == [None, "glucose_drink", "glucose_drink"]
    with pytest.raises(ValueError, match="counts from one of: glucose_drink"):
        parse_sequence([{"offset_minutes": 0}, {"offset_minutes": 60, "from": "breakfast"}])
    with pytest.raises(ValueError, match="not on the first step"):
        parse_sequence([{"offset_minutes": 0, "from": "glucose_drink"}])
    with pytest.raises(ValueError, match="count from one moment"):
        parse_sequence(
            [
                {"offset_minutes": 0},
                {"offset_minutes": 60, "from": "glucose_drink"},
                {"offset_minutes": 120},
            ]
        )
    with pytest.raises(ValueError, match="unknown sequence keys: form"):  # a misspelt "from"
        parse_sequence([{"offset_minutes": 0}, {"offset_minutes": 60, "form": "glucose_drink"}])


def test_the_timed_draws_wait_for_the_drink_and_count_from_its_start() -> None:
    before = ogtt_day(done=(0,))
    assert "ogtt+60" not in doable_now(before)
    pending = next(v for v in before if v.offset_minutes == 60)
    assert blockers(pending, before, DRINK, 180) == [
        "glucose drink not started (the blood-draw station records it)"
    ]
    # Fasting draw done at 08:00, drink begun at 08:07: the 1-hour draw is due at 09:07 ±5.
    drink = T0 + timedelta(minutes=7)
    after = doable_now(ogtt_day(done=(0,), drink=drink))
    assert after["ogtt+60"].due_at == T0 + timedelta(minutes=67)
    assert after["ogtt+60"].available_at == T0 + timedelta(minutes=62)
    assert after["ogtt+120"].due_at == T0 + timedelta(minutes=127)
    assert after["ogtt+120"].available_at == T0 + timedelta(minutes=122)


def test_she_sits_still_between_the_draws_unless_the_clinic_allows_an_exam() -> None:
    drink = T0 + timedelta(minutes=3)
    running = ogtt_day("us_obstetric", "urine", done=(0,), drink=drink)
    scan = next(v for v in running if v.exam_code == "us_obstetric")
    # rest (the default): nothing but her draws until the last one.
    assert set(doable_now(running)) == {"ogtt+60", "ogtt+120"}
    assert blockers(scan, running, DRINK, 180) == [
        "after the last draw of the ogtt: she sits still between its draws"
        " (OGTT_BETWEEN_DRAWS=rest; CMA 2014 GDM guideline / CSOG 2022: 检查期间静坐)"
    ]
    listed = BetweenDraws(OgttBetweenDraws.LISTED, frozenset({"us_obstetric"}))
    assert set(doable_now(running, listed)) == {"ogtt+60", "ogtt+120", "us_obstetric"}
    anything = BetweenDraws(OgttBetweenDraws.ANY)
    assert set(doable_now(running, anything)) == {"ogtt+60", "ogtt+120", "us_obstetric", "urine"}
    # Before the fasting draw and after the last draw, the setting does not apply.
    assert {"us_obstetric", "urine"} <= set(doable_now(ogtt_day("us_obstetric", "urine")))
    finished = ogtt_day("us_obstetric", done=(0, 60, 120), drink=drink)
    assert set(doable_now(finished)) == {"us_obstetric"}


def test_between_the_fasting_draw_and_the_drink_she_waits_for_the_drink_whatever_the_setting() -> (
    None
):
    undrunk = ogtt_day("us_obstetric", done=(0,))
    scan = next(v for v in undrunk if v.exam_code == "us_obstetric")
    anything = BetweenDraws(OgttBetweenDraws.ANY)
    assert doable_now(undrunk, anything) == {}
    assert blockers(scan, undrunk, DRINK, 180, between=anything) == [
        "after the glucose drink of the ogtt (not recorded yet)"
    ]


def test_the_settings_parse_into_the_rule() -> None:
    assert BetweenDraws.parse(OgttBetweenDraws.LISTED, " us_obstetric, nst ,") == BetweenDraws(
        OgttBetweenDraws.LISTED, frozenset({"us_obstetric", "nst"})
    )
    assert not BetweenDraws.parse(OgttBetweenDraws.LISTED, "").allows("us_obstetric")  # = rest
    assert not REST.allows("us_obstetric")
    assert BetweenDraws(OgttBetweenDraws.ANY).allows("anything")


def test_a_drink_time_is_refused_before_the_fasting_draw_s_minute_or_in_the_future() -> None:
    done = T0 + timedelta(minutes=5, seconds=40)  # the fasting draw finished at 00:05:40
    now = T0 + timedelta(minutes=30)
    ok = {"first_done_at": done, "now": now}
    # The lab writes the drink to the minute: 00:05 is the draw's own minute, 00:04:59 is not.
    assert timing_start_problem(T0 + timedelta(minutes=5), **ok) is None
    assert "before the fasting draw finished" in str(
        timing_start_problem(T0 + timedelta(minutes=4, seconds=59), **ok)
    )
    # A station's clock may run a minute fast; more is the future.
    assert timing_start_problem(now + timedelta(minutes=1), **ok) is None
    assert timing_start_problem(now + timedelta(minutes=1, seconds=1), **ok) == "in the future"
