"""Care-plan rules: pure functions over a guideline table (data). No ORM, no I/O.

The plan is a list of *items*: one exam due in a range of gestational age, for a reason (her
first visit here, a visit window, an indication). Each item's state comes from what happened
to that exam in this pregnancy (ordered, done, resulted, declined, recorded elsewhere), so a
window is done only when its exams are, an exam whose own range is narrower than its window
carries over while that range is open, and nothing done or ordered is ordered again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from app.mothers.domain import PREGNANCY_DAYS, RiskGrade, format_gestational_age
from app.visits.domain import VisitStatus

_GA = re.compile(r"^(\d{1,2})\+([0-6])$")
BOOKING = "booking"  # the origin of the booking-panel items
INDICATED = "indicated"  # the origin of items an indication or a result calls for
CATCH_UP_DAYS = 13  # a late first visit's catch-up stays open two weeks (decisions.md)


def parse_ga(text: str) -> int:
    """'13+6' -> 97 days."""
    match = _GA.fullmatch(text.strip())
    if not match:
        raise ValueError(f"gestational age {text!r} is not weeks+days like 13+6")
    return int(match.group(1)) * 7 + int(match.group(2))


def _ga_or_none(raw: object) -> int | None:
    return parse_ga(str(raw)) if raw else None


@dataclass(frozen=True, slots=True)
class ExamType:
    code: str
    name: str
    fasting: bool = False
    optional: bool = False  # offered, never ordered until she chooses it
    ga_from: int | None = None
    ga_to: int | None = None
    once: bool = False  # once per pregnancy
    repeat_days: int | None = None  # not again within this many days
    lab: bool = False  # resulted by a lab report, not by the station finishing it
    catch_up_to: int | None = None  # still done this late, as a catch-up
    late_first_visit: bool = False  # a first visit after its range still orders it
    satisfied_by: tuple[str, ...] = ()  # another exam that gives this one's result
    consent: bool = False  # ordered only with her recorded consent
    source: str | None = None

    def allowed_on(self, ga_day: int) -> bool:
        return (self.ga_from is None or ga_day >= self.ga_from) and (
            self.ga_to is None or ga_day <= self.ga_to
        )

    def overlaps(self, start: int, end: int) -> bool:
        return (self.ga_from is None or end >= self.ga_from) and (
            self.ga_to is None or start <= self.ga_to
        )


@dataclass(frozen=True, slots=True)
class Planned:
    """An exam in a window or panel, with the condition under which it applies."""

    exam: str
    when: str | None = None  # a flag such as "high_risk", "rh_negative"; None: always


@dataclass(frozen=True, slots=True)
class Window:
    code: str
    label: str
    from_day: int
    to_day: int
    exams: tuple[str, ...]
    risk_extra: bool = False
    conditional: tuple[Planned, ...] = ()

    @property
    def planned(self) -> tuple[Planned, ...]:
        return (*(Planned(e) for e in self.exams), *self.conditional)


@dataclass(frozen=True, slots=True)
class Choice:
    """A decision that is hers: one of the options (or none), with consent where needed."""

    code: str
    label: str
    options: tuple[str, ...]
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Indication:
    """A flag a doctor records (or a result raises) that brings exams into the plan."""

    code: str
    label: str
    source: str | None = None
    # Raised by a result: an observation code (LOINC) and a test on its value.
    codes: tuple[str, ...] = ()
    below: float | None = None  # numeric value below this (in `unit`)
    unit: str | None = None
    matches: tuple[str, ...] = ()  # text value containing one of these (case-insensitive)


@dataclass(frozen=True, slots=True)
class Guideline:
    code: str
    version: str
    title: str
    exams: Mapping[str, ExamType]
    windows: tuple[Window, ...]
    every_visit: tuple[str, ...]
    risk_extra_windows: Mapping[RiskGrade, tuple[Window, ...]] = field(default_factory=dict)
    booking_panel: tuple[Planned, ...] = ()
    booking_source: str | None = None
    when_indicated: tuple[Planned, ...] = ()
    choices: Mapping[str, Choice] = field(default_factory=dict)
    indications: Mapping[str, Indication] = field(default_factory=dict)
    outpatient_until: int | None = None  # the last day of outpatient windows
    induction_from: int | None = None  # the doctor decides admission for induction
    post_term_from: int | None = None  # an alert

    def choice_of(self, exam_code: str) -> Choice | None:
        return next((c for c in self.choices.values() if exam_code in c.options), None)


# Loading and checking a table -----------------------------------------------------------

SYSTEM_FLAGS = frozenset({"high_risk"})


def _planned(raw: object) -> Planned:
    if isinstance(raw, str):
        return Planned(raw)
    if isinstance(raw, Mapping):
        return Planned(str(raw["exam"]), str(raw["when"]) if raw.get("when") else None)
    raise ValueError(f"an exam entry is a code or {{exam, when}}, not {raw!r}")


def _window(raw: Mapping[str, Any], *, risk_extra: bool = False) -> list[Window]:
    start, end = parse_ga(str(raw["from"])), parse_ga(str(raw["to"]))
    if end < start:
        raise ValueError(f"window {raw['code']}: ends before it starts")
    planned = [_planned(e) for e in raw.get("exams", ())]
    exams = tuple(p.exam for p in planned if p.when is None)
    conditional = tuple(p for p in planned if p.when is not None)
    every = raw.get("every_weeks")
    if not every:
        return [
            Window(str(raw["code"]), str(raw["label"]), start, end, exams, risk_extra, conditional)
        ]
    step = int(every) * 7
    out = []
    for first in range(start, end + 1, step):
        last = min(first + step - 1, end)
        week = format_gestational_age(first)
        out.append(
            Window(
                f"{raw['code']}-{first // 7}",
                f"{week} weeks",
                first,
                last,
                exams,
                risk_extra,
                conditional,
            )
        )
    return out


def _exam(code: str, spec: Mapping[str, Any]) -> ExamType:
    repeat = spec.get("repeat_days")
    exam = ExamType(
        code=code,
        name=str(spec["name"]),
        fasting=bool(spec.get("fasting", False)),
        optional=bool(spec.get("optional", False)),
        ga_from=_ga_or_none(spec.get("ga_from")),
        ga_to=_ga_or_none(spec.get("ga_to")),
        once=bool(spec.get("once", False)),
        repeat_days=int(repeat) if repeat else None,
        lab=bool(spec.get("lab", False)),
        catch_up_to=_ga_or_none(spec.get("catch_up_to")),
        late_first_visit=bool(spec.get("late_first_visit", False)),
        satisfied_by=tuple(str(s) for s in spec.get("satisfied_by", ())),
        consent=bool(spec.get("consent", False)),
        source=str(spec["source"]) if spec.get("source") else None,
    )
    if exam.once and exam.repeat_days:
        raise ValueError(f"exam {code}: 'once' and 'repeat_days' exclude each other")
    if exam.catch_up_to is not None and (exam.ga_to is None or exam.catch_up_to < exam.ga_to):
        raise ValueError(f"exam {code}: catch_up_to must come after its ga_to")
    return exam


def _indication(code: str, spec: Mapping[str, Any]) -> Indication:
    below = spec.get("below")
    return Indication(
        code=code,
        label=str(spec["label"]),
        source=str(spec["source"]) if spec.get("source") else None,
        codes=tuple(str(c) for c in spec.get("codes", ())),
        below=float(below) if below is not None else None,
        unit=str(spec["unit"]) if spec.get("unit") else None,
        matches=tuple(str(m).lower() for m in spec.get("matches", ())),
    )


def load_guideline(data: Mapping[str, Any]) -> Guideline:
    """Build and check a guideline table; raise ValueError naming what is wrong."""
    exams = {code: _exam(code, spec) for code, spec in dict(data["exams"]).items()}
    windows = tuple(w for raw in data["windows"] for w in _window(raw))
    extras = {
        RiskGrade(grade): tuple(w for raw in raws for w in _window(raw, risk_extra=True))
        for grade, raws in dict(data.get("risk_extra_windows", {})).items()
    }
    every_visit = tuple(str(e) for e in data.get("every_visit", ()))
    panel_raw = data.get("booking_panel", {})
    booking = tuple(_planned(e) for e in panel_raw.get("exams", ()))
    indicated = tuple(_planned(e) for e in data.get("when_indicated", ()))
    choices = {
        code: Choice(
            code=code,
            label=str(spec["label"]),
            options=tuple(str(o) for o in spec["options"]),
            source=str(spec["source"]) if spec.get("source") else None,
        )
        for code, spec in dict(data.get("choices", {})).items()
    }
    indications = {
        code: _indication(code, spec) for code, spec in dict(data.get("indications", {})).items()
    }
    all_windows = (*windows, *(w for ws in extras.values() for w in ws))
    planned = [*booking, *indicated, *(p for w in all_windows for p in w.planned)]
    referenced = (
        set(every_visit)
        | {p.exam for p in planned}
        | {o for c in choices.values() for o in c.options}
        | {s for e in exams.values() for s in e.satisfied_by}
    )
    unknown = sorted(referenced - set(exams))
    if unknown:
        raise ValueError(f"guideline {data.get('code')}: unknown exams {', '.join(unknown)}")
    flags = sorted({p.when for p in planned if p.when} - set(indications) - SYSTEM_FLAGS)
    if flags:
        raise ValueError(f"guideline {data.get('code')}: unknown conditions {', '.join(flags)}")
    codes = [w.code for w in windows]
    if len(codes) != len(set(codes)):
        raise ValueError(f"guideline {data.get('code')}: window codes repeat")
    for window in all_windows:
        for p in window.planned:
            if not exams[p.exam].overlaps(window.from_day, window.to_day):
                raise ValueError(
                    f"guideline {data.get('code')}: window {window.code} "
                    f"({format_gestational_age(window.from_day)}-"
                    f"{format_gestational_age(window.to_day)}) lists {p.exam}, whose range "
                    "never meets it"
                )
    late = data.get("late_pregnancy", {})
    return Guideline(
        code=str(data["code"]),
        version=str(data["version"]),
        title=str(data["title"]),
        exams=exams,
        windows=windows,
        every_visit=every_visit,
        risk_extra_windows=extras,
        booking_panel=booking,
        booking_source=str(panel_raw["source"]) if panel_raw.get("source") else None,
        when_indicated=indicated,
        choices=choices,
        indications=indications,
        outpatient_until=_ga_or_none(late.get("outpatient_until")),
        induction_from=_ga_or_none(late.get("induction_decision_from")),
        post_term_from=_ga_or_none(late.get("post_term_alert_from")),
    )


def windows_for(guideline: Guideline, risk_grade: RiskGrade) -> list[Window]:
    """The base windows plus the extra visits that this risk grade adds, in time order."""
    extra = guideline.risk_extra_windows.get(risk_grade, ())
    return sorted((*guideline.windows, *extra), key=lambda w: (w.from_day, w.risk_extra, w.code))


def exams_of_window(guideline: Guideline, window: Window) -> list[ExamType]:
    """The window's unconditional exams (every one meets the window: the loader checks)."""
    return [guideline.exams[c] for c in window.exams]


