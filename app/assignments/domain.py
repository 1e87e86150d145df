"""Choosing butlers: pure rules, no ORM, tested without a database.

Primary butler (whole pregnancy): active, on the roster, with the skills her risk grade needs,
and room in a caseload weighted by risk. Among those, her language first, then the least loaded
relative to capacity; ties go to the butler with the smaller id (the longest-serving record), so
the same inputs always give the same answer.

Accompanying butler (one visit): the primary when she is on duty and free at that time,
otherwise a cover butler with the same skills who is on duty and free, her language first,
then the fewest visits that day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction

from app.mothers.domain import RiskGrade

DEFAULT_WEIGHTS = "green=1,yellow=1,orange=2,red=3,purple=3"

REQUIRED_SKILLS: Mapping[RiskGrade, frozenset[str]] = {
    RiskGrade.GREEN: frozenset(),
    RiskGrade.YELLOW: frozenset(),
    RiskGrade.ORANGE: frozenset({"high_risk"}),
    RiskGrade.RED: frozenset({"high_risk"}),
    RiskGrade.PURPLE: frozenset({"infection_control"}),
}


def required_skills(grade: RiskGrade, *, purple: bool = False) -> frozenset[str]:
    """The skills her colour needs, and infection control when purple stands beside it."""
    needed = REQUIRED_SKILLS[grade]
    return needed | REQUIRED_SKILLS[RiskGrade.PURPLE] if purple else needed


def weight_of(weights: Mapping[RiskGrade, int], grade: RiskGrade, *, purple: bool = False) -> int:
    """Her caseload weight: her colour's, or purple's when that is heavier."""
    return max(weights[grade], weights[RiskGrade.PURPLE]) if purple else weights[grade]


def _risk_name(grade: RiskGrade, purple: bool) -> str:
    return f"{grade.value} + purple" if purple and grade is not RiskGrade.PURPLE else grade.value


def parse_weights(text: str) -> dict[RiskGrade, int]:
    """'green=1,yellow=1,orange=2,red=3,purple=3' -> a weight for every grade."""
    weights: dict[RiskGrade, int] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        grade = RiskGrade(name.strip())
        weight = int(value)
        if weight < 1:
            raise ValueError(f"weight of {grade} must be at least 1")
        weights[grade] = weight
    missing = set(RiskGrade) - set(weights)
    if missing:
        raise ValueError(f"no weight for {', '.join(sorted(missing))}")
    return weights


def languages_match(mother: str, butler_languages: Iterable[str]) -> bool:
    """Same language (primary subtag): zh-CN matches zh; yue does not match zh-CN."""
    wanted = mother.split("-")[0].lower()
    return any(lang.split("-")[0].lower() == wanted for lang in butler_languages)


class Rule(StrEnum):
    INACTIVE = "inactive"
    NOT_ON_ROSTER = "not_on_roster"
    MISSING_SKILL = "missing_skill"
    OVER_CAPACITY = "over_capacity"
    EXCLUDED = "excluded"
    OFF_DUTY = "off_duty"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Candidate:
    butler_id: uuid.UUID
    name: str
    active: bool
    on_roster: bool
    skills: frozenset[str]
    languages: tuple[str, ...]
    capacity: int
    load: int = 0  # weighted caseload now
    on_duty: bool = True  # for a visit: rostered then and not on leave
    busy: bool = False  # for a visit: already accompanying someone then
    day_visits: int = 0  # for a visit: visits accompanied that day


@dataclass(frozen=True, slots=True)
class Exclusion:
    butler_id: uuid.UUID
    name: str
    rule: Rule
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    butler_id: uuid.UUID
    name: str
    reasons: list[str]
    load_before: int
    load_after: int
    capacity: int
    exclusions: list[Exclusion] = field(default_factory=list)


class NoButlerFits(Exception):
    def __init__(self, exclusions: Sequence[Exclusion]) -> None:
        super().__init__("no butler fits")
        self.exclusions = list(exclusions)


def primary_exclusion(
    c: Candidate,
    *,
    grade: RiskGrade,
    weights: Mapping[RiskGrade, int],
    purple: bool = False,
) -> Exclusion | None:
    """Why this butler cannot be her primary butler, or None when she can."""
    if not c.active:
        return Exclusion(c.butler_id, c.name, Rule.INACTIVE, "not active")
    if not c.on_roster:
        return Exclusion(c.butler_id, c.name, Rule.NOT_ON_ROSTER, "has no duty roster")
    missing = required_skills(grade, purple=purple) - c.skills
    if missing:
        return Exclusion(
            c.butler_id,
            c.name,
            Rule.MISSING_SKILL,
            f"{_risk_name(grade, purple)} risk needs {', '.join(sorted(missing))}",
        )
    weight = weight_of(weights, grade, purple=purple)
    if c.load + weight > c.capacity:
        return Exclusion(
            c.butler_id,
            c.name,
            Rule.OVER_CAPACITY,
            f"caseload {c.load}+{weight} would exceed {c.capacity}",
        )
    return None


def choose_primary(
    candidates: Iterable[Candidate],
    *,
    grade: RiskGrade,
    language: str,
    weights: Mapping[RiskGrade, int],
    exclude: Iterable[uuid.UUID] = (),
    purple: bool = False,
) -> Decision:
    """Her primary butler with the reasons; NoButlerFits says which rule excluded whom."""
    excluded = set(exclude)
    eligible: list[Candidate] = []
    exclusions: list[Exclusion] = []
    for c in candidates:
        if c.butler_id in excluded:
            exclusions.append(Exclusion(c.butler_id, c.name, Rule.EXCLUDED, "being replaced"))
            continue
        reason = primary_exclusion(c, grade=grade, weights=weights, purple=purple)
        if reason is None:
            eligible.append(c)
        else:
            exclusions.append(reason)
    if not eligible:
        raise NoButlerFits(exclusions)
    speaks = [c for c in eligible if languages_match(language, c.languages)]
    pool = speaks or eligible
    best = min(pool, key=lambda c: (Fraction(c.load, max(c.capacity, 1)), c.load, c.butler_id))
    weight = weight_of(weights, grade, purple=purple)
    reasons = ["active and on the duty roster"]
    needed = required_skills(grade, purple=purple)
    if needed:
        reasons.append(f"has {', '.join(sorted(needed))} for {_risk_name(grade, purple)} risk")
    reasons.append(
        f"speaks {language}"
        if speaks
        else f"nobody eligible speaks {language}; language not matched"
    )
    reasons.append(
        f"lowest relative caseload among {len(pool)} eligible: "
        f"{best.load}/{best.capacity} -> {best.load + weight}/{best.capacity}"
    )
    return Decision(
        butler_id=best.butler_id,
        name=best.name,
        reasons=reasons,
        load_before=best.load,
        load_after=best.load + weight,
        capacity=best.capacity,
        exclusions=exclusions,
    )


@dataclass(frozen=True, slots=True)
class MotherLoad:
    mother_id: uuid.UUID
    grade: RiskGrade
    language: str
    purple: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    mother_id: uuid.UUID
    decision: Decision | None
    exclusions: list[Exclusion]

    @property
    def moved(self) -> bool:
        return self.decision is not None


def plan_release(
    leaving: uuid.UUID,
    mothers: Sequence[MotherLoad],
    candidates: Sequence[Candidate],
    *,
    weights: Mapping[RiskGrade, int],
) -> list[Move]:
    """Move only the leaving butler's mothers, hardest to place first, by the primary rules."""
    pool = {c.butler_id: c for c in candidates}
    order = sorted(
        mothers, key=lambda m: (-weight_of(weights, m.grade, purple=m.purple), m.mother_id)
    )
    moves: list[Move] = []
    for mother in order:
        try:
            decision = choose_primary(
                pool.values(),
                grade=mother.grade,
                language=mother.language,
                weights=weights,
                exclude=[leaving],
                purple=mother.purple,
            )
        except NoButlerFits as failed:
            moves.append(Move(mother.mother_id, None, failed.exclusions))
            continue
        chosen = pool[decision.butler_id]
        pool[decision.butler_id] = replace(chosen, load=decision.load_after)
        moves.append(Move(mother.mother_id, decision, []))
    return moves


