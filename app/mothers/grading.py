"""The pregnancy risk grading of NHFPC 2017 as data: pure rules, no ORM, no I/O.

``risk_rules.json`` holds the colours (their order, the labels as the rules word them, whether
the colour is managed as a high-risk case and the tasks that come with it), what stands beside
a colour (purple: infectious disease), the tasks' titles, audiences and sources, and the age
floors. A province that adds a colour adds it to the file (and, since the database keeps the
set of values it accepts, to RiskGrade in a migration).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.mothers.domain import COLOURS, Risk, RiskGrade, age_on

BUILT_IN = Path(__file__).parent / "risk_rules.json"
AUDIENCES = frozenset({"front_desk", "doctor", "admin"})
SYSTEM = "system"  # who a rule's own change is recorded as


@dataclass(frozen=True, slots=True)
class Colour:
    grade: RiskGrade
    rank: int
    label_zh: str
    level_zh: str
    label_en: str
    level_en: str
    managed_case: bool
    tasks: tuple[str, ...]
    infection_control: bool = False
    source: str = ""

    @property
    def label(self) -> str:
        """'橙色 较高风险 (orange, higher risk)': Chinese first, as the rules word it."""
        return f"{self.label_zh} {self.level_zh} ({self.label_en}, {self.level_en})"


@dataclass(frozen=True, slots=True)
class TaskRule:
    kind: str
    title: str
    audiences: tuple[str, ...]
    priority: int
    source: str


@dataclass(frozen=True, slots=True)
class AgeFloor:
    grade: RiskGrade
    source: str
    min_age: int | None = None
    max_age: int | None = None

    def applies(self, age: int) -> bool:
        return (self.min_age is not None and age >= self.min_age) or (
            self.max_age is not None and age <= self.max_age
        )

    @property
    def rule(self) -> str:
        return f"age≥{self.min_age}" if self.min_age is not None else f"age≤{self.max_age}"


@dataclass(frozen=True, slots=True)
class RiskRules:
    code: str
    source: str
    colours: Mapping[RiskGrade, Colour]
    purple: Colour
    tasks: Mapping[str, TaskRule]
    trace_task: str
    reassess_task: str
    age_floors: tuple[AgeFloor, ...]

    def rank(self, grade: RiskGrade) -> int:
        return self.colours[grade].rank

    def label(self, risk: Risk) -> str:
        text = self.colours[risk.grade].label
        return f"{text} + {self.purple.label}" if risk.purple else text

    def is_managed_case(self, risk: Risk) -> bool:
        return self.colours[risk.grade].managed_case or (risk.purple and self.purple.managed_case)

    def task_kinds(self, risk: Risk) -> list[str]:
        kinds = list(self.colours[risk.grade].tasks)
        if risk.purple:
            kinds += [k for k in self.purple.tasks if k not in kinds]
        return kinds

    def raised(self, before: Risk | None, after: Risk) -> bool:
        """A higher colour, or purple newly set: her management tasks are due again."""
        if before is None:
            return True
        return self.rank(after.grade) > self.rank(before.grade) or (
            after.purple and not before.purple
        )

    def new_tasks(self, before: Risk | None, after: Risk) -> list[TaskRule]:
        """The tasks that a grade set or raised calls for (an open one is not doubled)."""
        if not self.raised(before, after):
            return []
        return [self.tasks[kind] for kind in self.task_kinds(after)]

    def floor(self, age: int) -> AgeFloor | None:
        """The highest colour her age alone calls for, or None."""
        fitting = [f for f in self.age_floors if f.applies(age)]
        return max(fitting, key=lambda f: self.rank(f.grade)) if fitting else None


@dataclass(frozen=True, slots=True)
class Floored:
    grade: RiskGrade
    floor: AgeFloor | None  # the floor that raised the grade, or None when it did not
    age: int

    def reason(self, rules: RiskRules, requested: RiskGrade) -> str:
        assert self.floor is not None
        return (
            f"{self.floor.rule} (age {self.age}) → at least {rules.colours[self.grade].label}; "
            f"raised from {rules.colours[requested].label} by the rule ({self.floor.source})"
        )


def apply_age_floor(rules: RiskRules, grade: RiskGrade, *, born: date, on: date) -> Floored:
    """Her grade raised to the floor her age on that day calls for (never lowered)."""
    age = age_on(born, on)
    floor = rules.floor(age)
    if floor is None or rules.rank(floor.grade) <= rules.rank(grade):
        return Floored(grade, None, age)
    return Floored(floor.grade, floor, age)


def from_legacy(grade: RiskGrade, current: Risk | None) -> Risk:
    """An old client's single grade: 'purple' sets the flag beside her colour, which stays as
    it is, or is yellow when she has none yet (unknown is not assumed low; decisions.md)."""
    if grade is not RiskGrade.PURPLE:
        return Risk(grade, current.purple if current is not None else False)
    return Risk(current.grade if current is not None else RiskGrade.YELLOW, True)


def _colour(raw: Mapping[str, Any], grade: RiskGrade, rank: int) -> Colour:
    return Colour(
        grade=grade,
        rank=rank,
        label_zh=str(raw["label_zh"]),
        level_zh=str(raw["level_zh"]),
        label_en=str(raw["label_en"]),
        level_en=str(raw["level_en"]),
        managed_case=bool(raw["managed_case"]),
        tasks=tuple(str(t) for t in raw.get("tasks", ())),
        infection_control=bool(raw.get("infection_control", False)),
        source=str(raw.get("source", "")),
    )


def load_risk_rules(raw: Mapping[str, Any]) -> RiskRules:
    """Rules from their JSON form; a file naming a colour the database does not know, a task
    it does not define or a floor to an unknown colour is refused."""
    colours: dict[RiskGrade, Colour] = {}
    for item in raw["colours"]:
        try:
            grade = RiskGrade(item["code"])
        except ValueError as exc:
            raise ValueError(
                f"colour {item['code']!r} is not one the database accepts; add it to RiskGrade "
                "and its CHECK constraint in a migration first"
            ) from exc
        if grade is RiskGrade.PURPLE:
            raise ValueError("purple stands beside a colour: list it under 'beside'")
        colours[grade] = _colour(item, grade, int(item["rank"]))
    missing = set(COLOURS) - set(colours)
    if missing:
        raise ValueError(f"no entry for {', '.join(sorted(missing))}")
    if len({c.rank for c in colours.values()}) != len(colours):
        raise ValueError("two colours share a rank")
    (purple_raw,) = [b for b in raw["beside"] if b["code"] == RiskGrade.PURPLE.value]
    purple = _colour(purple_raw, RiskGrade.PURPLE, -1)
    tasks = {
        kind: TaskRule(
            kind=kind,
            title=str(t["title"]),
            audiences=tuple(str(a) for a in t["audiences"]),
            priority=int(t["priority"]),
            source=str(t["source"]),
        )
        for kind, t in raw["tasks"].items()
    }
    for task in tasks.values():
        if not set(task.audiences) <= AUDIENCES or not task.audiences:
            raise ValueError(f"task {task.kind}: audiences must be among {sorted(AUDIENCES)}")
        if len(task.kind) > 40:
            raise ValueError(f"task kind {task.kind} is longer than 40 characters")
    named: Sequence[str] = [
        *(k for c in [*colours.values(), purple] for k in c.tasks),
        str(raw["trace_task"]),
        str(raw["reassess_task"]),
    ]
    unknown = sorted(set(named) - set(tasks))
    if unknown:
        raise ValueError(f"tasks named but not defined: {', '.join(unknown)}")
    floors = tuple(
        AgeFloor(
            grade=RiskGrade(f["colour"]),
            source=str(f["source"]),
            min_age=int(f["min_age"]) if "min_age" in f else None,
            max_age=int(f["max_age"]) if "max_age" in f else None,
        )
        for f in raw.get("age_floors", ())
    )
    for floor in floors:
        if floor.grade not in colours or (floor.min_age is None) == (floor.max_age is None):
            raise ValueError("an age floor names one colour and one of min_age or max_age")
    return RiskRules(
        code=str(raw["code"]),
        source=str(raw["source"]),
        colours=colours,
        purple=purple,
        tasks=tasks,
        trace_task=str(raw["trace_task"]),
        reassess_task=str(raw["reassess_task"]),
        age_floors=floors,
    )


@lru_cache(maxsize=4)
def risk_rules(path: str | None = None) -> RiskRules:
    """The built-in NHFPC 2017 rules, or the hospital's own file (RISK_RULES_FILE)."""
    source = Path(path) if path else BUILT_IN
    try:
        return load_risk_rules(json.loads(source.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"risk rules {source.name} are invalid: {exc}") from exc
