from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Self, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.assignments.schemas import AccompanyingToday, AssignmentDecision
from app.core.pagination import PageInfo
from app.core.text import PersonName
from app.mothers.dating import DatingOutcome, ScanMeasurement
from app.mothers.domain import (
    DatingMethod,
    RiskDecision,
    RiskGrade,
    Trimester,
    normalize_mobile,
    parse_national_id,
)


def _national_id(value: str) -> str:
    return parse_national_id(value).value


NationalIdStr = Annotated[
    str,
    Field(
        description="18-character resident identity number; the check digit is verified. "
        "Fullwidth digits are read as 0-9 (NFKC); other scripts' digits are refused."
    ),
    AfterValidator(_national_id),
]
MobileStr = Annotated[
    str,
    Field(
        description="Mainland mobile number; +86 and separators are accepted and removed, "
        "fullwidth digits read as 0-9 (NFKC); other scripts' digits are refused."
    ),
    AfterValidator(normalize_mobile),
]
Mrn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"),
    Field(description="The hospital's medical record number."),
]
Language = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
    Field(description="BCP 47 tag of her preferred language, e.g. zh-CN, yue, en."),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
WeeksDays = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\d{1,2}\+[0-6]$"),
    Field(description="Gestational age as completed weeks+days, e.g. 12+3.", examples=["12+3"]),
]
Factor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]


class UltrasoundIn(BaseModel):
    """The dating scan: the EDD follows from its date and gestational age (ACOG 700)."""

    model_config = ConfigDict(extra="forbid")

    scan_date: date
    measurement: ScanMeasurement = Field(
        description="crl (up to 13+6), hc or biometry (from 14+0); 'unspecified' is refused."
    )
    value_mm: float | None = Field(
        default=None, gt=0, le=500, description="The CRL or HC in mm (required for those)."
    )
    ga: WeeksDays

    @model_validator(mode="after")
    def _measured(self) -> Self:
        if self.measurement is ScanMeasurement.UNSPECIFIED:
            raise ValueError("say what the scan measured: crl, hc or biometry")
        return self


class IvfIn(BaseModel):
    """An IVF pregnancy is dated from the transfer: EDD = transfer + 266 - embryo age (ACOG 700)."""

    model_config = ConfigDict(extra="forbid")

    transfer_date: date
    embryo_age_days: int = Field(ge=1, le=7, description="Day 3 or day 5 (2-6 accepted).")


_EXAMPLE_CREATE: dict[str, Any] = {
    "mrn": "MRN0099",
    "name": "李小红",
    "national_id": "110105199503070021",
    "phone": "13800138000",
    "language": "zh-CN",
    "pregnancy": {
        "lmp_date": "2026-06-01",
        "gravida": 1,
        "para": 0,
        "risk_grade": "green",
    },
}


class PregnancyCreate(BaseModel):
    lmp_date: date | None = Field(default=None, description="First day of the last period.")
    edd_date: date | None = Field(
        default=None, description="Estimated delivery date, if dated otherwise than by LMP."
    )
    dating_method: DatingMethod | None = Field(
        default=None,
        description="How the EDD was found. An EDD sent with an LMP but without its scan is "
        "judged as a scan made today against ACOG 700's thresholds.",
    )
    ultrasound: UltrasoundIn | None = Field(
        default=None, description="A dating scan, judged against the LMP (ACOG 700 Table 1)."
    )
    ivf: IvfIn | None = Field(default=None, description="IVF: dated from the embryo transfer.")
    gravida: int = Field(ge=1, le=30, description="Pregnancies including this one.")
    para: int = Field(ge=0, le=29, description="Earlier births at 28 weeks or later.")
    risk_grade: RiskGrade = Field(
        description="Her colour, green to red (NHFPC 2017). The old single grade 'purple' is "
        "read as purple beside yellow (her colour unknown is not assumed low)."
    )
    purple: bool = Field(
        default=False, description="紫色: an infectious disease, beside the colour."
    )
    risk_reason: Reason = "initial assessment at enrolment"

    @model_validator(mode="after")
    def _para_below_gravida(self) -> Self:
        if self.para >= self.gravida:
            raise ValueError("para must be lower than gravida (gravida counts this pregnancy)")
        if (
            self.lmp_date is None
            and self.edd_date is None
            and self.ultrasound is None
            and self.ivf is None
        ):
            raise ValueError("give lmp_date, edd_date, a dating ultrasound or the IVF transfer")
        return self


