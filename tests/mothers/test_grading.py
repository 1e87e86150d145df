"""NHFPC 2017 risk grading as pure rules: labels, purple beside the colour, tasks, age floors."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest

from app.mothers import grading
from app.mothers.domain import Risk, RiskGrade

RULES = grading.risk_rules()
G, Y, OR, R = RiskGrade.GREEN, RiskGrade.YELLOW, RiskGrade.ORANGE, RiskGrade.RED


def test_labels_as_the_rules_word_them() -> None:
    assert [RULES.label(Risk(g)) for g in (G, Y, OR, R)] == [
        "绿色 低风险 (green, low risk)",
        "黄色 一般风险 (yellow, general risk)",
        "橙色 较高风险 (orange, higher risk)",
        "红色 高风险 (red, high risk)",
    ]
    assert RULES.label(Risk(OR, purple=True)) == (
        "橙色 较高风险 (orange, higher risk) + 紫色 传染性疾病 (purple, infectious disease)"
    )


def test_purple_is_never_a_colour() -> None:
    with pytest.raises(ValueError, match="beside"):
        Risk(RiskGrade.PURPLE)


def test_purple_stands_beside_the_colour() -> None:
    risk = Risk(OR, purple=True)
    assert risk.needs_infection_control
    assert risk.is_high_risk
    assert risk.is_managed_case
    assert risk.grades == (OR, RiskGrade.PURPLE)
    plain = Risk(G, purple=True)
    assert plain.needs_infection_control
    assert not plain.is_high_risk
    assert plain.is_managed_case
    assert not Risk(Y).is_managed_case
    assert not Risk(Y).needs_infection_control


@pytest.mark.parametrize(
    ("risk", "kinds"),
    [
        (Risk(G), []),
        (Risk(Y), []),
        (Risk(OR), ["risk.district_report"]),
        (Risk(R), ["risk.referral", "risk.district_report"]),
        (Risk(OR, purple=True), ["risk.district_report", "risk.pmtct"]),
        (Risk(G, purple=True), ["risk.pmtct"]),
    ],
)
def test_managed_cases_bring_their_tasks(risk: Risk, kinds: list[str]) -> None:
    assert [t.kind for t in RULES.new_tasks(None, risk)] == kinds
    assert RULES.is_managed_case(risk) is bool(kinds)


def test_tasks_come_when_the_grade_is_raised_not_lowered() -> None:
    assert [t.kind for t in RULES.new_tasks(Risk(OR), Risk(R))] == [
        "risk.referral",
        "risk.district_report",
    ]
    assert RULES.new_tasks(Risk(R), Risk(OR)) == []
    assert RULES.new_tasks(Risk(OR), Risk(OR)) == []
    assert [t.kind for t in RULES.new_tasks(Risk(OR), Risk(OR, purple=True))] == [
        "risk.district_report",
        "risk.pmtct",
    ]


class TestAgeFloor:
    @pytest.mark.parametrize(
        ("born", "grade"),
        [
            (date(1991, 11, 29), G),  # 34, her 35th birthday is tomorrow
            (date(1991, 11, 28), Y),  # 35 today
            (date(1986, 11, 29), Y),  # 39
            (date(1986, 11, 28), OR),  # 40 today
            (date(2007, 11, 29), Y),  # 18
            (date(2007, 11, 28), G),  # 19 today
        ],
    )
    def test_at_the_birthday(self, born: date, grade: RiskGrade) -> None:
        assert grading.apply_age_floor(RULES, G, born=born, on=date(2026, 11, 28)).grade is grade

    def test_the_floor_never_lowers(self) -> None:
        floored = grading.apply_age_floor(RULES, R, born=date(1980, 1, 1), on=date(2026, 11, 28))
        assert (floored.grade, floored.floor) == (R, None)

    def test_the_reason_names_the_rule_and_its_source(self) -> None:
        floored = grading.apply_age_floor(RULES, Y, born=date(1985, 1, 1), on=date(2026, 11, 28))
        reason = floored.reason(RULES, Y)
        assert "age≥40 (age 41)" in reason
        assert "NHFPC 2017" in reason
        assert "橙色" in reason


class TestLegacyGrade:
    def test_purple_sets_the_flag_and_keeps_her_colour(self) -> None:
        assert grading.from_legacy(RiskGrade.PURPLE, Risk(OR)) == Risk(OR, purple=True)

    def test_purple_without_a_colour_is_yellow(self) -> None:
        assert grading.from_legacy(RiskGrade.PURPLE, None) == Risk(Y, purple=True)

    def test_a_colour_keeps_the_flag(self) -> None:
        assert grading.from_legacy(R, Risk(G, purple=True)) == Risk(R, purple=True)


class TestRulesFile:
    def raw(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(grading.BUILT_IN.read_text(encoding="utf-8"))
        return data

    def test_a_colour_the_database_does_not_know_is_refused(self) -> None:
        raw = copy.deepcopy(self.raw())
        raw["colours"].append({**raw["colours"][0], "code": "blue", "rank": 9})
        with pytest.raises(ValueError, match="blue"):
            grading.load_risk_rules(raw)

    def test_an_undefined_task_is_refused(self) -> None:
        raw = copy.deepcopy(self.raw())
        raw["colours"][2]["tasks"] = ["risk.nowhere"]
        with pytest.raises(ValueError, match=r"risk\.nowhere"):
            grading.load_risk_rules(raw)

    def test_a_province_may_change_the_tasks_and_floors(self) -> None:
        raw = copy.deepcopy(self.raw())
        raw["colours"][1]["tasks"] = ["risk.district_report"]
        raw["age_floors"] = [f for f in raw["age_floors"] if f.get("min_age") != 35]
        rules = grading.load_risk_rules(raw)
        assert [t.kind for t in rules.new_tasks(None, Risk(Y))] == ["risk.district_report"]
        assert (
            grading.apply_age_floor(rules, G, born=date(1990, 1, 1), on=date(2026, 11, 28)).grade
            is G
        )
