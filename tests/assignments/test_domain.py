"""The butler choice rules, without a database."""

from __future__ import annotations

import uuid

import pytest

from app.assignments import domain
from app.assignments.domain import Candidate, NoButlerFits, Rule
from app.mothers.domain import RiskGrade

WEIGHTS = domain.parse_weights(domain.DEFAULT_WEIGHTS)


def butler(n: int, **kw: object) -> Candidate:
    base: dict[str, object] = {
        "butler_id": uuid.UUID(int=n),
        "name": f"B{n}",
        "active": True,
        "on_roster": True,
        "skills": frozenset(),
        "languages": ("zh-CN",),
        "capacity": 10,
        "load": 0,
    }
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


def choose(
    candidates: list[Candidate], grade: str = "green", language: str = "zh-CN"
) -> domain.Decision:
    return domain.choose_primary(
        candidates, grade=RiskGrade(grade), language=language, weights=WEIGHTS
    )


def test_weights_parse_and_must_cover_every_grade() -> None:
    assert WEIGHTS == {
        RiskGrade.GREEN: 1,
        RiskGrade.YELLOW: 1,
        RiskGrade.ORANGE: 2,
        RiskGrade.RED: 3,
        RiskGrade.PURPLE: 3,
    }
    with pytest.raises(ValueError, match="no weight for purple"):
        domain.parse_weights("green=1,yellow=1,orange=2,red=3")
    with pytest.raises(ValueError, match="at least 1"):
        domain.parse_weights("green=0,yellow=1,orange=2,red=3,purple=3")


@pytest.mark.parametrize(
    ("grade", "skill"),
    [("orange", "high_risk"), ("red", "high_risk"), ("purple", "infection_control")],
)
def test_risk_grades_need_skills(grade: str, skill: str) -> None:
    plain, skilled = butler(1), butler(2, skills=frozenset({skill}), load=6)
    assert choose([plain, skilled], grade).butler_id == skilled.butler_id
    with pytest.raises(NoButlerFits) as failed:
        choose([plain], grade)
    (exclusion,) = failed.value.exclusions
    assert exclusion.rule is Rule.MISSING_SKILL
    assert skill in exclusion.detail


def test_the_least_loaded_relative_to_capacity_wins() -> None:
    big = butler(1, capacity=20, load=8)  # 40% full
    small = butler(2, capacity=5, load=1)  # 20% full
    decision = choose([big, small])
    assert decision.butler_id == small.butler_id
    assert (decision.load_before, decision.load_after, decision.capacity) == (1, 2, 5)


def test_weights_count_against_capacity() -> None:
    nearly_full = butler(1, skills=frozenset({"high_risk"}), capacity=10, load=9)
    with pytest.raises(NoButlerFits) as failed:
        choose([nearly_full], "orange")  # 9 + 2 > 10
    assert failed.value.exclusions[0].rule is Rule.OVER_CAPACITY
    assert choose([nearly_full], "green").load_after == 10  # exactly full is allowed


def test_ties_are_broken_by_the_smaller_id() -> None:
    assert choose([butler(3), butler(2), butler(5)]).butler_id == uuid.UUID(int=2)


def test_language_is_preferred_when_possible() -> None:
    mandarin = butler(1, load=0)
    cantonese = butler(2, languages=("zh-CN", "yue"), load=5)
    decision = choose([mandarin, cantonese], language="yue")
    assert decision.butler_id == cantonese.butler_id
    assert "speaks yue" in decision.reasons
    fallback = choose([mandarin], language="en")
    assert any("nobody eligible speaks en" in r for r in fallback.reasons)


def test_no_fit_says_which_rule_excluded_whom() -> None:
    candidates = [
        butler(1, active=False),
        butler(2, on_roster=False),
        butler(3, load=10),
        butler(4),
    ]
    with pytest.raises(NoButlerFits) as failed:
        domain.choose_primary(
            candidates,
            grade=RiskGrade.GREEN,
            language="zh-CN",
            weights=WEIGHTS,
            exclude=[uuid.UUID(int=4)],
        )
    assert [(e.name, e.rule) for e in failed.value.exclusions] == [
        ("B1", Rule.INACTIVE),
        ("B2", Rule.NOT_ON_ROSTER),
        ("B3", Rule.OVER_CAPACITY),
        ("B4", Rule.EXCLUDED),
    ]


