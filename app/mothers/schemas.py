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
from app.mothers.domain import (
    DatingMethod,
    RiskGrade,
    Trimester,
    normalize_mobile,
    parse_national_id,
)


def _national_id(value: str) -> str:
    return parse_national_id(value).value


NationalIdStr = Annotated[
    str,
    Field(description="18-character resident identity number; the check digit is verified."),
    AfterValidator(_national_id),
]
MobileStr = Annotated[
    str,
    Field(description="Mainland mobile number; +86 and separators are accepted and removed."),
    AfterValidator(normalize_mobile),
]
Mrn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$"),
    Field(description="The hospital's medical record number."),
]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Language = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
    Field(description="BCP 47 tag of her preferred language, e.g. zh-CN, yue, en."),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]

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
        description="How the EDD was found; defaults to lmp, or ultrasound when an EDD is given.",
    )
    gravida: int = Field(ge=1, le=30, description="Pregnancies including this one.")
    para: int = Field(ge=0, le=29, description="Earlier births at 28 weeks or later.")
    risk_grade: RiskGrade
    risk_reason: Reason = "initial assessment at enrolment"

    @model_validator(mode="after")
    def _para_below_gravida(self) -> Self:
        if self.para >= self.gravida:
            raise ValueError("para must be lower than gravida (gravida counts this pregnancy)")
        if self.lmp_date is None and self.edd_date is None:
            raise ValueError("give lmp_date, edd_date or both")
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


class PregnancyUpdate(BaseModel):
    lmp_date: date | None = None
    edd_date: date | None = None
    dating_method: DatingMethod | None = None
    gravida: int | None = Field(default=None, ge=1, le=30)
    para: int | None = Field(default=None, ge=0, le=29)
    dating_reason: Reason | None = Field(
        default=None, description="Why the dating changes, e.g. 'NT scan CRL 62 mm'."
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
    risk_grade: RiskGrade | None = None
    risk_reason: Reason | None = Field(
        default=None, description="Required with risk_grade: why the grade changes."
    )

    @model_validator(mode="after")
    def _reason_with_grade(self) -> Self:
        if self.risk_grade is not None and self.risk_reason is None:
            raise ValueError("risk_reason is required when risk_grade changes")
        return self


class GestationalAge(BaseModel):
    days: int = Field(description="Completed days of gestation today (clinic time zone).")
    display: str = Field(examples=["24+3"], description="Completed weeks + days.")
    trimester: Trimester


class PregnancyPublic(BaseModel):
    id: uuid.UUID
    lmp_date: date | None
    edd_date: date
    dating_method: DatingMethod
    gestational_age: GestationalAge
    gravida: int
    para: int
    risk_grade: RiskGrade
    infection_control: bool = Field(description="Purple grade: every station must see this.")


class MotherRecord(BaseModel):
    """The single record. national_id and phone are full only for roles that need them."""

    id: uuid.UUID
    mrn: str
    name: str
    national_id: str
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
    created_at: datetime
    updated_at: datetime
    version: int


class MotherSummary(BaseModel):
    """A list row: identifiers are always masked."""

    id: uuid.UUID
    mrn: str
    name: str
    national_id: str = Field(examples=["110105********002X"])
    phone: str = Field(examples=["138****8000"])
    risk_grade: RiskGrade | None
    edd_date: date | None
    gestational_age: str | None = Field(examples=["24+3"])
    primary_butler_id: uuid.UUID | None


class MotherPage(BaseModel):
    items: list[MotherSummary]
    page: PageInfo


class RiskGradeChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_grade: RiskGrade | None
    to_grade: RiskGrade
    reason: str
    changed_by_name: str
    changed_at: datetime


class RiskHistory(BaseModel):
    pregnancy_id: uuid.UUID
    changes: list[RiskGradeChangePublic]


class DatingChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    lmp_date: date | None
    edd_date: date
    dating_method: DatingMethod
    previous_edd_date: date | None
    reason: str
    changed_by_name: str
    changed_at: datetime


class DatingHistory(BaseModel):
    pregnancy_id: uuid.UUID
    changes: list[DatingChangePublic]