def window_on(
    guideline: Guideline, risk_grade: RiskGrade, ga_day: int, *, taken: Collection[str] = ()
) -> Window | None:
    """The window a visit on this day belongs to: the first open one that contains the day."""
    containing = [w for w in windows_for(guideline, risk_grade) if w.from_day <= ga_day <= w.to_day]
    for window in containing:
        if window.code not in taken:
            return window
    return containing[0] if containing else None


def window_dates(window: Window, edd: date) -> tuple[date, date]:
    start = edd - timedelta(days=PREGNANCY_DAYS)
    return start + timedelta(days=window.from_day), start + timedelta(days=window.to_day)


# What happened to each exam --------------------------------------------------------------


class RecordKind(StrEnum):
    ORDERED = "ordered"  # an order on a visit still open
    DONE = "done"  # the station finished it; a lab exam waits for its report
    RESULTED = "resulted"  # a final report came back (or the station's own exam finished)
    DECLINED = "declined"  # she declined it; a clinician recorded that
    OUTSIDE = "outside"  # a result from elsewhere, with its source and date


@dataclass(frozen=True, slots=True)
class ExamRecord:
    exam_code: str
    kind: RecordKind
    ga_day: int
    item_key: str | None = None  # a decline names the item it is about
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ChoiceMade:
    choice: str
    option: str | None  # None: she declined every option
    consent: bool


