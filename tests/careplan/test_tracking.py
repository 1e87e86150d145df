"""The care plan's exam tracking at its thresholds: pure, no database.

Each rule is tested on both sides of its boundary, with the source the table names.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from app.careplan import domain as plan
from app.careplan.domain import ExamRecord, ItemState, RecordKind
from app.careplan.registry import BUILT_IN, load_guidelines
from app.mothers.domain import RiskGrade, edd_from_lmp

CN = load_guidelines()["cn-2018"]
WHO = load_guidelines()["who-2016"]
LMP = date(2026, 5, 1)
EDD = edd_from_lmp(LMP)
BOOKING = tuple(p.exam for p in CN.booking_panel if p.when is None)


def ga(text: str) -> int:
    return plan.parse_ga(text)


def at(
    day: int,
    *,
    grade: RiskGrade = RiskGrade.GREEN,
    first_visit: int | None = None,
    records: tuple[ExamRecord, ...] = (),
    flags: frozenset[str] = frozenset(),
    choices: dict[str, plan.ChoiceMade] | None = None,
    enrolled: int | None = None,
) -> plan.Situation:
    return plan.Situation(
        edd=EDD,
        risk_grade=grade,
        today=LMP + timedelta(days=day),
        enrolled_on=LMP + timedelta(days=enrolled if enrolled is not None else day),
        first_visit_day=first_visit,
        flags=flags,
        records=records,
        choices=choices or {},
    )


def booked_earlier(day: int = 60) -> tuple[ExamRecord, ...]:
    """Her booking panel and early scan done at an earlier visit here."""
    return tuple(ExamRecord(c, RecordKind.RESULTED, day) for c in (*BOOKING, "us_early"))


def order(situation: plan.Situation, guideline: plan.Guideline = CN) -> list[str]:
    return plan.exams_to_order(guideline, situation)


# The booking panel ----------------------------------------------------------------------


@pytest.mark.parametrize("first_visit", ["6+0", "13+6", "14+0", "24+0", "34+2", "40+6"])
def test_the_booking_panel_is_ordered_at_her_first_visit_whatever_the_week(
    first_visit: str,
) -> None:
    day = ga(first_visit)
    ordered = order(at(day, first_visit=day))
    for code in ("cbc", "urine", "abo_rh", "liver_kidney", "hbsag", "syphilis", "hiv"):
        assert code in ordered, (first_visit, code)
    # Fasting glucose is ordered unless the OGTT's fasting draw gives it the same day.
    assert ("fasting_glucose" in ordered) != ("ogtt" in ordered)


def test_a_result_from_elsewhere_stands_in_for_the_booking_test() -> None:
    outside = (ExamRecord("hiv", RecordKind.OUTSIDE, ga("10+0"), detail="Haidian MCH"),)
    ordered = order(at(ga("34+2"), records=outside))
    assert "hiv" not in ordered
    assert "syphilis" in ordered


def test_a_second_visit_does_not_order_the_panel_again() -> None:
    done = tuple(ExamRecord(c, RecordKind.DONE, ga("8+0")) for c in BOOKING)
    ordered = order(at(ga("9+0"), first_visit=ga("8+0"), records=done))
    assert not set(BOOKING) & set(ordered)


def test_an_order_still_open_on_a_live_visit_is_not_ordered_twice() -> None:
    open_orders = tuple(ExamRecord(c, RecordKind.ORDERED, ga("8+0")) for c in BOOKING)
    assert not set(BOOKING) & set(order(at(ga("8+0"), records=open_orders)))


def test_the_region_setting_adds_thalassaemia_screening() -> None:
    assert "thalassaemia" not in order(at(ga("10+0")))
    assert "thalassaemia" in order(at(ga("10+0"), flags=frozenset({"thalassaemia_region"})))


# An exam's own range --------------------------------------------------------------------


@pytest.mark.parametrize(("day", "ordered"), [("10+6", False), ("11+0", True), ("13+6", True)])
def test_nt_is_ordered_only_inside_11_0_to_13_6(day: str, ordered: bool) -> None:
    situation = at(ga(day), first_visit=ga("8+0"), records=booked_earlier(), enrolled=ga("8+0"))
    assert ("nt_scan" in order(situation)) is ordered


def test_nt_carries_over_from_a_visit_at_10_0_and_is_missed_after_13_6() -> None:
    ten = at(ga("10+0"), first_visit=ga("10+0"), records=booked_earlier(70))
    states = {s.item.key: s for s in plan.item_states(CN, ten)}
    assert states["w06:nt_scan"].state is ItemState.UPCOMING
    assert "11+0-13+6" in states["w06:nt_scan"].reason
    w06 = next(
        w
        for w in plan.generate_plan(
            CN,
            edd=EDD,
            risk_grade=RiskGrade.GREEN,
            today=ten.today,
            enrolled_on=ten.enrolled_on,
            visits=[plan.VisitRef("v1", "w06", "completed", ten.today)],
            situation=ten,
        ).windows
        if w.code == "w06"
    )
    assert w06.status is not plan.WindowStatus.DONE  # a visit completed, the NT still open
    later = at(ga("14+0"), first_visit=ga("10+0"), records=booked_earlier(70), enrolled=70)
    assert {s.item.key: s.state for s in plan.item_states(CN, later)}["w06:nt_scan"] is (
        ItemState.MISSED
    )


@pytest.mark.parametrize(
    ("day", "ordered"), [("34+6", False), ("35+0", True), ("37+6", True), ("38+0", False)]
)
def test_gbs_is_ordered_inside_35_0_to_37_6(day: str, ordered: bool) -> None:
    situation = at(ga(day), first_visit=60, records=booked_earlier(), enrolled=60)
    assert ("gbs" in order(situation)) is ordered


@pytest.mark.parametrize(("day", "ordered"), [("27+6", True), ("28+0", False)])
def test_the_anatomy_scan_is_caught_up_until_the_hospitals_limit(day: str, ordered: bool) -> None:
    situation = at(ga(day), first_visit=60, records=booked_earlier(), enrolled=60)
    assert ("us_anatomy" in order(situation)) is ordered


def test_serum_screening_runs_to_20_6() -> None:
    assert CN.exams["down_screening"].ga_to == ga("20+6")


# Catch-up at a late first visit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("first_visit", "ordered"), [("28+6", True), ("29+0", True), ("36+0", True)]
)
def test_a_first_visit_after_28_weeks_still_gets_the_ogtt(first_visit: str, ordered: bool) -> None:
    day = ga(first_visit)
    assert ("ogtt" in order(at(day, first_visit=day))) is ordered


def test_a_returning_mother_who_missed_the_ogtt_window_gets_it_at_her_next_visit() -> None:
    # She came at 20 weeks and again at 29+0: an unscreened pregnancy is screened late rather
    # than never (CSOG/CMA 2022); the plan says it is a catch-up.
    situation = at(ga("29+0"), first_visit=ga("20+0"), records=booked_earlier(), enrolled=60)
    assert "ogtt" in order(situation)
    states = {s.item.key: s for s in plan.item_states(CN, situation)}
    assert states["w25:ogtt"].state is ItemState.DUE
    assert "catch-up: not done by 28+6" in states["w25:ogtt"].reason


# Offered, not ordered -------------------------------------------------------------------


def test_nipt_is_offered_not_ordered_until_she_chooses_it() -> None:
    base = at(ga("14+0"), first_visit=60, records=booked_earlier(), enrolled=60)
    assert not {"nipt", "down_screening", "prenatal_diagnosis"} & set(order(base))
    states = {s.item.exam.code: s.state for s in plan.item_states(CN, base)}
    assert states["nipt"] is ItemState.OFFERED
    chose = at(
        ga("14+0"),
        first_visit=60,
        records=booked_earlier(),
        enrolled=60,
        choices={"prenatal_screening": plan.ChoiceMade("prenatal_screening", "nipt", True)},
    )
    assert "nipt" in order(chose)
    states = {s.item.exam.code: s.state for s in plan.item_states(CN, chose)}
    assert states["down_screening"] is ItemState.NOT_CHOSEN
    assert states["prenatal_diagnosis"] is ItemState.NOT_CHOSEN


def test_declining_every_screening_closes_the_choice() -> None:
    none = {"prenatal_screening": plan.ChoiceMade("prenatal_screening", None, False)}
    situation = at(ga("16+0"), first_visit=60, records=booked_earlier(), enrolled=60, choices=none)
    assert not {"nipt", "down_screening"} & set(order(situation))
    windows = plan.generate_plan(
        CN,
        edd=EDD,
        risk_grade=RiskGrade.GREEN,
        today=situation.today,
        enrolled_on=situation.enrolled_on,
        visits=[plan.VisitRef("v1", "w14", "completed", situation.today)],
        situation=situation,
    ).windows
    assert next(w for w in windows if w.code == "w14").status is plan.WindowStatus.DONE


# "Done" means done ----------------------------------------------------------------------


def test_a_window_is_done_only_when_its_exams_are_resulted_or_declined() -> None:
    day = ga("21+0")
    visit = [plan.VisitRef("v1", "w20", "completed", LMP + timedelta(days=day))]

    def status(records: tuple[ExamRecord, ...]) -> plan.WindowStatus:
        situation = at(day, first_visit=60, records=records, enrolled=60)
        generated = plan.generate_plan(
            CN,
            edd=EDD,
            risk_grade=RiskGrade.GREEN,
            today=situation.today,
            enrolled_on=situation.enrolled_on,
            visits=visit,
            situation=situation,
        )
        return next(w for w in generated.windows if w.code == "w20").status

    nothing = booked_earlier()
    assert status(nothing) is plan.WindowStatus.DUE  # visit completed, all three exams undone
    scan = (ExamRecord("us_anatomy", RecordKind.RESULTED, day),)
    labs_back = tuple(ExamRecord(c, RecordKind.RESULTED, day) for c in ("cbc", "urine"))
    labs_out = tuple(ExamRecord(c, RecordKind.DONE, day) for c in ("cbc", "urine"))
    assert status(nothing + scan + labs_out) is plan.WindowStatus.AWAITING_RESULTS
    assert status(nothing + scan + labs_back) is plan.WindowStatus.DONE
    declined = (ExamRecord("us_anatomy", RecordKind.DECLINED, day, item_key="w20:us_anatomy"),)
    assert status(nothing + declined + labs_back) is plan.WindowStatus.DONE


def test_a_declined_exam_is_not_ordered() -> None:
    declined = (ExamRecord("hiv", RecordKind.DECLINED, ga("10+0"), item_key="booking:hiv"),)
    assert "hiv" not in order(at(ga("10+0"), records=declined))


# Repeats --------------------------------------------------------------------------------


def test_one_obstetric_scan_from_37_weeks_then_a_weekly_nst() -> None:
    history = (*booked_earlier(), ExamRecord("gbs", RecordKind.RESULTED, ga("35+0")))
    first = order(at(ga("37+0"), first_visit=60, records=history, enrolled=60))
    assert {"us_obstetric", "nst"} <= set(first)
    done = history + tuple(ExamRecord(c, RecordKind.RESULTED, ga("37+0")) for c in first)
    for week in ("38+0", "39+0", "40+0"):
        then = order(at(ga(week), first_visit=60, records=done, enrolled=60))
        assert "nst" in then, week
        assert "us_obstetric" not in then, week
        done += (ExamRecord("nst", RecordKind.RESULTED, ga(week)),)


@pytest.mark.parametrize(
    ("grade", "day", "nst"),
    [
        (RiskGrade.GREEN, "32+0", False),
        (RiskGrade.GREEN, "36+6", False),
        (RiskGrade.GREEN, "37+0", True),
        (RiskGrade.ORANGE, "31+6", False),
        (RiskGrade.ORANGE, "32+0", True),
        (RiskGrade.RED, "34+0", True),
    ],
)
def test_nst_from_32_weeks_when_high_risk_and_from_37_for_all(
    grade: RiskGrade, day: str, nst: bool
) -> None:
    situation = at(ga(day), grade=grade, first_visit=60, records=booked_earlier(), enrolled=60)
    assert ("nst" in order(situation)) is nst


def test_bile_acids_only_where_indicated() -> None:
    base = at(ga("33+0"), first_visit=60, records=booked_earlier(), enrolled=60)
    assert "liver_bile_acids" not in order(base)
    itching = at(
        ga("33+0"),
        first_visit=60,
        records=booked_earlier(),
        enrolled=60,
        flags=frozenset({"cholestasis_suspected"}),
    )
    assert "liver_bile_acids" in order(itching)


# Late pregnancy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "actions"),
    [
        ("40+6", []),
        ("41+0", [plan.LateAction.INDUCTION_DECISION]),
        ("41+6", [plan.LateAction.INDUCTION_DECISION]),
        ("42+0", [plan.LateAction.INDUCTION_DECISION, plan.LateAction.POST_TERM]),
    ],
)
def test_from_41_0_the_doctor_decides_induction_and_42_0_alerts(
    day: str, actions: list[plan.LateAction]
) -> None:
    assert plan.late_actions(CN, ga(day)) == actions


def test_a_table_row_that_can_never_meet_its_window_is_refused() -> None:
    table = json.loads((BUILT_IN / "cn-2018.json").read_text())
    table["risk_extra_windows"]["orange"][1]["exams"].append("nst")  # 30-31+6; NST from 32+0
    with pytest.raises(ValueError, match=r"window hr30 \(30\+0-31\+6\) lists nst"):
        plan.load_guideline(table)


def test_an_unknown_condition_is_refused() -> None:
    table = json.loads((BUILT_IN / "cn-2018.json").read_text())
    table["windows"][0]["exams"].append({"exam": "cbc", "when": "full_moon"})
    with pytest.raises(ValueError, match="unknown conditions full_moon"):
        plan.load_guideline(table)


# Results that bring exams in ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "raised"),
    [
        (109.9, "g/L", True),
        (110.0, "g/L", False),
        (10.9, "g/dL", True),
        (11.0, "g/dL", False),
        (95.0, None, False),  # no unit: not assessed here (the lab-safety review catches it)
    ],
)
def test_ferritin_when_haemoglobin_is_under_110_g_per_l(
    value: float, unit: str | None, raised: bool
) -> None:
    flags = plan.flags_from_results(CN, [plan.Observed("718-7", value, unit, None)])
    assert ("anaemia" in flags) is raised
    situation = at(
        ga("20+0"), first_visit=60, records=booked_earlier(), enrolled=60, flags=frozenset(flags)
    )
    assert ("ferritin" in order(situation)) is raised


def test_the_newest_haemoglobin_decides() -> None:
    newest_first = [
        plan.Observed("718-7", 118, "g/L", None),
        plan.Observed("718-7", 98, "g/L", None),
    ]
    assert "anaemia" not in plan.flags_from_results(CN, newest_first)


@pytest.mark.parametrize(
    ("text", "raised"),
    [("O Rh(D) Neg", True), ("Rh阴性", True), ("A Rh(D) Pos", False)],
)
def test_an_rh_negative_blood_group_adds_the_antibody_titre(text: str, raised: bool) -> None:
    flags = frozenset(plan.flags_from_results(CN, [plan.Observed("882-1", None, None, text)]))
    assert ("rh_negative" in flags) is raised
    at_booking = order(at(ga("10+0"), flags=flags))
    assert ("rh_antibody" in at_booking) is raised
    at_26 = order(
        at(
            ga("26+0"),
            first_visit=60,
            enrolled=60,
            flags=flags,
            records=(*booked_earlier(), ExamRecord("rh_antibody", RecordKind.RESULTED, 60)),
        )
    )
    assert ("rh_antibody" in at_26) is raised


def test_twins_bring_the_chorionicity_scan() -> None:
    assert "chorionicity" not in order(at(ga("12+0")))
    assert "chorionicity" in order(at(ga("12+0"), flags=frozenset({"multiple_pregnancy"})))


def test_the_who_table_screens_urine_by_culture() -> None:
    ordered = order(at(ga("10+0")), WHO)
    assert "urine_culture" in ordered
    assert "Midstream urine culture" in WHO.exams["urine_culture"].name


# Booking proposes a date inside the open ranges ------------------------------------------


def test_booking_proposes_a_date_inside_the_ranges_still_open() -> None:
    situation = at(ga("10+0"), first_visit=ga("10+0"), records=booked_earlier(70), enrolled=70)
    proposal = plan.propose_next_visit(CN, situation)
    assert proposal is not None
    assert "nt_scan" in proposal.exams
    assert proposal.from_date == LMP + timedelta(days=ga("11+0"))
    assert proposal.to_date == LMP + timedelta(days=ga("13+6"))
