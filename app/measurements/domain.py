"""Her measurements as pure rules: the kinds, the units they may be entered in and their
plausible ranges (``limits.json``), BMI, and which lab results join her timeline
(``lab_codes.json``). No database, no I/O beyond reading the two tables."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.core.settings import get_settings

LIMITS_FILE = Path(__file__).parent / "limits.json"
LAB_CODES_FILE = Path(__file__).parent / "lab_codes.json"


class MeasurementKind(StrEnum):
    HEIGHT = "height"
    PRE_PREGNANCY_WEIGHT = "pre_pregnancy_weight"
    WEIGHT = "weight"
    BLOOD_PRESSURE = "blood_pressure"
    PULSE = "pulse"
    FUNDAL_HEIGHT = "fundal_height"
    FETAL_HEART_RATE = "fetal_heart_rate"
    URINE_PROTEIN = "urine_protein"
    NST = "nst"


# Kinds that belong to her, not to a day of the pregnancy: no gestational age.
BASELINE_KINDS = frozenset({MeasurementKind.HEIGHT, MeasurementKind.PRE_PREGNANCY_WEIGHT})
# Kinds whose reading is a result word (a dipstick grade, an NST outcome), not a number.
RESULT_KINDS = frozenset({MeasurementKind.URINE_PROTEIN, MeasurementKind.NST})


class MeasurementSource(StrEnum):
    ENROLMENT = "enrolment"
    STATION = "station"
    DOCTOR = "doctor"
    NUTRITIONIST = "nutritionist"
    BUTLER = "butler"


class LabKind(StrEnum):
    HAEMOGLOBIN = "haemoglobin"
    GLUCOSE_FASTING = "glucose_fasting"
    OGTT_1H = "ogtt_1h"
    OGTT_2H = "ogtt_2h"
    GLUCOSE = "glucose"


class ReadingError(ValueError):
    """A reading that cannot be stored; ``field`` names the part of the reading at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def normalise_unit(unit: str) -> str:
    """A unit spelling reduced for lookup: case, width and spaces do not matter."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", unit)).lower()


def _round(value: float, decimals: int) -> float:
    """Half up, not half to even: 139.95 is 140.0 whatever the float says."""
    q = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(q, rounding=ROUND_HALF_UP))


# Limits ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindLimits:
    kind: MeasurementKind
    unit: str  # canonical
    factors: tuple[tuple[str, float], ...]  # normalised spelling -> factor to the unit
    low: float | None
    high: float | None
    low2: float | None  # diastolic (blood pressure)
    high2: float | None
    decimals: int
    results: tuple[tuple[str, float], ...]  # result word -> ordinal (result kinds)
    aliases: tuple[tuple[str, str], ...]  # normalised spelling -> result word
    source: str
    # The unit spellings as the table writes them (mmHg, 毫米汞柱, kPa ...), one per normalised
    # spelling, for the messages: the lookup is by normalised spelling, what people read is not.
    spellings: tuple[str, ...] = ()

    def factor(self, unit: str) -> float | None:
        return dict(self.factors).get(normalise_unit(unit))

    def accepted_units(self) -> list[str]:
        return list(self.spellings) or [s for s, _ in self.factors]


@dataclass(frozen=True, slots=True)
class Limits:
    version: str
    kinds: dict[MeasurementKind, KindLimits]


_KIND_KEYS = frozenset(
    {"unit", "units", "low", "high", "low2", "high2", "decimals", "results", "aliases", "source"}
)


def _number(item: dict[str, Any], key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be a number, not {value!r}")
    return float(value)


def _kind_limits(kind: MeasurementKind, item: Any) -> KindLimits:
    where = f"measurement limits {kind.value!r}"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")
    unknown = sorted(set(item) - _KIND_KEYS)
    if unknown:  # a misspelt "hihg" would silently switch a range off
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")
    unit, source = item.get("unit"), item.get("source")
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f"{where}: unit must be a non-empty string")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: source must be a non-empty string")
    results: dict[str, float] = {}
    aliases: dict[str, str] = {}
    factors: dict[str, float] = {}
    spellings: dict[str, str] = {}  # normalised -> the first spelling the table gives
    low = high = low2 = high2 = None
    if kind in RESULT_KINDS:
        raw = item.get("results")
        if not isinstance(raw, dict) or not raw:
            raise ValueError(f"{where}: results must be an object of result -> ordinal")
        for word, ordinal in raw.items():
            if isinstance(ordinal, bool) or not isinstance(ordinal, int | float):
                raise ValueError(f"{where}: the ordinal of {word!r} must be a number")
            results[word] = float(ordinal)
            aliases[normalise_unit(word)] = word
        for spelling, word in (item.get("aliases") or {}).items():
            if word not in results:
                raise ValueError(f"{where}: alias {spelling!r} names no result ({word!r})")
            aliases[normalise_unit(spelling)] = word
    else:
        units = item.get("units", {unit: 1})
        if not isinstance(units, dict) or not units:
            raise ValueError(f"{where}: units must be an object of spelling -> factor")
        for spelling, factor in {unit: 1, **units}.items():
            if (
                isinstance(factor, bool)
                or not isinstance(factor, int | float)
                or not math.isfinite(factor)
                or factor <= 0
            ):
                raise ValueError(f"{where}: the factor of unit {spelling!r} must be a number > 0")
            factors[normalise_unit(spelling)] = float(factor)
            spellings.setdefault(normalise_unit(spelling), spelling.strip())
        if not math.isclose(factors[normalise_unit(unit)], 1.0):
            raise ValueError(f"{where}: the canonical unit {unit!r} must have the factor 1")
        low, high = _number(item, "low", where), _number(item, "high", where)
        low2, high2 = _number(item, "low2", where), _number(item, "high2", where)
        if low is None or high is None or low >= high:
            raise ValueError(f"{where}: needs low < high")
        if kind is MeasurementKind.BLOOD_PRESSURE and (
            low2 is None or high2 is None or low2 >= high2
        ):
            raise ValueError(f"{where}: blood pressure needs low2 < high2 (diastolic)")
    decimals = item.get("decimals", 1)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 3:
        raise ValueError(f"{where}: decimals must be 0 to 3")
    return KindLimits(
        kind=kind,
        unit=unit.strip(),
        factors=tuple(factors.items()),
        low=low,
        high=high,
        low2=low2,
        high2=high2,
        decimals=decimals,
        results=tuple(results.items()),
        aliases=tuple(aliases.items()),
        source=source.strip(),
        spellings=tuple(spellings.values()),
    )


def load_limits(path: Path = LIMITS_FILE) -> Limits:
    """The ranges and units table; a malformed one, or one missing a kind, fails loudly."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise ValueError(f"{path}: must be an object with the kinds")
    raw = data["kinds"]
    unknown = sorted(set(raw) - {k.value for k in MeasurementKind})
    if unknown:
        raise ValueError(f"{path}: unknown kinds {', '.join(unknown)}")
    missing = [k.value for k in MeasurementKind if k.value not in raw]
    if missing:  # a kind without limits would be stored unchecked
        raise ValueError(f"{path}: no limits for {', '.join(missing)}")
    return Limits(
        version=str(data.get("version", "")),
        kinds={k: _kind_limits(k, raw[k.value]) for k in MeasurementKind},
    )


