"""Care-plan rules: pure functions over a guideline table (data). No ORM, no I/O."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from app.mothers.domain import PREGNANCY_DAYS, RiskGrade, format_gestational_age

_GA = re.compile(r"^(\d{1,2})\+([0-6])$")


def parse_ga(text: str) -> int:
    """'13+6' -> 97 days."""
    match = _GA.fullmatch(text.strip())
    if not match:
        raise ValueError(f"gestational age {text!r} is not weeks+days like 13+6")
    return int(match.group(1)) * 7 + int(match.group(2))


@dataclass(frozen=True, slots=True)
class ExamType:
    code: str
    name: str
    fasting: bool = False
    optional: bool = False
    ga_from: int | None = None
    ga_to: int | None = None

    def allowed_on(self, ga_day: int) -> bool:
        return (self.ga_from is None or ga_day >= self.ga_from) and (
            self.ga_to is None or ga_day <= self.ga_to
        )

    def overlaps(self, start: int, end: int) -> bool:
        return (self.ga_from is None or end >= self.ga_from) and (
            self.ga_to is None or start <= self.ga_to
        )


@dataclass(frozen=True, slots=True)
class Window:
    code: str
    label: str
    from_day: int
    to_day: int
    exams: tuple[str, ...]
    risk_extra: bool = False


@dataclass(frozen=True, slots=True)
class Guideline:
    code: str
    version: str
    title: str
    exams: Mapping[str, ExamType]
    windows: tuple[Window, ...]
    every_visit: tuple[str, ...]
    risk_extra_windows: Mapping[RiskGrade, tuple[Window, ...]] = field(default_factory=dict)


def _window(raw: Mapping[str, Any], *, risk_extra: bool = False) -> list[Window]:
    start, end = parse_ga(str(raw["from"])), parse_ga(str(raw["to"]))
    if end < start:
        raise ValueError(f"window {raw['code']}: ends before it starts")
    exams = tuple(str(e) for e in raw.get("exams", ()))
    every = raw.get("every_weeks")
    if not every:
        return [Window(str(raw["code"]), str(raw["label"]), start, end, exams, risk_extra)]
    step = int(every) * 7
    out = []
    for first in range(start, end + 1, step):
        last = min(first + step - 1, end)
        week = format_gestational_age(first)
        out.append(
            Window(f"{raw['code']}-{first // 7}", f"{week} weeks", first, last, exams, risk_extra)
        )
    return out


def load_guideline(data: Mapping[str, Any]) -> Guideline:
    """Build and check a guideline table; raise ValueError naming what is wrong."""
    exams = {
        code: ExamType(
            code=code,
            name=str(spec["name"]),
            fasting=bool(spec.get("fasting", False)),
            optional=bool(spec.get("optional", False)),
            ga_from=parse_ga(spec["ga_from"]) if spec.get("ga_from") else None,
            ga_to=parse_ga(spec["ga_to"]) if spec.get("ga_to") else None,
        )
        for code, spec in dict(data["exams"]).items()
    }
    windows = tuple(w for raw in data["windows"] for w in _window(raw))
    extras = {
        RiskGrade(grade): tuple(w for raw in raws for w in _window(raw, risk_extra=True))
        for grade, raws in dict(data.get("risk_extra_windows", {})).items()
    }
    every_visit = tuple(str(e) for e in data.get("every_visit", ()))
    referenced = set(every_visit) | {
        e for w in (*windows, *(w for ws in extras.values() for w in ws)) for e in w.exams
    }
    unknown = sorted(referenced - set(exams))
    if unknown:
        raise ValueError(f"guideline {data.get('code')}: unknown exams {', '.join(unknown)}")
    codes = [w.code for w in windows]
    if len(codes) != len(set(codes)):
        raise ValueError(f"guideline {data.get('code')}: window codes repeat")
    return Guideline(
        code=str(data["code"]),
        version=str(data["version"]),
        title=str(data["title"]),
        exams=exams,
        windows=windows,
        every_visit=every_visit,
        risk_extra_windows=extras,
    )


def windows_for(guideline: Guideline, risk_grade: RiskGrade) -> list[Window]:
    """The base windows plus the extra visits that this risk grade adds, in time order."""
    extra = guideline.risk_extra_windows.get(risk_grade, ())
    return sorted((*guideline.windows, *extra), key=lambda w: (w.from_day, w.risk_extra, w.code))


def exams_of_window(guideline: Guideline, window: Window) -> list[ExamType]:
    """The window's exams whose own gestational range meets the window."""
    return [
        guideline.exams[c]
        for c in window.exams
        if guideline.exams[c].overlaps(window.from_day, window.to_day)
    ]


