"""Queue rules: which exam steps a mother may do now, the call order, and wait estimates. Pure.

Everything here works on plain values so that the API, the simulator and the unit tests use
the same rules. The rules themselves (fasting, precedence, timed sequences, "last") are data
in the exam catalogue; this module only interprets them.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.careplan.domain import parse_ga
from app.core.settings import OgttBetweenDraws, Routing

BLOOD_DRAW = "blood_draw"
# Events a station records after a timed test's first step, which its timed steps count from
# (CMA 2014 GDM guideline: the 1- and 2-hour draws are timed "从开始饮用葡萄糖水计算时间", from
# the start of the glucose drink).
GLUCOSE_DRINK = "glucose_drink"
TIMING_EVENTS = {GLUCOSE_DRINK: "glucose drink"}
# A recorded start may be this far ahead of the server's clock (a station's clock runs fast).
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Precedence:
    before: str | None  # this exam comes before that one …
    after: str | None  # … or after that one
    ga_from: int | None = None  # … when her gestational age (days) is in this range
    ga_to: int | None = None

    def applies(self, ga_day: int) -> bool:
        return (self.ga_from is None or ga_day >= self.ga_from) and (
            self.ga_to is None or ga_day <= self.ga_to
        )


@dataclass(frozen=True, slots=True)
class SequenceStep:
    offset_minutes: int
    tolerance_minutes: int | None
    label: str | None
    # What the offset counts from: None, the end of the first step; else an event the station
    # records after it (the glucose drink).
    timed_from: str | None = None


@dataclass(frozen=True, slots=True)
class ExamRule:
    code: str
    name: str
    station_type: str
    position: int
    fasting: bool
    after_meal: bool
    last: bool
    precedence: tuple[Precedence, ...]
    sequence: tuple[SequenceStep, ...]
    service_minutes: float
    name_zh: str | None = None  # None: no Chinese name set (show name)

    @property
    def zh(self) -> str:
        """Its Chinese name, or its (English) name where none is set."""
        return self.name_zh or self.name

    @property
    def steps(self) -> tuple[SequenceStep, ...]:
        return self.sequence or (SequenceStep(0, None, None),)


def parse_precedence(raw: Iterable[Mapping[str, Any]]) -> tuple[Precedence, ...]:
    """Catalogue precedence entries; raises ValueError on a malformed one."""
    out = []
    for item in raw:
        unknown = set(item) - {"before", "after", "ga_from", "ga_to"}
        if unknown:
            raise ValueError(f"unknown precedence keys: {', '.join(sorted(unknown))}")
        before, after = item.get("before"), item.get("after")
        if (before is None) == (after is None):
            raise ValueError("a precedence rule names exactly one of 'before' and 'after'")
        out.append(
            Precedence(
                before=str(before) if before is not None else None,
                after=str(after) if after is not None else None,
                ga_from=parse_ga(str(item["ga_from"])) if item.get("ga_from") else None,
                ga_to=parse_ga(str(item["ga_to"])) if item.get("ga_to") else None,
            )
        )
    return tuple(out)


SEQUENCE_KEYS = frozenset({"offset_minutes", "tolerance_minutes", "label", "from"})


def parse_sequence(raw: Iterable[Mapping[str, Any]]) -> tuple[SequenceStep, ...]:
    """A timed sequence: a first step, then steps at offsets, each with a tolerance, counted
    from the end of the first step or, with ``"from"``, from an event the station records
    after it (``"glucose_drink"``: the OGTT's draws count from the start of the drink)."""
    items = list(raw)
    for item in items:
        unknown = set(item) - SEQUENCE_KEYS
        if unknown:
            raise ValueError(f"unknown sequence keys: {', '.join(sorted(unknown))}")
        event = item.get("from")
        if event is not None and event not in TIMING_EVENTS:
            known = ", ".join(sorted(TIMING_EVENTS))
            raise ValueError(f"a timed step counts from one of: {known} (not {event!r})")
    steps = tuple(
        SequenceStep(
            int(item["offset_minutes"]),
            int(item["tolerance_minutes"]) if item.get("tolerance_minutes") is not None else None,
            str(item["label"]) if item.get("label") else None,
            str(item["from"]) if item.get("from") is not None else None,
        )
        for item in items
    )
    if steps:
        offsets = [s.offset_minutes for s in steps]
        if offsets[0] != 0 or offsets != sorted(set(offsets)):
            raise ValueError("a sequence starts at offset 0 and its offsets increase")
        if steps[0].timed_from is not None:
            raise ValueError("'from' belongs on the timed steps, not on the first step")
        if len({s.timed_from for s in steps[1:]}) > 1:
            raise ValueError("the timed steps of a sequence count from one moment")
    return steps


@dataclass(frozen=True, slots=True)
class Catalogue:
    rules: Mapping[str, ExamRule]

    def rule(self, code: str) -> ExamRule | None:
        return self.rules.get(code)

    def validate(self) -> None:
        """Every precedence names a known exam, and the rules admit at least one order."""
        for rule in self.rules.values():
            for p in rule.precedence:
                other = p.before or p.after
                if other not in self.rules:
                    raise ValueError(f"{rule.code}: precedence names unknown exam {other!r}")
        # What must come first, including what "last" and "after a meal" imply: an exam
        # ordered after the doctor, or a fasting exam after an after-meal one, can never be
        # done, and that is refused here rather than found out by a mother stuck in the clinic.
        graph = {code: self._must_follow(code, ga_day=None) for code in self.rules}
        for code, rule in self.rules.items():
            if rule.last:
                graph[code] |= {c for c, r in self.rules.items() if not r.last}
            if rule.after_meal:
                graph[code] |= {c for c, r in self.rules.items() if r.fasting}
        seen: dict[str, int] = {}

        def visit(code: str) -> None:
            seen[code] = 1
            for nxt in graph[code]:
                if seen.get(nxt) == 1:
                    raise ValueError(f"precedence rules form a cycle through {code!r}")
                if nxt not in seen:
                    visit(nxt)
            seen[code] = 2

        for code in graph:
            if code not in seen:
                visit(code)

    def _must_follow(self, code: str, ga_day: int | None) -> set[str]:
        """Exams that must come before ``code`` (ignoring fasting and 'last')."""
        out: set[str] = set()
        rule = self.rules[code]
        for p in rule.precedence:
            if p.after and (ga_day is None or p.applies(ga_day)):
                out.add(p.after)
        for other in self.rules.values():
            for p in other.precedence:
                if p.before == code and (ga_day is None or p.applies(ga_day)):
                    out.add(other.code)
        return out

    def prerequisites(self, code: str, ga_day: int) -> set[str]:
        return self._must_follow(code, ga_day)


@dataclass(slots=True)
class StepView:
    """What the rules need to know of one exam step of her visit."""

    id: uuid.UUID
    order_id: uuid.UUID
    exam_code: str
    station_type: str | None
    offset_minutes: int
    tolerance_minutes: int | None
    state: str  # pending | done | cancelled
    done_at: datetime | None = None
    timed_from: str | None = None  # a timed step: the event its offset counts from
    timing_started_at: datetime | None = None  # a first step: when that event happened


@dataclass(frozen=True, slots=True)
class BetweenDraws:
    """Which exams she may have while a timed test runs (OGTT_BETWEEN_DRAWS): a clinic setting.

    The guideline asks her to sit still from the drink to the last draw (CMA 2014 / CSOG 2022:
    检查期间静坐、禁烟), the default; some clinics allow a scan lying down nearby."""

    mode: OgttBetweenDraws = OgttBetweenDraws.REST
    exams: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, mode: OgttBetweenDraws, exams: str) -> BetweenDraws:
        return cls(mode, frozenset(c.strip() for c in exams.split(",") if c.strip()))

    def allows(self, exam_code: str) -> bool:
        if self.mode is OgttBetweenDraws.ANY:
            return True
        return self.mode is OgttBetweenDraws.LISTED and exam_code in self.exams

    def refusal(self, test: str) -> str:
        if self.mode is OgttBetweenDraws.LISTED:
            allowed = ", ".join(sorted(self.exams)) or "none"
            return (
                f"after the last draw of the {test}: only {allowed} between its draws"
                " (OGTT_BETWEEN_DRAWS=listed)"
            )
        return (
            f"after the last draw of the {test}: she sits still between its draws"
            " (OGTT_BETWEEN_DRAWS=rest; CMA 2014 GDM guideline / CSOG 2022: 检查期间静坐)"
        )


