"""Gestational weight gain (GWG) by pre-pregnancy BMI: pure rules over ``gwg_tables.json``.

The built-in tables are WS/T 801—2022 (the Chinese standard, the default) and IOM 2009 (the
alternative a hospital may choose with ``GWG_TABLE``; ``GWG_TABLES_FILE`` replaces the file).

The per-day band is a derivation, not a printed value. The standards print a first-trimester
range (gain by the end of 13+6) and a weekly range for the second and third trimesters. The band
for gestational day ``d`` (days since the LMP; 13+6 is day 97) is:

- ``d <= 97`` (first trimester): high = the first-trimester high; low = the first-trimester low
  scaled by ``d / 97`` (WS/T 801's low is 0, so its band is 0-2.0 kg throughout; IOM's 0.5 kg is
  reached by 13+6, so a mother who has not gained yet at 8 weeks is not called "below").
- ``d > 97``: the first-trimester range plus the weekly range for each day after 13+6, a
  seventh of a week a day: low = ft_low + wk_low x (d - 97) / 7, high = ft_high + wk_high x
  (d - 97) / 7. So 14+0 (day 98) adds one seventh of a week.
- after 40+0 (day 280) the band stays at its 40+0 value: the standards give no rate past term.

At term the derived band need not equal the printed total (WS/T 801 normal: 6.8-14.5 kg
derived against 8-14 kg printed); the totals are given as the target (``targets``), the band is
what a reading on a given day is compared with. BMI is grouped unrounded: 23.99 is normal, 24.0
overweight (WS/T 801 groups as ``18.5 <= BMI < 24.0``). Twins: WS/T 801 does not cover them and
IOM 2009 only gives provisional totals, so ``group`` raises ``NotCovered`` rather than advise.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

BUILT_IN = Path(__file__).with_name("gwg_tables.json")
DEFAULT_TABLE = "wst-801-2022"


class GwgStatus(StrEnum):
    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"


class NotCovered(Exception):
    """The table does not cover her pregnancy (twins): say so rather than advise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Range:
    low_kg: float
    high_kg: float


@dataclass(frozen=True, slots=True)
class BmiGroup:
    code: str  # low | normal | overweight | obese
    label_zh: str
    label_en: str
    bmi_from: float | None  # inclusive
    bmi_below: float | None  # exclusive
    total: Range
    first_trimester: Range
    weekly: Range
    weekly_mean_kg: float

    def contains(self, bmi: float) -> bool:
        return (self.bmi_from is None or bmi >= self.bmi_from) and (
            self.bmi_below is None or bmi < self.bmi_below
        )

    @property
    def bmi_range(self) -> str:
        """'18.5 ≤ BMI < 24.0' as the table reads."""
        if self.bmi_from is None:
            return f"BMI < {self.bmi_below}"
        if self.bmi_below is None:
            return f"BMI ≥ {self.bmi_from}"
        return f"{self.bmi_from} ≤ BMI < {self.bmi_below}"


@dataclass(frozen=True, slots=True)
class GwgTable:
    code: str
    name_zh: str
    name_en: str
    source: str
    year: int
    first_trimester_last_day: int  # 13+6
    term_day: int  # 40+0
    groups: tuple[BmiGroup, ...]
    multiples: Mapping[str, Range] | None
    multiples_note: str


@dataclass(frozen=True, slots=True)
class Band:
    """The cumulative gain expected on a day of pregnancy, in kg over her pre-pregnancy weight."""

    low_kg: float
    high_kg: float


@dataclass(frozen=True, slots=True)
class Targets:
    total: Range
    first_trimester: Range
    weekly: Range
    weekly_mean_kg: float


@dataclass(frozen=True, slots=True)
class GwgTables:
    version: str
    default: str
    tables: Mapping[str, GwgTable]


def _range(raw: Sequence[Any], what: str) -> Range:
    low, high = (float(raw[0]), float(raw[1]))
    if not 0 <= low <= high:
        raise ValueError(f"{what}: a range is [low, high] with 0 <= low <= high")
    return Range(low, high)


