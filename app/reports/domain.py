"""Report rules: status mapping, pickup lifecycle, critical values. Pure; no ORM, no I/O."""

from __future__ import annotations

import json
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


def report_status_from_hl7(obr25: str, obx11: Sequence[str]) -> StatusReading:
    """OBR-25 by the official mapping; when it is empty or unknown, derive it from OBX-11."""
    code = obr25.strip().upper()
    if code in OBR25_TO_FHIR:
        return StatusReading(OBR25_TO_FHIR[code], False, f"OBR-25 {code}")
    values = [v.strip().upper() for v in obx11 if v.strip()]
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

CRITICAL_FLAGS = frozenset({"HH", "LL", "AA"})
THRESHOLDS_FILE = Path(__file__).parent / "critical_values.json"


@dataclass(frozen=True, slots=True)
class Threshold:
    codes: frozenset[str]
    name: str
    unit: str
    below: float | None
    at_or_above: float | None
    above: float | None


def load_thresholds(path: Path = THRESHOLDS_FILE) -> list[Threshold]:
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["thresholds"]
    return [
        Threshold(
            codes=frozenset(str(c) for c in item["codes"]),
            name=str(item["name"]),
            unit=str(item["unit"]),
            below=item.get("below"),
            at_or_above=item.get("at_or_above"),
            above=item.get("above"),
        )
        for item in data
    ]


def critical_reason(obs: ParsedObservation, thresholds: Iterable[Threshold]) -> str | None:
    """Why this result is a critical value (危急值), or None."""
    if obs.flag and obs.flag.upper() in CRITICAL_FLAGS:
        return f"{obs.display or obs.code}: flagged {obs.flag.upper()}"
    if obs.numeric is None:
        return None
    for t in thresholds:
        if obs.code not in t.codes or (obs.unit or "").lower() != t.unit.lower():
            continue
        if t.below is not None and obs.numeric < t.below:
            return f"{t.name} {obs.numeric:g} {t.unit} < {t.below:g}"
        if t.above is not None and obs.numeric > t.above:
            return f"{t.name} {obs.numeric:g} {t.unit} > {t.above:g}"
        if t.at_or_above is not None and obs.numeric >= t.at_or_above:
            return f"{t.name} {obs.numeric:g} {t.unit} >= {t.at_or_above:g}"
    return None


# Column sizes of what is stored: a longer value is refused, never cut (a cut id could match
# another order or patient).
REPORT_LIMITS = {
    "source_key": 200,
    "placer_order": 64,
    "filler_order": 64,
    "patient_mrn": 64,
    "code": 64,
    "display": 200,
}
OBSERVATION_LIMITS = {
    "code": 64,
    "code_system": 200,
    "display": 200,
    "value_type": 5,
    "value": 2000,
    "unit": 40,
    "reference_range": 100,
    "flag": 10,
    "status": 20,
}


def check_sizes(report: ParsedReport) -> None:
    """Raise ValueError naming the first field too long to store."""
    for name, limit in REPORT_LIMITS.items():
        value = getattr(report, name)
        if value is not None and len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    for obs in report.observations:
        for name, limit in OBSERVATION_LIMITS.items():
            value = getattr(obs, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"observation {obs.code[:20]}: {name} is longer than {limit}")