REST = BetweenDraws()


@dataclass(frozen=True, slots=True)
class Doable:
    step: StepView
    available_at: datetime | None  # None: now
    due_at: datetime | None  # a timed step's nominal time


def _anchor(step: StepView, steps: Sequence[StepView]) -> StepView | None:
    return next(
        (s for s in steps if s.order_id == step.order_id and s.offset_minutes == 0),
        None,
    )


def awaited_event(anchor: StepView, steps: Sequence[StepView]) -> str | None:
    """The event the timed steps of this first step's test wait for, while not recorded."""
    if anchor.timing_started_at is not None:
        return None
    return next(
        (
            s.timed_from
            for s in steps
            if s.order_id == anchor.order_id and s.offset_minutes > 0 and s.timed_from
        ),
        None,
    )


def running_tests(steps: Sequence[StepView]) -> list[StepView]:
    """The first steps of timed tests under way: done, with a timed step still pending."""
    return [
        a
        for a in steps
        if a.offset_minutes == 0
        and a.state == "done"
        and any(
            s.order_id == a.order_id and s.offset_minutes > 0 and s.state == "pending"
            for s in steps
        )
    ]


def blockers(
    step: StepView,
    steps: Sequence[StepView],
    catalogue: Catalogue,
    ga_day: int,
    *,
    between: BetweenDraws = REST,
) -> list[str]:
    """Why this pending step may not be done yet (empty: it may)."""
    rule = catalogue.rule(step.exam_code)
    if rule is None or step.station_type is None:
        return ["not in the exam catalogue"]
    pending = [s for s in steps if s.state == "pending" and s.id != step.id]
    reasons: list[str] = []
    if step.offset_minutes > 0:
        anchor = _anchor(step, steps)
        if anchor is None or anchor.state != "done":
            reasons.append(f"after the first step of {rule.name}")
        elif step.timed_from and anchor.timing_started_at is None:
            what = TIMING_EVENTS.get(step.timed_from, step.timed_from)
            station = rule.station_type.replace("_", "-")
            reasons.append(f"{what} not started (the {station} station records it)")
    if step.offset_minutes == 0:
        # While a timed test runs she is the test's: first its event (she drinks the glucose
        # now: anything else would delay the test and her fast), then what the clinic allows.
        for anchor in running_tests(steps):
            if anchor.order_id == step.order_id:
                continue
            test_rule = catalogue.rule(anchor.exam_code)
            test = test_rule.name if test_rule else anchor.exam_code
            event = awaited_event(anchor, steps)
            if event is not None:
                reasons.append(
                    f"after the {TIMING_EVENTS.get(event, event)} of the {test} (not recorded yet)"
                )
            elif not between.allows(step.exam_code):
                reasons.append(between.refusal(test))
        needed = catalogue.prerequisites(step.exam_code, ga_day)
        for other in pending:
            if other.exam_code in needed:
                reasons.append(f"after {catalogue.rules[other.exam_code].name}")
        if rule.after_meal and any(
            (r := catalogue.rule(o.exam_code)) is not None and r.fasting for o in pending
        ):
            reasons.append("after the fasting exams (she has not eaten yet)")
        if rule.last and any(
            (r := catalogue.rule(o.exam_code)) is None or not r.last for o in pending
        ):
            reasons.append("last, after every other exam of the day")
    return sorted(set(reasons))


