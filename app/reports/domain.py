"""Report rules: status mapping, pickup lifecycle, critical values. Pure; no ORM, no I/O."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class ReportStatus(StrEnum):
    """FHIR R4 DiagnosticReport.status."""

    REGISTERED = "registered"
    PARTIAL = "partial"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    AMENDED = "amended"
    CORRECTED = "corrected"
    APPENDED = "appended"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


READY = frozenset(
    {ReportStatus.FINAL, ReportStatus.AMENDED, ReportStatus.CORRECTED, ReportStatus.APPENDED}
)
REVISIONS = frozenset({ReportStatus.AMENDED, ReportStatus.CORRECTED, ReportStatus.APPENDED})
WITHDRAWN = frozenset({ReportStatus.CANCELLED, ReportStatus.ENTERED_IN_ERROR})

# HL7 v2 table 0123 (OBR-25) -> FHIR, as in the HL7 v2-to-FHIR mapping.
OBR25_TO_FHIR: Mapping[str, ReportStatus] = {
    "O": ReportStatus.REGISTERED,
    "I": ReportStatus.REGISTERED,
    "S": ReportStatus.REGISTERED,
    "P": ReportStatus.PRELIMINARY,
    "R": ReportStatus.PARTIAL,
    "F": ReportStatus.FINAL,
    "C": ReportStatus.CORRECTED,
    "A": ReportStatus.PARTIAL,  # "some, not all, results available"
    "X": ReportStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class StatusReading:
    status: ReportStatus
    derived: bool  # taken from the OBX-11 values because OBR-25 was empty or unknown
    note: str


PENDING_OBX11 = frozenset({"I", "P", "R", "S"})  # HL7 table 0085: not (yet) a final result


def report_status_from_hl7(obr25: str, obx11: Sequence[str]) -> StatusReading:
    """OBR-25 by the official mapping; when it is empty or unknown, derive it from OBX-11.
    OBR-25 F or C while some OBX-11 are still I, P, R or S reads as partial (derived)."""
    code = obr25.strip().upper()
    values = [v.strip().upper() for v in obx11 if v.strip()]
    if code in ("F", "C"):
        # A "final" report whose results are still pending, unverified or partial is not
        # final: the mother would be told to collect a report with holes in it.
        pending = [v for v in values if v in PENDING_OBX11]
        if pending:
            letters = "/".join(dict.fromkeys(pending))
            note = (
                f"OBR-25 {code} but {len(pending)} of {len(values)} results pending "
                f"(OBX-11 {letters}): partial"
            )
            return StatusReading(ReportStatus.PARTIAL, True, note)
    if code in OBR25_TO_FHIR:
        return StatusReading(OBR25_TO_FHIR[code], False, f"OBR-25 {code}")
    why = f"OBR-25 {'empty' if not code else repr(code) + ' unknown'}; derived from OBX-11"
    if values and all(v in ("F", "C") for v in values):
        status = ReportStatus.CORRECTED if "C" in values else ReportStatus.FINAL
        return StatusReading(status, True, why)
    if any(v in ("P", "R", "S") for v in values):
        return StatusReading(ReportStatus.PRELIMINARY, True, why)
    if values and all(v == "I" for v in values):
        return StatusReading(ReportStatus.REGISTERED, True, why)
    if values and all(v in ("X", "D", "W") for v in values):
        return StatusReading(ReportStatus.CANCELLED, True, why)
    return StatusReading(ReportStatus.UNKNOWN, True, why + " (no usable values)")


class PickupState(StrEnum):
    NOT_READY = "not_ready"  # nothing final yet
    READY = "ready"  # final: the butler should collect it
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"  # explained to the mother
    WITHDRAWN = "withdrawn"  # cancelled or entered in error


def pickup_after_status(
    current: PickupState, previous: ReportStatus | None, new: ReportStatus
) -> PickupState:
    """Where the pickup stands after the lab sends a (new) status."""
    if new in WITHDRAWN:
        return PickupState.WITHDRAWN
    if new in READY:
        was_final = previous in READY
        if was_final and current in (PickupState.PICKED_UP, PickupState.DELIVERED):
            return PickupState.READY if new in REVISIONS else current
        return PickupState.READY
    # A preliminary after a final would be a lab error: keep what the mother already has.
    return current if current is not PickupState.NOT_READY else PickupState.NOT_READY


class IllegalPickupError(ValueError):
    def __init__(self, current: PickupState, requested: PickupState) -> None:
        super().__init__(f"a report that is {current.value} cannot become {requested.value}")
        self.current = current
        self.requested = requested


PICKUP_MOVES: Mapping[PickupState, frozenset[PickupState]] = {
    PickupState.READY: frozenset({PickupState.PICKED_UP}),
    PickupState.PICKED_UP: frozenset({PickupState.DELIVERED}),
}


def check_pickup(current: PickupState, requested: PickupState) -> None:
    if requested not in PICKUP_MOVES.get(current, frozenset()):
        raise IllegalPickupError(current, requested)


# Parsed results, the same shape whether they came as HL7 v2 or FHIR -------------------------


# A report sent without any order number is its message's own; the intake puts the stored
# message's id here (never MSH-10, which senders reuse).
NO_ORDER_KEY = "\x00message"


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """An ED value (the document itself) or an RP value (a pointer to it)."""

    kind: str  # "ED" | "RP" | "FHIR"
    media_type: str | None  # e.g. application/pdf
    data: bytes | None  # ED: the decoded bytes
    pointer: str | None  # RP: where the sender keeps it
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedObservation:
    code: str
    code_system: str | None
    display: str | None
    value_type: str
    value: str | None  # every repetition kept, joined with "; " (text kept whole)
    numeric: float | None
    unit: str | None  # as the sender displays it
    reference_range: str | None
    flag: str | None
    status: str | None
    comparator: str | None = None  # "<", "<=", ">", ">=" before the number (SN, "<2.0", FHIR)
    unit_code: str | None = None  # the UCUM code when the sender gives one
    comments: str | None = None  # NTE segments after this OBX / Observation.note
    attachments: tuple[ParsedAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """Who the message says the patient is, as sent (PID / the Bundle's Patient)."""

    mrn: str | None
    name: str | None = None
    birth_date: date | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedReport:
    source_key: str  # the lab's identity of this report, stable across amendments
    placer_order: str | None
    filler_order: str | None
    patient_mrn: str | None
    code: str | None
    display: str | None
    status: StatusReading
    effective_at: datetime | None
    issued_at: datetime | None
    conclusion: str | None
    observations: list[ParsedObservation] = field(default_factory=list)
    patient: PatientIdentity | None = None
    comments: str | None = None  # NTE after the OBR (or ORC) / DiagnosticReport notes


# Critical values ---------------------------------------------------------------------------
#
# A result is assessed against the hospital's table (critical_values.json): the value is
# converted to the entry's canonical UCUM unit with the factors kept in the table, and a
# comparator ("<2.0") is reasoned about as an interval. What cannot be assessed (an unknown
# unit, a text value, a comparator that straddles the limit) is never taken for normal: it
# comes back as a review, a sentence saying why a clinician must look.

# HL7 table 0078 and FHIR v3-ObservationInterpretation: critical whatever the value says.
CRITICAL_FLAGS = frozenset({"HH", "LL", "AA", "<<", ">>"})
THRESHOLDS_FILE = Path(__file__).parent / "critical_values.json"
REASON_LIMIT = 300  # critical_reason / review_reason columns

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


def normalise_unit(unit: str) -> str:
    """A unit spelling reduced for lookup: case, spaces, µ/μ/u and ×/x do not matter, and a
    superscript exponent reads as one written with ^ (×10⁹/L = x10^9/L)."""
    text = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+", lambda m: "^" + m.group().translate(_SUPERSCRIPTS), unit)
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\s+", "", text)
    return text.replace("μ", "u").replace("µ", "u").replace("×", "x")


@dataclass(frozen=True, slots=True)
class Threshold:
    codes: frozenset[str]
    name: str
    unit: str  # the canonical (UCUM) unit the limits are written in
    below: float | None
    at_or_above: float | None
    above: float | None
    # normalised unit spelling -> factor to the canonical unit ("" = no unit sent)
    factors: tuple[tuple[str, float], ...] = ()
    source: str = ""

    def factor(self, unit: str | None) -> float | None:
        """The factor converting a value in ``unit`` to the canonical unit, None if unknown."""
        if unit is None:
            return None
        key = normalise_unit(unit)
        table = dict(self.factors) or {normalise_unit(self.unit): 1.0}
        return table.get(key)

    def matches(self, code: str) -> bool:
        return code.strip().lower() in self.codes


THRESHOLD_KEYS = frozenset(
    {"name", "codes", "unit", "units", "below", "at_or_above", "above", "source", "note"}
)


def _limit(item: dict[str, Any], key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be a number, not {value!r}")
    return float(value)


def _threshold(item: Any, index: int) -> Threshold:
    if not isinstance(item, dict):
        raise ValueError(f"critical values entry {index}: must be an object")
    where = f"critical values entry {index} ({item.get('name', 'no name')!r})"
    unknown = sorted(set(item) - THRESHOLD_KEYS)
    if unknown:  # a misspelt "bellow" would silently switch a rule off
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")
    name, unit, source = item.get("name"), item.get("unit"), item.get("source")
    for key, value in (("name", name), ("unit", unit), ("source", source)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: {key} must be a non-empty string")
    assert isinstance(name, str)
    assert isinstance(unit, str)
    assert isinstance(source, str)
    codes = item.get("codes")
    if (
        not isinstance(codes, list)
        or not codes
        or not all(isinstance(c, str) and c.strip() for c in codes)
    ):
        raise ValueError(f"{where}: codes must be a non-empty list of strings")
    below = _limit(item, "below", where)
    at_or_above = _limit(item, "at_or_above", where)
    above = _limit(item, "above", where)
    if below is None and at_or_above is None and above is None:
        raise ValueError(f"{where}: needs below, above or at_or_above")
    if at_or_above is not None and above is not None:
        raise ValueError(f"{where}: give above or at_or_above, not both")
    high = at_or_above if at_or_above is not None else above
    if below is not None and high is not None and below > high:
        raise ValueError(f"{where}: below {below:g} is above the high limit {high:g}")
    units = item.get("units", {unit: 1})
    if not isinstance(units, dict) or not units:
        raise ValueError(f"{where}: units must be an object of spelling -> factor")
    factors: dict[str, float] = {}
    for spelling, factor in {unit: 1, **units}.items():
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or factor <= 0
        ):
            raise ValueError(f"{where}: the factor of unit {spelling!r} must be a number > 0")
        key = normalise_unit(spelling)
        if key in factors and not math.isclose(factors[key], float(factor)):
            raise ValueError(f"{where}: unit {spelling!r} is given two different factors")
        factors[key] = float(factor)
    if not math.isclose(factors[normalise_unit(unit)], 1.0):
        raise ValueError(f"{where}: the canonical unit {unit!r} must have the factor 1")
    return Threshold(
        codes=frozenset(c.strip().lower() for c in codes),
        name=name.strip(),
        unit=unit.strip(),
        below=below,
        at_or_above=at_or_above,
        above=above,
        factors=tuple(sorted(factors.items())),
        source=source.strip(),
    )


def load_thresholds(path: Path = THRESHOLDS_FILE) -> list[Threshold]:
    """The hospital's critical-value table; a malformed one fails loudly (ValueError)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("thresholds"), list):
        raise ValueError(f"{path}: must be an object with a list of thresholds")
    return [_threshold(item, i) for i, item in enumerate(data["thresholds"], start=1)]


@dataclass(frozen=True, slots=True)
class Assessment:
    critical: str | None  # why this is a critical value (危急值)
    review: str | None  # why it could not be assessed: a clinician must look


@dataclass(frozen=True, slots=True)
class _Interval:
    """Where the true value lies: [lo, hi], either end open (a comparator) or infinite."""

    lo: float
    lo_open: bool
    hi: float
    hi_open: bool

    @classmethod
    def of(cls, comparator: str | None, x: float) -> _Interval | None:
        inf = math.inf
        return {
            None: cls(x, False, x, False),
            "=": cls(x, False, x, False),
            "<": cls(-inf, True, x, True),
            "<=": cls(-inf, True, x, False),
            ">": cls(x, True, inf, True),
            ">=": cls(x, False, inf, True),
        }.get(comparator)

    def below(self, limit: float) -> bool | None:
        """Is every value in it < limit (True), none (False), or cannot tell (None)?"""
        if self.hi < limit or (self.hi == limit and self.hi_open):
            return True
        return False if self.lo >= limit else None

    def above(self, limit: float) -> bool | None:
        if self.lo > limit or (self.lo == limit and self.lo_open):
            return True
        return False if self.hi <= limit else None

    def at_or_above(self, limit: float) -> bool | None:
        if self.lo >= limit:
            return True
        return False if self.hi < limit or (self.hi == limit and self.hi_open) else None


def _cut(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _number_as_sent(obs: ParsedObservation) -> str:
    """The number as the sender wrote it ("2.0", not "2"), when the value holds it."""
    assert obs.numeric is not None
    found = re.search(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", obs.value or "")
    if found and float(found.group()) == obs.numeric:
        return found.group()
    return f"{obs.numeric:g}"


def _assess_one(obs: ParsedObservation, t: Threshold) -> tuple[str, str | None]:
    """("critical"|"review"|"unit"|"normal", sentence) for one table entry."""
    if obs.numeric is None:
        what = _quote(obs.value or "")
        return "review", f"{t.name}: value {what} is not a single number; a clinician must look"
    if obs.comparator not in (None, "=", "<", "<=", ">", ">="):
        return "review", f"{t.name}: comparator {obs.comparator!r} cannot be assessed"
    sent_unit = obs.unit_code or obs.unit
    factor, unit = None, sent_unit
    for candidate in (obs.unit_code, obs.unit):  # the UCUM code first, then what is displayed
        factor = t.factor(candidate) if candidate else None
        if factor is not None:
            unit = candidate
            break
    if factor is None and not sent_unit:
        factor = t.factor("")  # the table may say what a value without a unit means
        unit = ""
    if factor is None:
        why = f"unit {sent_unit!r} not in the table" if sent_unit else "no unit sent"
        return "unit", f"{t.name}: {why}; a clinician must look"
    x = float(f"{obs.numeric * factor:.12g}")  # 7.0 g/dL is 70 g/L, not 70.00000000000001
    interval = _Interval.of(obs.comparator, x)
    assert interval is not None
    shown = f"{_number_as_sent(obs)} {unit}".strip()
    if obs.comparator not in (None, "="):
        shown = f"{obs.comparator} {shown}"
    if normalise_unit(unit or "") != normalise_unit(t.unit):
        shown += f" (= {round(x, 2):g} {t.unit})"
    exact = interval.lo == interval.hi
    rules = (
        ("below", t.below, interval.below, "<"),
        ("above", t.above, interval.above, ">"),
        ("at or above", t.at_or_above, interval.at_or_above, ">="),
    )
    unsure = []
    for words, limit, test, sign in rules:
        if limit is None:
            continue
        verdict = test(limit)
        if verdict:
            if exact:
                return "critical", f"{t.name} {shown} {sign} {limit:g}"
            return "critical", f"{t.name} {shown}, {words} {limit:g}"
        if verdict is None:
            unsure.append(f"{words} {limit:g} {t.unit}")
    if unsure:
        return "review", (
            f"{t.name} {shown}: cannot tell whether it is {' or '.join(unsure)}; "
            "a clinician must look"
        )
    return "normal", None


# OBX-11 / Observation.status of a result that is not a result: withdrawn as wrong, deleted,
# not obtainable. Its value says nothing about the mother.
NOT_RESULTS = frozenset({"W", "D", "X", "ENTERED-IN-ERROR", "CANCELLED"})


def assess(obs: ParsedObservation, thresholds: Iterable[Threshold]) -> Assessment:
    """Whether a result is a critical value, or cannot be assessed and needs a clinician."""
    if (obs.status or "").strip().upper() in NOT_RESULTS:
        return Assessment(None, None)
    flag = (obs.flag or "").strip().upper()
    if flag in CRITICAL_FLAGS:
        return Assessment(_cut(f"{obs.display or obs.code}: flagged {flag}"), None)
    if obs.numeric is None and not (obs.value or "").strip():
        return Assessment(None, None)  # nothing yet (a pending result): nothing to assess
    found = [_assess_one(obs, t) for t in thresholds if t.matches(obs.code)]
    if not found:
        return Assessment(None, None)
    for kind, text in found:
        if kind == "critical":
            return Assessment(_cut(text or ""), None)
    for kind, text in found:
        if kind == "review":
            return Assessment(None, _cut(text or ""))
    if all(kind == "unit" for kind, _ in found):  # no entry knew the unit
        return Assessment(None, _cut(found[0][1] or ""))
    return Assessment(None, None)


def critical_reason(obs: ParsedObservation, thresholds: Iterable[Threshold]) -> str | None:
    """Why this result is a critical value (危急值), or None (see assess for the review)."""
    return assess(obs, thresholds).critical


# Column sizes of what is stored: a longer value is refused, never cut (a cut id could match
# another order or patient). Observation values and comments are Text: kept whole, up to the
# body limit.
REPORT_LIMITS = {
    "source_key": 200,
    "placer_order": 64,
    "filler_order": 64,
    "patient_mrn": 64,
    "code": 64,
    "display": 200,
}
PATIENT_LIMITS = {"mrn": 64, "name": 200, "sex": 10}
OBSERVATION_LIMITS = {
    "code": 64,
    "code_system": 200,
    "display": 200,
    "value_type": 5,
    "comparator": 2,
    "unit": 40,
    "unit_code": 40,
    "reference_range": 100,
    "flag": 10,
    "status": 20,
}
ATTACHMENT_LIMITS = {"kind": 5, "media_type": 100, "title": 200, "pointer": 1000}
STATUS_NOTE_LIMIT = 200


def check_sizes(report: ParsedReport) -> None:
    """Raise ValueError naming the first field too long to store."""
    for name, limit in REPORT_LIMITS.items():
        value = getattr(report, name)
        if value is not None and len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    if len(report.status.note) > STATUS_NOTE_LIMIT:
        raise ValueError(f"the status note is longer than {STATUS_NOTE_LIMIT} characters")
    if report.patient is not None:
        for name, limit in PATIENT_LIMITS.items():
            value = getattr(report.patient, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"patient {name} is longer than {limit} characters")
    for obs in report.observations:
        for name, limit in OBSERVATION_LIMITS.items():
            value = getattr(obs, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"observation {obs.code[:20]}: {name} is longer than {limit}")
        for attachment in obs.attachments:
            for name, limit in ATTACHMENT_LIMITS.items():
                value = getattr(attachment, name)
                if value is not None and len(value) > limit:
                    raise ValueError(
                        f"observation {obs.code[:20]}: attachment {name} is longer than {limit}"
                    )


# Readings shared by the HL7 v2 and FHIR parsers -------------------------------------------

_NUMBER = re.compile(r"\s*(<=|>=|<|>|=)?\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?)\s*")
_WIDE_COMPARATORS = str.maketrans(
    {"≤": "<=", "≦": "<=", "⩽": "<=", "≥": ">=", "≧": ">=", "⩾": ">="}
)


def split_comparator(text: str | None) -> tuple[str | None, float | None]:
    """ "<2.0", "< 2.0", "≥22", "＜２．０" -> (comparator, number); "5.1" -> (None, 5.1);
    anything else (text, "2,5", a range) -> (None, None): never a guess."""
    if not text:
        return None, None
    plain = unicodedata.normalize("NFKC", text).translate(_WIDE_COMPARATORS)
    match = _NUMBER.fullmatch(plain)
    if not match:
        return None, None
    number = float(match.group(2))
    if not math.isfinite(number):
        return None, None
    return match.group(1), number


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f·•・]+")


def person_name(*parts: str | None) -> str | None:
    """Family name first, then given (and middle) names, as sent: "EVERYWOMAN EVE";
    a Chinese name is written without spaces: 王 + 芳 = 王芳."""
    kept = [p.strip() for p in parts if p and p.strip()]
    if not kept:
        return None
    if all(_CJK.fullmatch(p) for p in kept):
        return "".join(kept)
    return " ".join(kept)


DOCUMENT_LABELS = {
    "application/pdf": "PDF document",
    "image/jpeg": "JPEG image",
    "image/png": "PNG image",
    "image/gif": "GIF image",
    "image/tiff": "TIFF image",
    "image/bmp": "BMP image",
    "application/dicom": "DICOM image",
    "text/plain": "Text document",
    "text/html": "HTML document",
    "text/rtf": "RTF document",
    "application/rtf": "RTF document",
    "text/xml": "XML document",
    "application/xml": "XML document",
}


def describe_document(media_type: str | None, size: int | None) -> str:
    """What an attached document is, for the observation's value: "PDF document (12,345 bytes)"."""
    label = DOCUMENT_LABELS.get((media_type or "").lower()) or (
        f"Document ({media_type})" if media_type else "Document"
    )
    return label if size is None else f"{label} ({size:,} bytes)"
