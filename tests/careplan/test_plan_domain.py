"""Care-plan generation from guideline tables: pure, no database."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.careplan import domain as plan
from app.careplan.domain import VisitRef, WindowStatus
from app.careplan.registry import BUILT_IN, load_guidelines
from app.mothers.domain import RiskGrade, edd_from_lmp

CN = load_guidelines()["cn-2018"]
LMP = date(2026, 5, 1)
EDD = edd_from_lmp(LMP)


def codes(windows: list[plan.Window]) -> list[str]:
    return [w.code for w in windows]


def test_naegele_from_the_issue() -> None:
    assert date(2027, 2, 5) == EDD


def test_ga_text_parses_to_days() -> None:
    assert plan.parse_ga("13+6") == 97
    assert plan.parse_ga("14+0") == 98
    with pytest.raises(ValueError, match="weeks\\+days"):
        plan.parse_ga("13+7")


def test_window_edges_13_6_and_14_0() -> None:
    first, second = CN.windows[0], CN.windows[1]
    assert plan.window_dates(first, EDD) == (LMP + timedelta(days=42), LMP + timedelta(days=97))
    assert plan.window_dates(second, EDD)[0] == LMP + timedelta(days=98)
    assert plan.window_on(CN, RiskGrade.GREEN, 97).code == "w06"  # type: ignore[union-attr]
    assert plan.window_on(CN, RiskGrade.GREEN, 98).code == "w14"  # type: ignore[union-attr]
    assert plan.window_on(CN, RiskGrade.GREEN, 20) is None  # before 6 weeks


def test_term_visits_are_weekly_and_outpatient_windows_end_at_40_6() -> None:
    weekly = [w for w in CN.windows if w.code.startswith("w37")]
    assert [(w.code, w.from_day, w.to_day) for w in weekly] == [
        (f"w37-{week}", week * 7, week * 7 + 6) for week in range(37, 41)
    ]
    assert max(w.to_day for w in CN.windows) == plan.parse_ga("40+6")
    assert CN.induction_from == plan.parse_ga("41+0")  # then the doctor decides admission


def test_the_default_schedule_has_ten_visits_for_low_risk() -> None:
    # CSOG 2018 asks for 7-11: six windows and four weekly ones to 40+6.
    assert len(plan.windows_for(CN, RiskGrade.GREEN)) == 10


@pytest.mark.parametrize(
    ("grade", "extra"), [("yellow", 0), ("purple", 0), ("orange", 3), ("red", 5)]
)
def test_high_risk_grades_add_visits(grade: str, extra: int) -> None:
    base = plan.windows_for(CN, RiskGrade.GREEN)
    windows = plan.windows_for(CN, RiskGrade(grade))
    assert len(windows) - len(base) == extra
    assert all(w.risk_extra for w in windows if w not in base)
    assert [w.from_day for w in windows] == sorted(w.from_day for w in windows)


def situation(ga_today: int, **kw: object) -> plan.Situation:
    today = LMP + timedelta(days=ga_today)
    base: dict[str, object] = {
        "edd": EDD,
        "risk_grade": RiskGrade.GREEN,
        "today": today,
        "enrolled_on": kw.pop("enrolled_on", today),
    }
    base.update(kw)
    return plan.Situation(**base)  # type: ignore[arg-type]


def test_exams_follow_their_own_gestational_range() -> None:
    w06 = CN.windows[0]
    assert "nt_scan" in [e.code for e in plan.exams_of_window(CN, w06)]
    at_10_weeks = plan.exams_to_order(CN, situation(70))
    at_12_weeks = plan.exams_to_order(CN, situation(84))
    assert "nt_scan" not in at_10_weeks
    assert "nt_scan" in at_12_weeks
    assert at_12_weeks[:2] == ["vitals", "consultation"]  # every visit


def test_plan_marks_done_booked_due_overdue_and_upcoming() -> None:
    today = LMP + timedelta(days=180)  # 25+5
    done_at_8_4 = [
        plan.ExamRecord(code, plan.RecordKind.RESULTED, 60)
        for code in ("us_early", *plan_codes("booking"))
    ]
    generated = plan.generate_plan(
        CN,
        edd=EDD,
        risk_grade=RiskGrade.GREEN,
        today=today,
        enrolled_on=LMP + timedelta(days=50),
        visits=[
            VisitRef("v1", "w06", "completed", LMP + timedelta(days=60)),
            VisitRef("v2", "w20", "no_show", LMP + timedelta(days=150)),
            VisitRef("v3", "w29", "booked", LMP + timedelta(days=205)),
        ],
        situation=situation(180, enrolled_on=LMP + timedelta(days=50), records=done_at_8_4),
    )
    status = {w.code: w.status for w in generated.windows}
    # Her 8+4 visit did the early scan, but the NT (11+0-13+6) was never done: not "done".
    assert status["w06"] is WindowStatus.INCOMPLETE
    assert status["w14"] is WindowStatus.OVERDUE  # never attended: screening closed at 22+6
    assert status["w20"] is WindowStatus.DUE  # the anatomy scan is a catch-up until 27+6
    assert status["w25"] is WindowStatus.DUE
    assert status["w29"] is WindowStatus.BOOKED
    assert status["w33"] is WindowStatus.UPCOMING
    w06 = {e.code: e.state for e in next(w for w in generated.windows if w.code == "w06").exams}
    assert w06 == {"us_early": plan.ItemState.RESULTED, "nt_scan": plan.ItemState.MISSED}
    assert all(e.state is plan.ItemState.RESULTED for e in generated.booking_panel)
    assert next(w for w in generated.windows if w.code == "w20").visit_ids == []


def plan_codes(origin: str) -> list[str]:
    return [p.exam for p in CN.booking_panel if p.when is None] if origin == "booking" else []


def test_windows_before_enrolment_are_not_overdue() -> None:
    today = LMP + timedelta(days=180)
    generated = plan.generate_plan(
        CN, edd=EDD, risk_grade=RiskGrade.GREEN, today=today, enrolled_on=today
    )
    before = [w.code for w in generated.windows if w.status is WindowStatus.BEFORE_ENROLMENT]
    assert before == ["w06", "w14", "w20"]


def test_the_plan_is_regenerated_after_re_dating() -> None:
    today = LMP + timedelta(days=96)  # 13+5 by LMP
    by_lmp = plan.generate_plan(
        CN, edd=EDD, risk_grade=RiskGrade.GREEN, today=today, enrolled_on=today
    )
    later_edd = EDD + timedelta(days=5)  # the scan says five days younger
    by_scan = plan.generate_plan(
        CN, edd=later_edd, risk_grade=RiskGrade.GREEN, today=today, enrolled_on=LMP
    )
    for old, new in zip(by_lmp.windows, by_scan.windows, strict=True):
        assert new.start_date - old.start_date == timedelta(days=5)
    assert {w.code: w.status for w in by_scan.windows}["w06"] is WindowStatus.DUE
    assert by_scan.edd == later_edd


def test_a_hospital_table_is_loaded_from_its_own_directory(tmp_path: Path) -> None:
    table = json.loads((BUILT_IN / "cn-2018.json").read_text())
    table.update(code="our-hospital", version="2026.2", title="Our clinic's own schedule")
    table["windows"] = [
        {"code": "only", "label": "one visit", "from": "10+0", "to": "12+6", "exams": ["cbc"]}
    ]
    (tmp_path / "ours.json").write_text(json.dumps(table))
    tables = load_guidelines(str(tmp_path))
    assert {"cn-2018", "who-2016", "our-hospital"} <= set(tables)
    ours = tables["our-hospital"]
    assert codes(plan.windows_for(ours, RiskGrade.GREEN)) == ["only"]


def test_a_broken_table_is_refused_with_the_reason(tmp_path: Path) -> None:
    table = json.loads((BUILT_IN / "cn-2018.json").read_text())
    table["code"] = "broken"
    table["windows"][0]["exams"].append("xray")
    (tmp_path / "broken.json").write_text(json.dumps(table))
    with pytest.raises(ValueError, match=r"broken\.json.*unknown exams xray"):
        load_guidelines(str(tmp_path))


def test_the_who_table_has_eight_contacts() -> None:
    who = load_guidelines()["who-2016"]
    assert len(plan.windows_for(who, RiskGrade.RED)) == 8