def timed_start(step: StepView, anchor: StepView) -> datetime | None:
    """What a timed step's offset counts from: the recorded event (the start of the glucose
    drink), or the end of the first step for a sequence without one."""
    return anchor.timing_started_at if step.timed_from else anchor.done_at


def doable_steps(
    steps: Sequence[StepView],
    catalogue: Catalogue,
    ga_day: int,
    *,
    between: BetweenDraws = REST,
) -> list[Doable]:
    """The pending steps she may queue for now, with when a timed step opens."""
    out = []
    for step in steps:
        if step.state != "pending" or blockers(step, steps, catalogue, ga_day, between=between):
            continue
        available = due = None
        if step.offset_minutes > 0:
            anchor = _anchor(step, steps)
            assert anchor is not None
            start = timed_start(step, anchor)
            assert start is not None
            due = start + timedelta(minutes=step.offset_minutes)
            available = due - timedelta(minutes=step.tolerance_minutes or 0)
        out.append(Doable(step, available, due))
    return out


def timing_start_problem(
    started_at: datetime, *, first_done_at: datetime, now: datetime
) -> str | None:
    """Why a recorded start of a timed test (the glucose drink) cannot be right, or None.

    Not before the first step (the fasting draw) finished, to the minute, since the lab notes
    the drink to the minute; not in the future, beyond a station clock's minute of skew."""
    if started_at < first_done_at.replace(second=0, microsecond=0):
        return f"before the fasting draw finished ({first_done_at.isoformat()})"
    if started_at > now + CLOCK_SKEW:
        return "in the future"
    return None