@dataclass(frozen=True, slots=True)
class Escort:
    butler_id: uuid.UUID
    name: str
    is_cover: bool
    reasons: list[str]


def choose_accompanying(
    primary: Candidate | None,
    others: Iterable[Candidate],
    *,
    grade: RiskGrade,
    language: str,
    purple: bool = False,
) -> Escort:
    """Her primary when on duty and free; otherwise the best cover for that visit."""
    needed = required_skills(grade, purple=purple)
    why_not_primary = "she has no primary butler"
    if primary is not None:
        if not primary.active:
            why_not_primary = "her primary butler is not active"
        elif not primary.on_duty:
            why_not_primary = "her primary butler is off duty then"
        elif primary.busy:
            why_not_primary = "her primary butler accompanies another mother then"
        elif needed - primary.skills:
            why_not_primary = f"her primary butler lacks {', '.join(sorted(needed))}"
        else:
            return Escort(primary.butler_id, primary.name, False, ["her primary butler"])
    exclusions: list[Exclusion] = []
    eligible: list[Candidate] = []
    for c in others:
        if primary is not None and c.butler_id == primary.butler_id:
            continue
        if not c.active:
            exclusions.append(Exclusion(c.butler_id, c.name, Rule.INACTIVE, "not active"))
        elif not c.on_duty:
            exclusions.append(Exclusion(c.butler_id, c.name, Rule.OFF_DUTY, "off duty then"))
        elif c.busy:
            exclusions.append(Exclusion(c.butler_id, c.name, Rule.BUSY, "accompanies another"))
        elif needed - c.skills:
            exclusions.append(
                Exclusion(
                    c.butler_id,
                    c.name,
                    Rule.MISSING_SKILL,
                    f"{_risk_name(grade, purple)} risk needs {', '.join(sorted(needed))}",
                )
            )
        else:
            eligible.append(c)
    if not eligible:
        raise NoButlerFits(exclusions)
    speaks = [c for c in eligible if languages_match(language, c.languages)]
    best = min(speaks or eligible, key=lambda c: (c.day_visits, c.butler_id))
    return Escort(
        best.butler_id,
        best.name,
        True,
        [
            why_not_primary,
            "cover: on duty and free then",
            f"{best.day_visits} other visits that day",
        ],
    )