def test_the_decision_explains_itself() -> None:
    decision = choose([butler(1, skills=frozenset({"high_risk"}), load=4, capacity=12)], "orange")
    assert decision.reasons == [
        "active and on the duty roster",
        "has high_risk for orange risk",
        "speaks zh-CN",
        "lowest relative caseload among 1 eligible: 4/12 -> 6/12",
    ]


def test_release_moves_only_her_mothers_hardest_first() -> None:
    leaving = butler(1, skills=frozenset({"high_risk", "infection_control"}), load=7)
    a = butler(2, skills=frozenset({"infection_control"}), capacity=4, load=0)
    b = butler(3, capacity=4, load=0)
    mothers = [
        domain.MotherLoad(uuid.UUID(int=100), RiskGrade.GREEN, "zh-CN"),
        domain.MotherLoad(uuid.UUID(int=101), RiskGrade.PURPLE, "zh-CN"),
        domain.MotherLoad(uuid.UUID(int=102), RiskGrade.RED, "zh-CN"),
    ]
    moves = domain.plan_release(leaving.butler_id, mothers, [leaving, a, b], weights=WEIGHTS)
    result = {m.mother_id.int: (m.decision.butler_id.int if m.decision else None) for m in moves}
    assert [m.mother_id.int for m in moves] == [101, 102, 100]  # weight 3, 3, then 1
    assert result[101] == 2  # purple needs infection_control
    assert result[102] is None  # red needs high_risk: nobody left has it
    assert result[100] == 3  # green goes to the emptier of the two
    stuck = next(m for m in moves if m.mother_id.int == 102)
    assert {e.rule for e in stuck.exclusions} == {Rule.EXCLUDED, Rule.MISSING_SKILL}


def test_release_respects_capacity_as_it_fills() -> None:
    leaving = butler(1, load=3)
    only = butler(2, capacity=2)
    mothers = [
        domain.MotherLoad(uuid.UUID(int=100 + i), RiskGrade.GREEN, "zh-CN") for i in range(3)
    ]
    moves = domain.plan_release(leaving.butler_id, mothers, [leaving, only], weights=WEIGHTS)
    assert [m.moved for m in moves] == [True, True, False]


def test_the_primary_accompanies_when_on_duty_and_free() -> None:
    primary = butler(1)
    escort = domain.choose_accompanying(
        primary, [primary, butler(2)], grade=RiskGrade.GREEN, language="zh-CN"
    )
    assert (escort.butler_id, escort.is_cover) == (primary.butler_id, False)


@pytest.mark.parametrize(
    ("primary_kw", "why"),
    [
        ({"on_duty": False}, "off duty"),
        ({"busy": True}, "accompanies another"),
        ({"active": False}, "not active"),
    ],
)
def test_a_cover_steps_in(primary_kw: dict[str, object], why: str) -> None:
    primary = butler(1, **primary_kw)
    busy_cover = butler(2, day_visits=3)
    free_cover = butler(3, day_visits=1)
    off = butler(4, on_duty=False)
    escort = domain.choose_accompanying(
        primary, [primary, busy_cover, free_cover, off], grade=RiskGrade.GREEN, language="zh-CN"
    )
    assert (escort.butler_id, escort.is_cover) == (free_cover.butler_id, True)
    assert why in escort.reasons[0]


def test_a_cover_needs_the_skills_too() -> None:
    primary = butler(1, on_duty=False, skills=frozenset({"infection_control"}))
    with pytest.raises(NoButlerFits) as failed:
        domain.choose_accompanying(
            primary, [primary, butler(2)], grade=RiskGrade.PURPLE, language="zh-CN"
        )
    assert failed.value.exclusions[0].rule is Rule.MISSING_SKILL