def _table(raw: Mapping[str, Any]) -> GwgTable:
    code = str(raw["code"])
    groups = tuple(
        BmiGroup(
            code=str(g["code"]),
            label_zh=str(g["label_zh"]),
            label_en=str(g["label_en"]),
            bmi_from=None if g["bmi_from"] is None else float(g["bmi_from"]),
            bmi_below=None if g["bmi_below"] is None else float(g["bmi_below"]),
            total=_range(g["total_kg"], f"{code} {g['code']} total_kg"),
            first_trimester=_range(g["first_trimester_kg"], f"{code} {g['code']} first"),
            weekly=_range(g["weekly_kg"], f"{code} {g['code']} weekly_kg"),
            weekly_mean_kg=float(g["weekly_mean_kg"]),
        )
        for g in raw["groups"]
    )
    # The groups must tile the BMI line: open below, contiguous, open above.
    if not groups or groups[0].bmi_from is not None or groups[-1].bmi_below is not None:
        raise ValueError(f"{code}: the first group is open below, the last open above")
    for before, after in itertools.pairwise(groups):
        if before.bmi_below is None or before.bmi_below != after.bmi_from:
            raise ValueError(f"{code}: groups {before.code} and {after.code} do not meet")
    for g in groups:
        if not g.weekly.low_kg <= g.weekly_mean_kg <= g.weekly.high_kg:
            raise ValueError(f"{code} {g.code}: the weekly mean lies outside its range")
    multiples = raw.get("multiples")
    first_day = int(raw["first_trimester_last_day"])
    term = int(raw["term_day"])
    if not 0 < first_day < term:
        raise ValueError(f"{code}: 0 < first_trimester_last_day < term_day")
    return GwgTable(
        code=code,
        name_zh=str(raw["name_zh"]),
        name_en=str(raw["name_en"]),
        source=str(raw["source"]),
        year=int(raw["year"]),
        first_trimester_last_day=first_day,
        term_day=term,
        groups=groups,
        multiples=None
        if multiples is None
        else {str(k): _range(v, f"{code} multiples {k}") for k, v in multiples.items()},
        multiples_note=str(raw["multiples_note"]),
    )


def load_tables(raw: Mapping[str, Any]) -> GwgTables:
    """Tables from their JSON form, checked: a file that does not hold together is refused."""
    tables = {t.code: t for t in (_table(item) for item in raw["tables"])}
    default = str(raw["default"])
    if default not in tables:
        raise ValueError(f"default table {default!r} is not in the file")
    return GwgTables(version=str(raw["version"]), default=default, tables=tables)


@lru_cache(maxsize=4)
def tables(path: str | None = None) -> GwgTables:
    """The built-in tables, or the hospital's own file (GWG_TABLES_FILE)."""
    source = Path(path) if path else BUILT_IN
    try:
        return load_tables(json.loads(source.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"weight-gain tables {source.name} are invalid: {exc}") from exc


def table(code: str | None = None, *, path: str | None = None) -> GwgTable:
    """The table by code (GWG_TABLE); the file's default when none is named."""
    loaded = tables(path)
    chosen = code or loaded.default
    try:
        return loaded.tables[chosen]
    except KeyError:
        raise ValueError(
            f"GWG_TABLE {chosen!r} is not one of {', '.join(sorted(loaded.tables))}"
        ) from None


def group(gwg_table: GwgTable, bmi: float, *, fetuses: int = 1) -> BmiGroup:
    """Her pre-pregnancy BMI group, unrounded; a twin pregnancy is not covered."""
    if fetuses > 1:
        raise NotCovered(gwg_table.multiples_note)
    if not bmi > 0:
        raise ValueError("BMI must be positive")
    for g in gwg_table.groups:
        if g.contains(bmi):
            return g
    raise AssertionError("the groups tile the BMI line")  # pragma: no cover - checked at load


def band(gwg_table: GwgTable, bmi_group: BmiGroup, ga_days: int) -> Band:
    """The gain expected on gestational day ``ga_days`` (derivation: the module docstring)."""
    if ga_days < 0:
        raise ValueError("ga_days must not be negative")
    first_day = gwg_table.first_trimester_last_day
    ft = bmi_group.first_trimester
    if ga_days <= first_day:
        return Band(low_kg=ft.low_kg * ga_days / first_day, high_kg=ft.high_kg)
    weeks_after = (min(ga_days, gwg_table.term_day) - first_day) / 7
    return Band(
        low_kg=ft.low_kg + bmi_group.weekly.low_kg * weeks_after,
        high_kg=ft.high_kg + bmi_group.weekly.high_kg * weeks_after,
    )


def status(gain_kg: float, gain_band: Band) -> GwgStatus:
    """Below, within (the band's ends included) or above."""
    if gain_kg < gain_band.low_kg:
        return GwgStatus.BELOW
    if gain_kg > gain_band.high_kg:
        return GwgStatus.ABOVE
    return GwgStatus.WITHIN


def targets(gwg_table: GwgTable, bmi_group: BmiGroup) -> Targets:
    """Her target gain to term and per week of the second and third trimesters, as printed."""
    del gwg_table  # the group carries its table's values; kept for the interface's symmetry
    return Targets(
        total=bmi_group.total,
        first_trimester=bmi_group.first_trimester,
        weekly=bmi_group.weekly,
        weekly_mean_kg=bmi_group.weekly_mean_kg,
    )


def outside_twice(statuses: Sequence[GwgStatus]) -> bool:
    """The last two readings in a row are both outside the band (the referral rule)."""
    return len(statuses) >= 2 and all(s is not GwgStatus.WITHIN for s in statuses[-2:])