def fixed_choice(doable: Sequence[Doable], catalogue: Catalogue, now: datetime) -> list[Doable]:
    """The ``fixed`` baseline: only her next station in catalogue order, waiting for a timed
    draw when it comes next."""
    if not doable:
        return []

    def order(d: Doable) -> tuple[int, int]:
        rule = catalogue.rules[d.step.exam_code]
        return (rule.position, d.step.offset_minutes)

    first = min(doable, key=order)
    # Still one service: a blood draw fills every tube that may be drawn now.
    return [
        d
        for d in doable
        if (d.step.station_type, d.step.offset_minutes)
        == (first.step.station_type, first.step.offset_minutes)
    ]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A waiting entry as the sort key sees it."""

    id: uuid.UUID
    ticket_number: int
    ref_time: datetime
    entered_at: datetime
    available_at: datetime
    due_at: datetime | None
    urgent: bool
    fasting: bool
    station_type: str
    gap_until: datetime | None = None  # her last pending timed draw is due then


def sort_key(
    c: Candidate, *, now: datetime, routing: Routing, ageing: timedelta
) -> tuple[Any, ...]:
    """The documented call order at a station (SPEC "Queue order at a station").

    parallel: tier 0 — urgent (red risk with symptoms, a doctor's flag) or a timed draw now
    due; tier 1 — fasting mothers at the blood draw, and anyone who has waited longer than
    the ageing limit (so nobody waits forever); tier 2 — everyone else; tier 3 — a mother who
    must stay anyway for a later timed draw (between OGTT draws): she is called when nobody
    else is, so that her wait fills the gap instead of someone else's day. Her ageing starts
    when the gap ends. Within a tier: the booked time (walk-ins by their arrival, so they
    interleave), then the ticket.
    fixed: first come, first served (a due timed draw still first).
    """
    waiting_since = max(c.entered_at, c.available_at)
    timed_due = c.due_at is not None and c.available_at <= now
    if routing is Routing.FIXED:  # a clinic without routing still draws an OGTT on time
        return (0 if timed_due else 1, waiting_since, c.ticket_number)
    in_gap = c.gap_until is not None and c.gap_until > now
    if c.gap_until is not None and not in_gap:
        waiting_since = max(waiting_since, c.gap_until)
    if c.urgent or timed_due:
        tier = 0
    elif c.fasting and c.station_type == BLOOD_DRAW:
        tier = 1
    elif in_gap:
        tier = 3
    elif now - waiting_since >= ageing:
        tier = 1
    else:
        tier = 2
    due = c.due_at or c.ref_time
    return (tier, due if tier == 0 else c.ref_time, c.ticket_number)


@dataclass(slots=True)
class Busy:
    """A room's current work, for the estimate: minutes still to go."""

    remaining_minutes: float


@dataclass(frozen=True, slots=True)
class Estimate:
    position: int  # 1 = next
    wait_minutes: int


def estimate_waits(
    servers: int,
    busy: Sequence[Busy],
    waiting: Sequence[tuple[uuid.UUID, float, float]],
) -> dict[uuid.UUID, Estimate]:
    """List scheduling over the station's rooms: each waiting entry (id, minutes until it may be
    called, expected service minutes), in call order, goes to the room that frees first."""
    rooms = sorted(b.remaining_minutes for b in busy)[:servers]
    rooms += [0.0] * (servers - len(rooms))
    heapq.heapify(rooms)
    out = {}
    for position, (entry_id, not_before, minutes) in enumerate(waiting, start=1):
        free = heapq.heappop(rooms)
        start = max(free, not_before)
        out[entry_id] = Estimate(position, round(start))
        heapq.heappush(rooms, start + minutes)
    return out


@dataclass(slots=True)
class Ewma:
    """The learned service time of an exam type: an exponentially weighted mean."""

    alpha: float = 0.2
    value: float | None = None
    samples: int = 0
    history: list[float] = field(default_factory=list)

    def add(self, minutes: float) -> float:
        minutes = max(0.5, min(minutes, 240.0))  # a forgotten "finish" must not ruin it
        self.value = (
            minutes if self.value is None else self.alpha * minutes + (1 - self.alpha) * self.value
        )
        self.samples += 1
        return self.value