class MotherCreate(BaseModel):
    # A misspelt field is refused, not silently dropped: her record must hold what was meant.
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [cast(JsonDict, _EXAMPLE_CREATE)]}
    )

    mrn: Mrn
    name: PersonName
    national_id: NationalIdStr
    phone: MobileStr
    date_of_birth: date | None = Field(
        default=None, description="Taken from the national id when left out; must agree with it."
    )
    language: Language = "zh-CN"
    primary_butler_id: uuid.UUID | None = Field(
        default=None,
        description="The front desk's choice of primary butler (the rules are checked); "
        "chosen by the rules when left out.",
    )
    pregnancy: PregnancyCreate
    height_cm: float | None = Field(
        default=None,
        description="Her height (cm), for her BMI; checked against the measurement ranges.",
    )
    pre_pregnancy_weight_kg: float | None = Field(
        default=None,
        description="Her weight before this pregnancy (kg, as she reports it): her BMI group "
        "and weight-gain band are read from it.",
    )


class PregnancyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lmp_date: date | None = None
    edd_date: date | None = None
    dating_method: DatingMethod | None = None
    ultrasound: UltrasoundIn | None = Field(
        default=None,
        description="A scan: re-dates only past ACOG 700's threshold for its gestational age; "
        "once a scan or IVF has dated her, and from 28+0, only with a doctor's override.",
    )
    ivf: IvfIn | None = None
    gravida: int | None = Field(default=None, ge=1, le=30)
    para: int | None = Field(default=None, ge=0, le=29)
    dating_reason: Reason | None = Field(
        default=None, description="Why the dating changes, e.g. 'NT scan CRL 62 mm'."
    )
    redating_override: Reason | None = Field(
        default=None,
        description="A doctor's written reason to re-date where the rules keep the dating in "
        "force (doctors only).",
    )


class MotherUpdate(BaseModel):
    """Send only what changes; the request needs If-Match with the ETag you read."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"risk_grade": "orange", "risk_reason": "gestational hypertension"}]
        },
    )

    name: PersonName | None = None
    national_id: NationalIdStr | None = None
    phone: MobileStr | None = None
    date_of_birth: date | None = None
    language: Language | None = None
    pregnancy: PregnancyUpdate | None = None
    risk_grade: RiskGrade | None = Field(
        default=None,
        description="Her colour. The old single grade 'purple' sets the purple flag and keeps "
        "her colour.",
    )
    purple: bool | None = Field(default=None, description="紫色 (infectious disease) beside it.")
    risk_reason: Reason | None = Field(
        default=None, description="Required with risk_grade or purple: why the grade changes."
    )

    @model_validator(mode="after")
    def _reason_with_grade(self) -> Self:
        if (self.risk_grade is not None or self.purple is not None) and self.risk_reason is None:
            raise ValueError("risk_reason is required when risk_grade or purple changes")
        return self


class RiskAssessmentCreate(BaseModel):
    """A doctor's risk assessment (NHFPC 2017): confirms or changes her grade."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "grade": "orange",
                    "purple": True,
                    "factors": ["placenta praevia", "HBsAg positive"],
                    "reason": "booking assessment",
                }
            ]
        },
    )

    grade: RiskGrade = Field(description="Her colour: green, yellow, orange or red.")
    purple: bool = Field(description="紫色: an infectious disease beside the colour.")
    factors: list[Factor] = Field(
        default_factory=list, max_length=30, description="The risk factors found (评估表)."
    )
    reason: Reason

    @model_validator(mode="after")
    def _a_colour(self) -> Self:
        if self.grade is RiskGrade.PURPLE:
            raise ValueError("grade is her colour; purple stands beside it (purple: true)")
        return self


class GestationalAge(BaseModel):
    days: int = Field(description="Completed days of gestation today (clinic time zone).")
    display: str = Field(examples=["24+3"], description="Completed weeks + days.")
    trimester: Trimester


class ScanPublic(BaseModel):
    scan_date: date
    measurement: ScanMeasurement
    value_mm: float | None
    ga_days: int
    ga: str = Field(examples=["12+3"])


class IvfPublic(BaseModel):
    transfer_date: date
    embryo_age_days: int


class DatingPublic(BaseModel):
    method: DatingMethod
    scan: ScanPublic | None = Field(description="The scan the dating rests on, if any.")
    ivf: IvfPublic | None
    established_by: str | None = Field(
        description="What fixed the dating: a later re-dating needs a doctor's override."
    )
    suboptimal: bool = Field(
        description="No ultrasound before 22+0 confirmed or revised the EDD (ACOG 700)."
    )
    suboptimal_reason: str | None