@lru_cache(maxsize=4)
def limits(path: str | None = None) -> Limits:
    """The table from this file, or the built-in one."""
    return load_limits(Path(path)) if path else load_limits()


def installed_limits() -> Limits:
    """The table in force: the hospital's file (MEASUREMENT_LIMITS_FILE) or the built-in one."""
    return limits(get_settings().measurement_limits_file)


# Readings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entered:
    """A reading as it was entered, before conversion."""

    kind: MeasurementKind
    value: float | None = None
    value2: float | None = None  # diastolic
    unit: str | None = None
    result: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("value", "value2", "unit", "result"):
            if (v := getattr(self, key)) is not None:
                out[key] = v
        return out


@dataclass(frozen=True, slots=True)
class Normalised:
    """A reading in its canonical unit, ready to store."""

    kind: MeasurementKind
    value: float
    value2: float | None
    result: str | None
    unit: str


def _fmt(x: float) -> str:
    return f"{x:g}"


def _in_range(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def normalise(entered: Entered, table: Limits) -> Normalised:
    """Convert a reading to its canonical unit and check it is plausible (ends included).

    Raises ReadingError naming value, value2, unit or result. The range is checked on the
    converted value, rounded to the kind's decimals (what is stored is what was checked)."""
    lim = table.kinds[entered.kind]
    if entered.kind in RESULT_KINDS:
        if entered.result is None or not entered.result.strip():
            words = ", ".join(w for w, _ in lim.results)
            raise ReadingError("result", f"a {entered.kind.value} reading is a result: {words}")
        if entered.value is not None or entered.value2 is not None:
            raise ReadingError("value", f"a {entered.kind.value} reading has a result, no value")
        word = dict(lim.aliases).get(normalise_unit(entered.result))
        if word is None:
            words = ", ".join(w for w, _ in lim.results)
            raise ReadingError("result", f"{entered.result!r} is not a result; one of {words}")
        return Normalised(entered.kind, dict(lim.results)[word], None, word, lim.unit)
    if entered.result is not None:
        raise ReadingError("result", f"a {entered.kind.value} reading has a value, no result")
    if entered.value is None or not math.isfinite(entered.value):
        raise ReadingError("value", "a value is required")
    bp = entered.kind is MeasurementKind.BLOOD_PRESSURE
    if bp and (entered.value2 is None or not math.isfinite(entered.value2)):
        raise ReadingError("value2", "blood pressure needs the diastolic value (value2)")
    if not bp and entered.value2 is not None:
        raise ReadingError("value2", "only blood pressure has a second value")
    unit = entered.unit if entered.unit is not None else lim.unit
    factor = lim.factor(unit)
    if factor is None:
        accepted = ", ".join(lim.accepted_units())
        raise ReadingError("unit", f"{unit!r} is not a unit of {entered.kind.value}: {accepted}")
    value = _round(entered.value * factor, lim.decimals)

    def shown(stored: float, given: float) -> str:
        # What was entered, as entered: 1.62 cm, not the 1.6 it would be stored as; a
        # converted value shows both (15 mmHg (2.04 kPa)).
        if factor == 1:
            return f"{_fmt(given)} {lim.unit}"
        return f"{_fmt(stored)} {lim.unit} ({_fmt(given)} {unit})"

    if not _in_range(value, lim.low, lim.high):
        what = "systolic" if bp else entered.kind.value.replace("_", " ")
        raise ReadingError(
            "value",
            f"{what} {shown(value, entered.value)} is outside"
            f" {_fmt(lim.low or 0)}-{_fmt(lim.high or 0)} {lim.unit}:"
            " check the value and its unit",
        )
    value2 = None
    if bp:
        assert entered.value2 is not None
        value2 = _round(entered.value2 * factor, lim.decimals)
        if not _in_range(value2, lim.low2, lim.high2):
            raise ReadingError(
                "value2",
                f"diastolic {shown(value2, entered.value2)} is outside"
                f" {_fmt(lim.low2 or 0)}-{_fmt(lim.high2 or 0)} {lim.unit}:"
                " check the value and its unit",
            )
        if value <= value2:
            raise ReadingError(
                "value2",
                f"diastolic {_fmt(value2)} is not below systolic {_fmt(value)} {lim.unit}:"
                " were they swapped?",
            )
    return Normalised(entered.kind, value, value2, None, lim.unit)


def bmi(height_cm: float, weight_kg: float) -> float:
    """Body-mass index in kg/m², not rounded: the BMI groups are decided on the exact value."""
    if height_cm <= 0:
        raise ValueError("height must be positive")
    # In decimal: 47.36 kg at 160 cm is 18.5 exactly, not the 18.4999... binary floats give.
    exact = Decimal(repr(weight_kg)) * 10000 / Decimal(repr(height_cm)) ** 2
    return float(exact)


# Lab results on the timeline ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabCode:
    code: str  # normalised (stripped, lower case)
    kind: LabKind
    display_contains: tuple[str, ...] = ()  # lower case; any of them
    otherwise: LabKind | None = None


@dataclass(frozen=True, slots=True)
class LabUnits:
    kind: LabKind
    unit: str
    decimals: int
    factors: tuple[tuple[str, float], ...]
    source: str


@dataclass(frozen=True, slots=True)
class LabCodes:
    version: str
    codes: dict[str, LabCode]
    units: dict[LabKind, LabUnits]
    hints: tuple[str, ...] = ()  # lower case: words an unmapped local analyte shows

    def known_unit(self, unit: str | None) -> bool:
        """A unit some timeline kind accepts (g/L, mmol/L, mg/dL ...)."""
        if not unit:
            return False
        spelling = normalise_unit(unit)
        return any(spelling in dict(u.factors) for u in self.units.values())


def load_lab_codes(path: Path = LAB_CODES_FILE) -> LabCodes:
    """The LOINC -> timeline map; a malformed one fails loudly (ValueError)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be an object")
    units: dict[LabKind, LabUnits] = {}
    for name, item in (data.get("kinds") or {}).items():
        kind = LabKind(name)
        factors = {normalise_unit(item["unit"]): 1.0}
        for spelling, factor in item.get("units", {}).items():
            if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
                raise ValueError(f"{path}: {name}: the factor of {spelling!r} must be > 0")
            factors[normalise_unit(spelling)] = float(factor)
        if not str(item.get("source", "")).strip():
            raise ValueError(f"{path}: {name}: needs a source")
        units[kind] = LabUnits(
            kind, item["unit"], int(item.get("decimals", 1)), tuple(factors.items()), item["source"]
        )
    missing = [k.value for k in LabKind if k not in units]
    if missing:
        raise ValueError(f"{path}: no units for {', '.join(missing)}")
    codes: dict[str, LabCode] = {}
    for entry in data.get("codes") or []:
        code = str(entry["code"]).strip().lower()
        if not code or code in codes:
            raise ValueError(f"{path}: code {entry['code']!r} empty or listed twice")
        contains = tuple(str(s).lower() for s in entry.get("display_contains", []))
        otherwise = entry.get("otherwise")
        codes[code] = LabCode(
            code, LabKind(entry["kind"]), contains, LabKind(otherwise) if otherwise else None
        )
    hints = data.get("unmapped_hints") or []
    if not isinstance(hints, list) or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ValueError(f"{path}: unmapped_hints must be a list of words")
    return LabCodes(
        version=str(data.get("version", "")),
        codes=codes,
        units=units,
        hints=tuple(h.strip().lower() for h in hints),
    )


@lru_cache(maxsize=4)
def lab_codes(path: str | None = None) -> LabCodes:
    """The map from this file, or the built-in one."""
    return load_lab_codes(Path(path)) if path else load_lab_codes()


def installed_lab_codes() -> LabCodes:
    """The map in force: the hospital's file (setting LAB_CODES_FILE) or the built-in one."""
    return lab_codes(get_settings().lab_codes_file)


def lab_kind(code: str, display: str | None, table: LabCodes | None = None) -> LabKind | None:
    """What a lab result is on her timeline, by its code (and, for a code senders misuse, its
    display), or None when it is not one of the timeline's results."""
    entry = (table or installed_lab_codes()).codes.get(code.strip().lower())
    if entry is None:
        return None
    if entry.display_contains:
        text = (display or "").lower()
        if not any(word in text for word in entry.display_contains):
            return entry.otherwise
    return entry.kind


def looks_unmapped(
    code: str, display: str | None, unit: str | None, table: LabCodes | None = None
) -> bool:
    """A result whose code the map does not list but which looks like one of the timeline's
    analytes under a local code: a unit the map knows and a hint word in its code or display.
    It is never guessed onto the timeline; it is counted so someone extends the map."""
    table = table or installed_lab_codes()
    if code.strip().lower() in table.codes or not table.known_unit(unit):
        return False
    text = f"{code} {display or ''}".lower()
    return any(hint in text for hint in table.hints)


def lab_value(
    kind: LabKind,
    value: float,
    unit: str | None,
    table: LabCodes | None = None,
    *,
    rounded: bool = True,
) -> float | None:
    """A lab value in the timeline's unit (g/L, mmol/L), rounded half up to the kind's
    decimals for display; None for a unit the map does not list (never guessed).

    ``rounded=False`` is what the clinical rules read: a threshold is compared with the value
    as the lab sent it, converted, never with a rounded one (5.09 is not 5.1)."""
    units = (table or installed_lab_codes()).units[kind]
    if unit is None:
        return None
    factor = dict(units.factors).get(normalise_unit(unit))
    if factor is None or not math.isfinite(value):
        return None
    return _round(value * factor, units.decimals) if rounded else value * factor


def lab_unit(kind: LabKind, table: LabCodes | None = None) -> str:
    return (table or installed_lab_codes()).units[kind].unit