def exams_due(guideline: Guideline, window: Window | None, ga_day: int) -> list[str]:
    """What to order at a visit on this day: every-visit exams plus the window's that fit today."""
    codes = list(guideline.every_visit)
    if window is not None:
        codes += [e.code for e in exams_of_window(guideline, window) if e.allowed_on(ga_day)]
    return list(dict.fromkeys(codes))


class WindowStatus(StrEnum):
    DONE = "done"
    IN_PROGRESS = "in_progress"
    BOOKED = "booked"
    DUE = "due"
    UPCOMING = "upcoming"
    OVERDUE = "overdue"
    BEFORE_ENROLMENT = "before_enrolment"


@dataclass(frozen=True, slots=True)
class VisitRef:
    """What the plan needs to know of a visit: its window, state and finished exams."""

    visit_id: str
    window_code: str | None
    status: str  # a visits.domain.VisitStatus value
    visit_date: date
    done_exams: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PlannedExam:
    code: str
    name: str
    fasting: bool
    optional: bool
    done: bool


@dataclass(frozen=True, slots=True)
class PlannedWindow:
    code: str
    label: str
    ga_from: str
    ga_to: str
    start_date: date
    end_date: date
    risk_extra: bool
    status: WindowStatus
    exams: list[PlannedExam]
    visit_ids: list[str]


@dataclass(frozen=True, slots=True)
class CarePlan:
    guideline_code: str
    guideline_version: str
    edd: date
    windows: list[PlannedWindow]


def window_dates(window: Window, edd: date) -> tuple[date, date]:
    start = edd - timedelta(days=PREGNANCY_DAYS)
    return start + timedelta(days=window.from_day), start + timedelta(days=window.to_day)


def _status(
    refs: Sequence[VisitRef], start: date, end: date, today: date, enrolled_on: date
) -> WindowStatus:
    states = {r.status for r in refs}
    if "completed" in states:
        return WindowStatus.DONE
    if states & {"checked_in", "in_progress"}:
        return WindowStatus.IN_PROGRESS
    if "booked" in states:
        return WindowStatus.BOOKED
    if end < enrolled_on:
        return WindowStatus.BEFORE_ENROLMENT
    if end < today:
        return WindowStatus.OVERDUE
    if start <= today:
        return WindowStatus.DUE
    return WindowStatus.UPCOMING


def generate_plan(
    guideline: Guideline,
    *,
    edd: date,
    risk_grade: RiskGrade,
    today: date,
    enrolled_on: date,
    visits: Iterable[VisitRef] = (),
) -> CarePlan:
    """The plan for a pregnancy as dated now; call again after re-dating to regenerate it."""
    by_window: dict[str, list[VisitRef]] = {}
    for ref in visits:
        if ref.window_code is not None and ref.status not in ("cancelled",):
            by_window.setdefault(ref.window_code, []).append(ref)
    planned = []
    for window in windows_for(guideline, risk_grade):
        start, end = window_dates(window, edd)
        refs = by_window.get(window.code, [])
        done = {code for r in refs if r.status == "completed" for code in r.done_exams}
        planned.append(
            PlannedWindow(
                code=window.code,
                label=window.label,
                ga_from=format_gestational_age(window.from_day),
                ga_to=format_gestational_age(window.to_day),
                start_date=start,
                end_date=end,
                risk_extra=window.risk_extra,
                status=_status(refs, start, end, today, enrolled_on),
                exams=[
                    PlannedExam(e.code, e.name, e.fasting, e.optional, e.code in done)
                    for e in exams_of_window(guideline, window)
                ],
                visit_ids=[r.visit_id for r in refs if r.status != "no_show"],
            )
        )
    return CarePlan(guideline.code, guideline.version, edd, planned)


def window_on(
    guideline: Guideline, risk_grade: RiskGrade, ga_day: int, *, taken: Collection[str] = ()
) -> Window | None:
    """The window a visit on this day belongs to: the first open one that contains the day."""
    containing = [w for w in windows_for(guideline, risk_grade) if w.from_day <= ga_day <= w.to_day]
    for window in containing:
        if window.code not in taken:
            return window
    return containing[0] if containing else None