class PregnancyPublic(BaseModel):
    id: uuid.UUID
    lmp_date: date | None
    edd_date: date
    dating_method: DatingMethod
    dating: DatingPublic
    gestational_age: GestationalAge
    gravida: int
    para: int
    risk_grade: RiskGrade = Field(description="Her colour: green, yellow, orange or red.")
    purple: bool = Field(description="紫色 传染性疾病: an infectious disease, beside the colour.")
    risk_label: str = Field(examples=["橙色 较高风险 (orange, higher risk)"])
    managed_case: bool = Field(
        description="Orange, red or purple: managed as a high-risk case (专案管理, NHFPC 2017)."
    )
    infection_control: bool = Field(description="Purple: every station must see this.")


class DatingDecisionPublic(BaseModel):
    """What a dating change was judged on, and why it did or did not re-date."""

    outcome: DatingOutcome
    reason: str
    scan_ga_days: int | None = None
    dated_ga_days: int | None = Field(
        default=None, description="The gestational age by the dating in force on the scan date."
    )
    difference_days: int | None = None
    threshold_days: int | None = None


class MotherRecord(BaseModel):
    """The single record. national_id and phone are full only for roles that need them."""

    id: uuid.UUID
    mrn: str
    name: str
    national_id: str = Field(
        description="Full for the roles that need it; otherwise masked to its last four "
        "characters (**************002X), which date_of_birth beside it cannot complete."
    )
    national_id_masked: bool
    phone: str
    phone_masked: bool
    date_of_birth: date
    age: int
    language: str
    primary_butler_id: uuid.UUID | None
    pregnancy: PregnancyPublic | None
    accompanying_today: AccompanyingToday | None = Field(
        default=None, description="Who accompanies her at today's visit (primary or cover)."
    )
    assignment: AssignmentDecision | None = Field(
        default=None, description="On enrolment: why this primary butler was chosen."
    )
    dating_decision: DatingDecisionPublic | None = Field(
        default=None, description="On a write that dated her: what the rules decided and why."
    )
    risk_notes: list[str] = Field(
        default_factory=list,
        description="On a write that set her grade: what the rules did (age floor, tasks).",
    )
    created_at: datetime
    updated_at: datetime
    version: int


class MotherSummary(BaseModel):
    """A list row: identifiers are always masked."""

    id: uuid.UUID
    mrn: str
    name: str
    national_id: str = Field(
        examples=["**************002X"],
        description="Masked: the last four characters only (her record shows her date of birth, "
        "which the middle eight digits are).",
    )
    phone: str = Field(examples=["138****8000"])
    risk_grade: RiskGrade | None
    purple: bool | None = None
    edd_date: date | None
    gestational_age: str | None = Field(examples=["24+3"])
    primary_butler_id: uuid.UUID | None


class MotherPage(BaseModel):
    items: list[MotherSummary]
    page: PageInfo


class RiskGradeChangePublic(BaseModel):
    """One decision on her grade. Rows before issue 20 may say 'purple' as the grade itself."""

    model_config = ConfigDict(from_attributes=True)

    from_grade: RiskGrade | None
    to_grade: RiskGrade
    from_purple: bool | None
    to_purple: bool
    decision: RiskDecision
    factors: list[str] | None
    reason: str
    changed_by_name: str
    changed_by_role: str | None
    changed_at: datetime


class RiskAssessmentResult(BaseModel):
    pregnancy: PregnancyPublic
    decisions: list[RiskGradeChangePublic] = Field(
        description="What was recorded: the doctor's decision, then any rule's (age floor)."
    )
    tasks: list[str] = Field(description="Worklist items the grade brought (kinds).")
    prompts_closed: int = Field(description="Re-assessment prompts this assessment closed.")


class RiskHistory(BaseModel):
    pregnancy_id: uuid.UUID
    changes: list[RiskGradeChangePublic]


class DatingChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    lmp_date: date | None
    edd_date: date
    dating_method: DatingMethod
    previous_edd_date: date | None
    outcome: DatingOutcome | None
    scan_date: date | None
    scan_measurement: ScanMeasurement | None
    scan_value_mm: float | None
    scan_ga_days: int | None
    dated_ga_days: int | None
    difference_days: int | None
    threshold_days: int | None
    ivf_transfer_date: date | None
    ivf_embryo_age_days: int | None
    reason: str
    changed_by_name: str
    changed_by_role: str | None
    changed_at: datetime


class DatingHistory(BaseModel):
    pregnancy_id: uuid.UUID
    changes: list[DatingChangePublic]
