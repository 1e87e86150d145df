"""What a chart shows, as plain data: the renderer draws these and nothing else.

No database and no matplotlib here. Every label is a pair, Chinese first with English
(体重增长 Weight gain), so that the desk, the doctors and the butler app read the same chart.
The accessible summary (`describe_*`) is what a screen reader hears: the SVG's <desc>.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum

# Bumped when the drawing changes, so that a client's cached chart (its ETag) is redrawn.
RENDERER_VERSION = 2


class ChartFormat(StrEnum):
    SVG = "svg"
    PNG = "png"

    @property
    def media_type(self) -> str:
        return "image/svg+xml" if self is ChartFormat.SVG else "image/png"


class GainStatus(StrEnum):
    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"


@dataclass(frozen=True)
class Label:
    """A text in both languages; `text(cjk=False)` is the English alone, for a PNG drawn where
    no Chinese font is installed (boxes would be worse than English)."""

    zh: str
    en: str

    def text(self, *, cjk: bool = True) -> str:
        if not cjk:
            return latin(self.en)
        return f"{self.zh} {self.en}" if self.zh else self.en


_CJK_ASIDE = re.compile(r"\s*[(（][^()（）]*[\u3000-\u9fff][^()（）]*[)）]")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")


def latin(text: str) -> str:
    """The text without its Chinese (an aside in brackets goes whole), for a font without it."""
    return _CJK.sub("", _CJK_ASIDE.sub("", text)).strip()


STATUS_LABELS = {
    GainStatus.BELOW: Label("低于范围", "Below range"),
    GainStatus.WITHIN: Label("范围内", "Within range"),
    GainStatus.ABOVE: Label("高于范围", "Above range"),
}


def format_ga(ga_days: int) -> str:
    """28+3: completed weeks and days, as the clinic writes gestational age."""
    return f"{ga_days // 7}+{ga_days % 7}"


@dataclass(frozen=True)
class WeightReading:
    ga_days: int
    weight_kg: float
    status: GainStatus | None = None
    reported_by_mother: bool = False


@dataclass(frozen=True)
class BandPoint:
    """Her expected weight on a day of pregnancy: pre-pregnancy weight plus the gain range."""

    ga_days: int
    low_kg: float
    high_kg: float


@dataclass(frozen=True)
class WeightChart:
    readings: tuple[WeightReading, ...] = ()
    band: tuple[BandPoint, ...] = ()
    # Which table and BMI group the band is from (WS/T 801—2022, 正常 Normal 18.5–23.9).
    table: Label | None = None
    group: Label | None = None
    pre_pregnancy_weight_kg: float | None = None
    bmi: float | None = None
    # Why there is no band (twins: not covered by WS/T 801; no pre-pregnancy weight or height).
    note: Label | None = None

    def fingerprint(self) -> str:
        return _fingerprint("weight", self)


@dataclass(frozen=True)
class PressureReading:
    ga_days: int
    systolic: float
    diastolic: float
    reported_by_mother: bool = False


@dataclass(frozen=True)
class PressureLine:
    """A threshold drawn across the chart: systolic and diastolic at one level (140/90)."""

    systolic: float
    diastolic: float
    label: Label
    severe: bool = False

    def reached_by(self, r: PressureReading) -> bool:
        return r.systolic >= self.systolic or r.diastolic >= self.diastolic


# The two lines of the hypertension rules (issue 16, point 3; Chinese Society of Obstetrics and
# Gynecology, hypertensive disorders in pregnancy 2020; ACOG Practice Bulletin 222, 2020).
# The service passes the lines of the installed rules when they say otherwise.
HYPERTENSION = PressureLine(140, 90, Label("高血压", "Hypertension"))
SEVERE = PressureLine(160, 110, Label("重度", "Severe"), severe=True)


@dataclass(frozen=True)
class PressureChart:
    readings: tuple[PressureReading, ...] = ()
    lines: tuple[PressureLine, ...] = field(default=(HYPERTENSION, SEVERE))
    # The hypertension rules read readings from this day on (20+0); drawn as a light line.
    rules_from_ga_days: int | None = 140

    def fingerprint(self) -> str:
        return _fingerprint("pressure", self)

    def systolic_level(self, r: PressureReading) -> PressureLine | None:
        """The highest line her systolic value reaches by itself (its ring on the chart)."""
        reached = [line for line in self.lines if r.systolic >= line.systolic]
        return max(reached, key=lambda line: line.systolic, default=None)

    def diastolic_level(self, r: PressureReading) -> PressureLine | None:
        """The highest line her diastolic value reaches by itself."""
        reached = [line for line in self.lines if r.diastolic >= line.diastolic]
        return max(reached, key=lambda line: line.diastolic, default=None)

    def level(self, r: PressureReading) -> PressureLine | None:
        """The highest line this reading reaches (systolic or diastolic), if any."""
        reached = [line for line in self.lines if line.reached_by(r)]
        return max(reached, key=lambda line: line.systolic, default=None)


def _fingerprint(kind: str, chart: WeightChart | PressureChart) -> str:
    """A strong validator for the chart's ETag: the data drawn and the renderer's version."""
    payload = json.dumps(
        {"kind": kind, "renderer": RENDERER_VERSION, "data": asdict(chart)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


WEIGHT_TITLE = Label("体重增长", "Weight gain")
PRESSURE_TITLE = Label("血压", "Blood pressure")
NO_WEIGHT = Label("暂无体重记录", "No weight readings yet")
NO_PRESSURE = Label("暂无血压记录", "No blood pressure readings yet")


def _kg(value: float) -> str:
    return f"{value:.1f} kg"


def describe_weight(chart: WeightChart) -> str:
    """The chart in words (the SVG's <desc>), English: every reading with its GA and status."""
    parts: list[str] = []
    if chart.table and chart.group:
        parts.append(f"Expected range from {chart.table.en}, BMI group {chart.group.en}.")
    if chart.pre_pregnancy_weight_kg is not None:
        parts.append(f"Pre-pregnancy weight {_kg(chart.pre_pregnancy_weight_kg)}.")
    if chart.note:
        parts.append(f"{chart.note.en}.")
    if not chart.readings:
        parts.append(f"{NO_WEIGHT.en}.")
        return " ".join(parts)
    parts.append(f"{len(chart.readings)} readings:")
    items = []
    for r in chart.readings:
        item = f"{format_ga(r.ga_days)} weeks {_kg(r.weight_kg)}"
        if r.status:
            item += f" ({STATUS_LABELS[r.status].en.lower()})"
        if r.reported_by_mother:
            item += " reported by her"
        items.append(item)
    parts.append("; ".join(items) + ".")
    return " ".join(parts)


def describe_pressure(chart: PressureChart) -> str:
    lines = ", ".join(
        f"{line.systolic:g}/{line.diastolic:g} mmHg ({line.label.en.lower()})"
        for line in chart.lines
    )
    parts = [f"Lines at {lines}."]
    if not chart.readings:
        parts.append(f"{NO_PRESSURE.en}.")
        return " ".join(parts)
    parts.append(f"{len(chart.readings)} readings:")
    items = []
    for r in chart.readings:
        item = f"{format_ga(r.ga_days)} weeks {r.systolic:g}/{r.diastolic:g} mmHg"
        level = chart.level(r)
        if level:
            item += f" (at or above {level.systolic:g}/{level.diastolic:g})"
        if r.reported_by_mother:
            item += " reported by her"
        items.append(item)
    parts.append("; ".join(items) + ".")
    return " ".join(parts)