class ItemState(StrEnum):
    UPCOMING = "upcoming"
    DUE = "due"
    OFFERED = "offered"  # optional: waits for her choice
    ORDERED = "ordered"
    AWAITING_RESULT = "awaiting_result"
    RESULTED = "resulted"
    RECORDED_ELSEWHERE = "recorded_elsewhere"
    DECLINED = "declined"
    NOT_CHOSEN = "not_chosen"
    MISSED = "missed"
    BEFORE_ENROLMENT = "before_enrolment"


CLOSED_STATES = frozenset(
    {
        ItemState.RESULTED,
        ItemState.RECORDED_ELSEWHERE,
        ItemState.DECLINED,
        ItemState.NOT_CHOSEN,
        ItemState.MISSED,
        ItemState.BEFORE_ENROLMENT,
    }
)
FULFILLED_STATES = frozenset(
    {ItemState.RESULTED, ItemState.RECORDED_ELSEWHERE, ItemState.DECLINED, ItemState.NOT_CHOSEN}
)


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    exam: ExamType
    origin: str  # a window code, BOOKING or INDICATED
    from_day: int
    to_day: int | None  # None: open until she delivers
    catch_up: bool = False
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class ItemStatus:
    item: Item
    state: ItemState
    reason: str


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the plan needs to know of her, as plain values."""

    edd: date
    risk_grade: RiskGrade
    today: date
    enrolled_on: date
    first_visit_day: int | None = None  # GA day of her first visit here (checked in)
    flags: frozenset[str] = frozenset()
    records: tuple[ExamRecord, ...] = ()
    choices: Mapping[str, ChoiceMade] = field(default_factory=dict)

    @property
    def ga_today(self) -> int:
        return PREGNANCY_DAYS - (self.edd - self.today).days

    @property
    def enrolled_day(self) -> int:
        return PREGNANCY_DAYS - (self.edd - self.enrolled_on).days

    def all_flags(self) -> frozenset[str]:
        extra = {"high_risk"} if self.risk_grade.is_high_risk else set()
        return self.flags | extra


def _applies(p: Planned, flags: frozenset[str]) -> bool:
    return p.when is None or p.when in flags


def plan_items(guideline: Guideline, situation: Situation) -> list[Item]:
    """Every item of her plan, booking panel first, then the windows in time order."""
    flags = situation.all_flags()
    first_day = (
        situation.first_visit_day
        if situation.first_visit_day is not None
        else max(situation.ga_today, situation.enrolled_day)
    )
    items: list[Item] = []
    for p in guideline.booking_panel:
        if _applies(p, flags):
            exam = guideline.exams[p.exam]
            items.append(Item(f"{BOOKING}:{exam.code}", exam, BOOKING, 0, None, False, p.when))
    for p in guideline.when_indicated:
        if _applies(p, flags):
            exam = guideline.exams[p.exam]
            items.append(Item(f"{INDICATED}:{exam.code}", exam, INDICATED, 0, None, False, p.when))
    once_seen: set[str] = {i.exam.code for i in items if i.exam.once}
    for window in windows_for(guideline, situation.risk_grade):
        for p in window.planned:
            if not _applies(p, flags):
                continue
            exam = guideline.exams[p.exam]
            if exam.once:
                if exam.code in once_seen:
                    continue
                once_seen.add(exam.code)
                start = exam.ga_from if exam.ga_from is not None else window.from_day
                end = exam.ga_to if exam.ga_to is not None else window.to_day
            else:
                start = max(window.from_day, exam.ga_from or 0)
                end = min(window.to_day, exam.ga_to if exam.ga_to is not None else window.to_day)
            catch_up = False
            if exam.catch_up_to is not None:
                end = exam.catch_up_to
            last: int | None = end
            if exam.late_first_visit and first_day > end:
                start, last, catch_up = first_day, first_day + CATCH_UP_DAYS, True
            elif exam.late_first_visit and situation.ga_today > end:
                # Missed in its range: still the next visit's, as for a late booker (safer
                # than a missed screening for diabetes; the doctor may decline it).
                start, last, catch_up = end + 1, None, True
            items.append(
                Item(f"{window.code}:{exam.code}", exam, window.code, start, last, catch_up, p.when)
            )
    return items


def _matches(record: ExamRecord, item: Item, guideline: Guideline) -> bool:
    if record.kind is RecordKind.DECLINED:
        return record.item_key == item.key or (
            item.exam.once and record.exam_code == item.exam.code
        )
    if record.exam_code != item.exam.code and record.exam_code not in item.exam.satisfied_by:
        return False
    if item.exam.once or item.origin in (BOOKING, INDICATED):
        return True  # once per pregnancy: any time counts
    end = item.to_day if item.to_day is not None else record.ga_day
    return item.from_day <= record.ga_day <= end


_RECORD_ORDER = {
    RecordKind.RESULTED: 0,
    RecordKind.OUTSIDE: 1,
    RecordKind.DECLINED: 2,
    RecordKind.DONE: 3,
    RecordKind.ORDERED: 4,
}


def item_states(guideline: Guideline, situation: Situation) -> list[ItemStatus]:
    """Each item with its state and the reason, in plan order."""
    today = situation.ga_today
    out = []
    for item in plan_items(guideline, situation):
        out.append(_state(item, guideline, situation, today))
    return out


def _state(item: Item, guideline: Guideline, s: Situation, today: int) -> ItemStatus:
    exam = item.exam
    span = _span(item)
    found = sorted(
        (r for r in s.records if _matches(r, item, guideline)), key=lambda r: _RECORD_ORDER[r.kind]
    )
    if found:
        best = found[0]
        state = {
            RecordKind.RESULTED: ItemState.RESULTED,
            RecordKind.OUTSIDE: ItemState.RECORDED_ELSEWHERE,
            RecordKind.DECLINED: ItemState.DECLINED,
            RecordKind.DONE: ItemState.AWAITING_RESULT if exam.lab else ItemState.RESULTED,
            RecordKind.ORDERED: ItemState.ORDERED,
        }[best.kind]
        via = "" if best.exam_code == exam.code else f" (by {best.exam_code})"
        detail = f": {best.detail}" if best.detail else ""
        if item.catch_up:
            detail += f" (catch-up: not done by {format_gestational_age(exam.ga_to or 0)})"
        return ItemStatus(
            item, state, f"{state.value}{via} at {format_gestational_age(best.ga_day)}{detail}"
        )
    choice = guideline.choice_of(exam.code)
    if choice is not None or exam.optional:
        made = s.choices.get(choice.code) if choice else None
        if made is None:
            if item.to_day is not None and item.to_day < today:
                return ItemStatus(item, ItemState.MISSED, f"offered, not chosen by {span}")
            label = choice.label if choice else exam.name
            return ItemStatus(item, ItemState.OFFERED, f"offered: {label} is her choice")
        if made.option != exam.code:
            chosen = made.option or "none"
            return ItemStatus(item, ItemState.NOT_CHOSEN, f"she chose {chosen}")
    if item.to_day is not None and item.to_day < s.enrolled_day and item.origin != BOOKING:
        return ItemStatus(item, ItemState.BEFORE_ENROLMENT, f"{span}, before she enrolled")
    if item.to_day is not None and item.to_day < today:
        return ItemStatus(item, ItemState.MISSED, f"not done in {span}")
    if item.from_day > today:
        return ItemStatus(item, ItemState.UPCOMING, f"due {span}")
    why = "at her first visit here, whatever the week" if item.origin == BOOKING else f"due {span}"
    if item.catch_up:
        why = f"catch-up: not done by {format_gestational_age(exam.ga_to or 0)}"
    elif (
        item.to_day is not None
        and exam.catch_up_to is not None
        and exam.ga_to is not None
        and today > exam.ga_to
    ):
        why = f"catch-up until {format_gestational_age(exam.catch_up_to)}"
    if item.condition:
        why += f" ({item.condition})"
    return ItemStatus(item, ItemState.DUE, why)


def _span(item: Item) -> str:
    if item.to_day is None:
        return f"from {format_gestational_age(item.from_day)}"
    return f"{format_gestational_age(item.from_day)}-{format_gestational_age(item.to_day)}"


def _recent(records: Iterable[ExamRecord], code: str, day: int, within: int) -> bool:
    return any(
        r.exam_code == code
        and r.kind in (RecordKind.ORDERED, RecordKind.DONE, RecordKind.RESULTED, RecordKind.OUTSIDE)
        and 0 <= day - r.ga_day < within
        for r in records
    )


def exams_to_order(guideline: Guideline, situation: Situation) -> list[str]:
    """What to order at a visit today: every-visit exams and each due item that fits today.

    Nothing already ordered, done, resulted, declined or recorded elsewhere is ordered again;
    an exam with a repeat interval is not ordered again within it; an offered exam waits for
    her choice; an exam that another one ordered today satisfies (fasting glucose by the OGTT's
    fasting draw) is left out.
    """
    today = situation.ga_today
    codes = list(guideline.every_visit)
    for status in item_states(guideline, situation):
        item = status.item
        if status.state is not ItemState.DUE:
            continue
        if not item.from_day <= today or (item.to_day is not None and today > item.to_day):
            continue
        exam = item.exam
        if not (item.origin in (BOOKING, INDICATED) or item.catch_up or exam.catch_up_to):
            if not exam.allowed_on(today):
                continue
        elif exam.ga_from is not None and today < exam.ga_from:
            continue
        if exam.repeat_days and _recent(situation.records, exam.code, today, exam.repeat_days):
            continue
        codes.append(exam.code)
    chosen = set(codes)
    return [c for c in dict.fromkeys(codes) if not (set(guideline.exams[c].satisfied_by) & chosen)]


# The plan as windows ---------------------------------------------------------------------


class WindowStatus(StrEnum):
    DONE = "done"
    AWAITING_RESULTS = "awaiting_results"
    IN_PROGRESS = "in_progress"
    BOOKED = "booked"
    DUE = "due"
    UPCOMING = "upcoming"
    INCOMPLETE = "incomplete"  # over, with exams missed
    OVERDUE = "overdue"  # over, never attended
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
    state: ItemState
    reason: str
    due_from: date | None
    due_to: date | None
    condition: str | None


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
class Proposal:
    """When to book her next visit: a date range inside the ranges still open."""

    from_date: date
    to_date: date
    exams: list[str]
    reason: str


@dataclass(frozen=True, slots=True)
class CarePlan:
    guideline_code: str
    guideline_version: str
    edd: date
    windows: list[PlannedWindow]
    booking_panel: list[PlannedExam] = field(default_factory=list)
    indicated: list[PlannedExam] = field(default_factory=list)
    next_visit: Proposal | None = None


def _day(edd: date, ga_day: int | None) -> date | None:
    return None if ga_day is None else edd - timedelta(days=PREGNANCY_DAYS - ga_day)


def _planned_exam(status: ItemStatus, edd: date) -> PlannedExam:
    item = status.item
    return PlannedExam(
        code=item.exam.code,
        name=item.exam.name,
        fasting=item.exam.fasting,
        optional=item.exam.optional or status.state is ItemState.OFFERED,
        done=status.state in FULFILLED_STATES - {ItemState.NOT_CHOSEN, ItemState.DECLINED}
        or status.state is ItemState.AWAITING_RESULT,
        state=status.state,
        reason=status.reason,
        due_from=_day(edd, item.from_day),
        due_to=_day(edd, item.to_day),
        condition=item.condition,
    )


def _window_status(
    refs: Sequence[VisitRef],
    exams: Sequence[ItemStatus],
    start: date,
    end: date,
    s: Situation,
) -> WindowStatus:
    states = {r.status for r in refs}
    live = [e.state for e in exams if e.state not in (ItemState.NOT_CHOSEN,)]
    if states & {VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS}:
        return WindowStatus.IN_PROGRESS
    if (
        live
        and all(st in FULFILLED_STATES for st in live)
        and (refs or any(st in (ItemState.RESULTED, ItemState.RECORDED_ELSEWHERE) for st in live))
    ):
        return WindowStatus.DONE
    if not live and VisitStatus.COMPLETED in states:
        return WindowStatus.DONE
    if live and all(st in FULFILLED_STATES | {ItemState.AWAITING_RESULT} for st in live) and refs:
        return WindowStatus.AWAITING_RESULTS
    if VisitStatus.BOOKED in states:
        return WindowStatus.BOOKED
    if end < s.enrolled_on:
        return WindowStatus.BEFORE_ENROLMENT
    open_ = [st for st in live if st not in CLOSED_STATES]
    if end < s.today:
        if open_:
            return WindowStatus.DUE  # an exam carries over while its own range is open
        if VisitStatus.COMPLETED in states:
            return WindowStatus.INCOMPLETE
        return WindowStatus.OVERDUE
    if start <= s.today:
        return WindowStatus.DUE
    return WindowStatus.UPCOMING


def propose_next_visit(guideline: Guideline, situation: Situation) -> Proposal | None:
    """The date range that serves the open item closing first, and as many others as fit."""
    today = situation.ga_today
    open_items = [
        st.item
        for st in item_states(guideline, situation)
        if st.state in (ItemState.DUE, ItemState.UPCOMING) and st.item.origin != INDICATED
    ]
    if not open_items:
        return None
    booking = [i for i in open_items if i.origin == BOOKING]
    if booking:
        lo, hi = today, today + 7
        names = [i.exam.code for i in booking]
        return Proposal(
            _day(situation.edd, lo) or situation.today,
            _day(situation.edd, hi) or situation.today,
            names,
            "her first visit here: the booking panel, as soon as possible",
        )
    ranked = sorted(
        open_items, key=lambda i: (i.to_day if i.to_day is not None else 10**6, i.from_day)
    )
    first = ranked[0]
    lo = max(today, first.from_day)
    hi = first.to_day if first.to_day is not None else lo + 14
    chosen = [first]
    for item in ranked[1:]:
        i_lo, i_hi = max(today, item.from_day), item.to_day if item.to_day is not None else 10**6
        if max(lo, i_lo) <= min(hi, i_hi):
            lo, hi = max(lo, i_lo), min(hi, i_hi)
            chosen.append(item)
    return Proposal(
        _day(situation.edd, lo) or situation.today,
        _day(situation.edd, hi) or situation.today,
        list(dict.fromkeys(i.exam.code for i in chosen)),
        f"{first.exam.name} closes at {format_gestational_age(first.to_day)}"
        if first.to_day is not None
        else f"{first.exam.name} is due",
    )


def generate_plan(
    guideline: Guideline,
    *,
    edd: date,
    risk_grade: RiskGrade,
    today: date,
    enrolled_on: date,
    visits: Iterable[VisitRef] = (),
    situation: Situation | None = None,
) -> CarePlan:
    """The plan for a pregnancy as dated now; call again after re-dating to regenerate it."""
    s = situation or Situation(edd=edd, risk_grade=risk_grade, today=today, enrolled_on=enrolled_on)
    refs = list(visits)
    if situation is None:  # the visits' finished exams are all it knows
        s = Situation(
            edd=edd,
            risk_grade=risk_grade,
            today=today,
            enrolled_on=enrolled_on,
            records=tuple(
                ExamRecord(code, RecordKind.RESULTED, PREGNANCY_DAYS - (edd - r.visit_date).days)
                for r in refs
                if r.status == VisitStatus.COMPLETED
                for code in r.done_exams
            ),
        )
    by_window: dict[str, list[VisitRef]] = {}
    for ref in refs:
        if ref.window_code is not None and ref.status != VisitStatus.CANCELLED:
            by_window.setdefault(ref.window_code, []).append(ref)
    statuses = item_states(guideline, s)
    by_origin: dict[str, list[ItemStatus]] = {}
    for st in statuses:
        by_origin.setdefault(st.item.origin, []).append(st)
    planned = []
    for window in windows_for(guideline, risk_grade):
        start, end = window_dates(window, edd)
        window_refs = by_window.get(window.code, [])
        exams = by_origin.get(window.code, [])
        planned.append(
            PlannedWindow(
                code=window.code,
                label=window.label,
                ga_from=format_gestational_age(window.from_day),
                ga_to=format_gestational_age(window.to_day),
                start_date=start,
                end_date=end,
                risk_extra=window.risk_extra,
                status=_window_status(window_refs, exams, start, end, s),
                exams=[_planned_exam(e, edd) for e in exams],
                visit_ids=[r.visit_id for r in window_refs if r.status != VisitStatus.NO_SHOW],
            )
        )
    return CarePlan(
        guideline.code,
        guideline.version,
        edd,
        planned,
        booking_panel=[_planned_exam(e, edd) for e in by_origin.get(BOOKING, [])],
        indicated=[_planned_exam(e, edd) for e in by_origin.get(INDICATED, [])],
        next_visit=propose_next_visit(guideline, s),
    )


# Late pregnancy --------------------------------------------------------------------------


class LateAction(StrEnum):
    INDUCTION_DECISION = "induction_decision"
    POST_TERM = "post_term"


def late_actions(guideline: Guideline, ga_day: int) -> list[LateAction]:
    """What late pregnancy asks of the doctor today (CSOG 2018: decide induction from 41+0)."""
    out = []
    if guideline.induction_from is not None and ga_day >= guideline.induction_from:
        out.append(LateAction.INDUCTION_DECISION)
    if guideline.post_term_from is not None and ga_day >= guideline.post_term_from:
        out.append(LateAction.POST_TERM)
    return out


# Flags raised by results -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """One observation of hers, as the flags need it."""

    code: str
    numeric: float | None
    unit: str | None
    text: str | None


_G_PER_L = {"g/l": 1.0, "g/dl": 10.0, "mg/ml": 1.0}


def _in_unit(value: float, unit: str | None, wanted: str | None) -> float | None:
    """The value in the indication's unit; None when the unit is missing or unknown."""
    if wanted is None:
        return value
    if unit is None:
        return None
    have, want = unit.strip().lower(), wanted.strip().lower()
    if have == want:
        return value
    if have in _G_PER_L and want in _G_PER_L:
        return value * _G_PER_L[have] / _G_PER_L[want]
    return None


def flags_from_results(guideline: Guideline, observed: Iterable[Observed]) -> dict[str, str]:
    """The indications her latest results raise, each with the value that raised it.

    ``observed`` comes newest first: the newest assessable value of an indication's codes
    decides it (a haemoglobin back to normal clears the ferritin indication).
    """
    out: dict[str, str] = {}
    decided: set[str] = set()
    for obs in observed:
        for ind in guideline.indications.values():
            if obs.code not in ind.codes or ind.code in decided:
                continue
            if ind.below is not None and obs.numeric is not None:
                value = _in_unit(obs.numeric, obs.unit, ind.unit)
                if value is None:
                    continue
                decided.add(ind.code)
                if value < ind.below:
                    out[ind.code] = f"{obs.numeric:g} {obs.unit or ''}".strip()
            elif ind.matches and obs.text:
                decided.add(ind.code)
                text = obs.text.lower()
                if any(m in text for m in ind.matches):
                    out[ind.code] = obs.text[:60]
    return out
