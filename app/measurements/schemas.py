from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.measurements.domain import LabKind, MeasurementKind, MeasurementSource


class ReadingIn(BaseModel):
    """One reading as it was taken: a value in a unit, or a result (urine protein, NST)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "weight", "value": 121, "unit": "斤"},
                {"kind": "blood_pressure", "value": 18.7, "value2": 12.0, "unit": "kPa"},
                {"kind": "urine_protein", "result": "+"},
            ]
        },
    )

    kind: MeasurementKind
    value: float | None = Field(
        default=None, description="The value (systolic for blood pressure) in `unit`."
    )
    value2: float | None = Field(default=None, description="Diastolic (blood pressure only).")
    unit: str | None = Field(
        default=None,
        max_length=20,
        description="kg, g, 斤/jin, lb; cm, m; mmHg, kPa; bpm. Left out: the canonical unit "
        "(kg, cm, mmHg, bpm).",
    )
    result: str | None = Field(
        default=None,
        max_length=20,
        description="urine protein: negative, trace, 1+ to 4+ (or -, ±, +, ++ ...); "
        "nst: reactive or non_reactive.",
    )
    measured_at: datetime | None = Field(
        default=None, description="When it was taken (aware); now when left out."
    )


class MeasurementsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1, max_length=20)
    reported_by_mother: bool = Field(
        default=False,
        description="She took it herself (a home reading); always true when her butler enters it.",
    )


class CorrectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float | None = None
    value2: float | None = None
    unit: str | None = Field(default=None, max_length=20)
    result: str | None = Field(default=None, max_length=20)
    measured_at: datetime | None = Field(
        default=None, description="When it was really taken; the corrected one's time if left out."
    )
    reason: str = Field(min_length=1, max_length=500, description="Why it is corrected.")


class MeasurementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    kind: MeasurementKind
    value: float
    value2: float | None
    result: str | None
    unit: str
    entered: dict[str, Any] = Field(description="What was entered, before conversion.")
    measured_at: datetime
    ga_days: int | None
    gestational_age: str | None
    source: MeasurementSource
    reported_by_mother: bool
    visit_id: uuid.UUID | None
    recorded_by_name: str
    recorded_by_role: str
    recorded_at: datetime
    station_code: str | None = Field(
        default=None,
        description="The station it was taken at, when a station account recorded it.",
    )
    corrects_id: uuid.UUID | None
    superseded_at: datetime | None
    superseded_by_name: str | None
    correction_reason: str | None
    current: bool


class MeasurementList(BaseModel):
    items: list[MeasurementPublic]


class TimelineEntry(BaseModel):
    type: Literal["measurement", "lab"]
    kind: MeasurementKind | LabKind
    at: datetime
    ga_days: int | None
    gestational_age: str | None
    value: float | None
    value2: float | None = None
    result: str | None = None
    unit: str
    reported_by_mother: bool = False
    measurement_id: uuid.UUID | None = None
    report_id: uuid.UUID | None = None
    code: str | None = Field(default=None, description="The lab's code (LOINC) of the result.")
    flag: str | None = Field(default=None, description="The lab's abnormal flag, as sent.")
    entered: dict[str, Any] | None = Field(
        default=None, description="A lab value as the lab sent it (value, unit)."
    )


class UnmappedResult(BaseModel):
    report_id: uuid.UUID
    code: str = Field(description="The local code as the lab sent it (OBX-3.1).")


class Timeline(BaseModel):
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    items: list[TimelineEntry]
    unmapped_results: int = Field(
        default=0,
        description="Her results that look like haemoglobin or glucose under a local code the "
        "code map does not list (numeric, in g/L, mmol/L, mg/dL ...): not on the timeline until "
        "the hospital adds the code to LAB_CODES_FILE.",
    )
    unmapped: list[UnmappedResult] = Field(default_factory=list)
