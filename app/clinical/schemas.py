"""What the clinical-rules routes answer: the rules in force, her weight gain, the firings
with what fired them, her flags, and a clinician's decision."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.clinical.rules import FiringState


class RulePublic(BaseModel):
    id: str
    kind: str
    title: str
    source: str
    year: int
    state: FiringState = Field(description="suggested (a doctor decides) or recorded")
    flags: list[str]
    effects: list[str]
    risk_grade: str | None = Field(description="The grade it suggests, for a doctor to confirm")
    params: dict[str, Any] = Field(description="Its thresholds, as the file states them")


class GwgGroupPublic(BaseModel):
    code: str
    label: str
    bmi_range: str
    total_kg: tuple[float, float]
    first_trimester_kg: tuple[float, float]
    weekly_kg: tuple[float, float]
    weekly_mean_kg: float


class GwgTablePublic(BaseModel):
    code: str
    name: str
    source: str
    year: int
    in_force: bool
    groups: list[GwgGroupPublic]
    multiples_note: str


class ClinicalRulesPublic(BaseModel):
    version: str
    rules: list[RulePublic]
    weight_gain_tables: list[GwgTablePublic]
    band_derivation: str


class GainPointPublic(BaseModel):
    measurement_id: uuid.UUID
    measured_at: datetime
    ga_days: int
    ga: str = Field(examples=["24+3"])
    weight_kg: float
    gain_kg: float | None = Field(description="None without her pre-pregnancy weight")
    low_kg: float | None = Field(
        description="The band for that day: least expected gain (None: not covered, no band)"
    )
    high_kg: float | None
    status: Literal["below", "within", "above"] | None = Field(
        description="None when no band applies (twins, no BMI): see not_covered"
    )


class WeightGainPublic(BaseModel):
    table: str = Field(examples=["wst-801-2022"])
    table_name: str
    height_cm: float | None
    pre_pregnancy_weight_kg: float | None
    bmi: float | None = Field(description="kg/m², rounded to 0.01 for display only")
    group: str | None = Field(examples=["normal"])
    group_label: str | None
    total_target_kg: tuple[float, float] | None
    weekly_target_kg: tuple[float, float] | None
    readings: list[GainPointPublic]
    gain_kg: float | None = Field(description="On her latest reading")
    status: str | None = Field(description="below / within / above, on her latest reading")
    not_covered: str | None = Field(description="Why no range is given (twins, no BMI)")


class FiringPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rule_id: str
    rules_version: str
    outcome: str
    grade: str | None
    suggested_grade: str | None
    explanation: str
    inputs: dict[str, Any]
    measurement_id: uuid.UUID | None
    report_id: uuid.UUID | None
    fired_at: datetime
    state: FiringState
    decided_by_name: str | None
    decided_by_role: str | None
    decided_at: datetime | None
    decision_note: str | None


class FiringList(BaseModel):
    items: list[FiringPublic]


class FlagPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(examples=["gdm"])
    grade: str | None = Field(examples=["mild"])
    suggested: bool = Field(description="Awaits a clinician's confirmation")
    firing_id: uuid.UUID
    raised_at: datetime
    confirmed_by_name: str | None
    confirmed_at: datetime | None
    cleared_at: datetime | None
    cleared_by: str | None
    clear_reason: str | None


class FlagList(BaseModel):
    items: list[FlagPublic]


class DecisionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "confirmed", "note": "BP 146/94 twice"}]},
    )

    decision: Literal["confirmed", "dismissed"]
    note: str = Field(min_length=1, max_length=1000, description="Why: it goes on the record")
