from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.pagination import PageInfo
from app.reports.alerts import AlertState, Tier, state_of
from app.reports.domain import PickupState, ReportStatus

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]


class ObservationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    code: str
    code_system: str | None
    display: str | None
    value_type: str
    value: str | None
    numeric: float | None
    unit: str | None
    reference_range: str | None
    flag: str | None
    status: str | None
    comparator: str | None
    unit_code: str | None
    critical_reason: str | None
    review_reason: str | None = Field(
        description="Why this value in a code on the critical list could not be assessed"
    )
    comments: str | None = Field(description="The lab's comments on this result (NTE)")


class AttachmentPublic(BaseModel):
    """A document that came with a result; GET its url for the bytes (ED) or see pointer."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    observation_seq: int
    kind: str = Field(description="ED (sent embedded), RP (a pointer to the sender's copy)")
    media_type: str | None
    title: str | None
    size: int | None
    pointer: str | None


class ReportSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mother_id: uuid.UUID | None
    exam_order_id: uuid.UUID | None
    placer_order: str | None
    code: str | None
    display: str | None
    status: ReportStatus
    status_derived: bool
    status_note: str
    pickup_state: PickupState
    critical: bool
    needs_review: bool
    reconciliation_reason: str | None
    conflict_of: uuid.UUID | None = Field(
        description="Held because it names another patient than this report (left unchanged)"
    )
    issued_at: datetime | None
    received_at: datetime
    version: int


class ReportEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    status: str | None
    pickup_state: str | None
    actor_name: str
    note: str | None
    at: datetime


class ReportDetail(ReportSummary):
    patient_mrn: str | None
    patient_name: str | None
    patient_birth_date: date | None
    patient_sex: str | None
    filler_order: str | None
    effective_at: datetime | None
    conclusion: str | None
    comments: str | None = Field(description="The lab's comments on the order (NTE)")
    attachments: list[AttachmentPublic]
    picked_up_at: datetime | None
    pickup_place: str | None
    delivered_at: datetime | None
    delivery_note: str | None
    observations: list[ObservationPublic]
    events: list[ReportEventPublic]


class ReportPage(BaseModel):
    items: list[ReportSummary]
    page: PageInfo


class PickUp(BaseModel):
    place: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)
    ] = Field(examples=["Lab reception, 2nd floor"])


class Deliver(BaseModel):
    note: Text = Field(
        examples=["Explained the OGTT result; follow-up with the nutritionist on Friday."]
    )


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class Attach(BaseModel):
    exam_order_id: uuid.UUID
    reason: Reason
    override: bool = Field(
        default=False,
        description=(
            "Attach although the patient the message names does not agree with this mother "
            "(recorded, with the reason, in the report's trail and the audit log)"
        ),
    )


class Detach(BaseModel):
    reason: Reason = Field(examples=["Attached to the wrong mother: same name, other MRN"])


class PatientSent(BaseModel):
    mrn: str | None
    name: str | None
    birth_date: date | None
    sex: str | None


class OpenOrder(BaseModel):
    exam_order_id: uuid.UUID
    order_number: str
    exam_code: str
    visit_date: date
    named_in_message: bool


class CandidateMother(BaseModel):
    mother_id: uuid.UUID
    score: int
    reasons: list[str]
    disagreements: list[str]
    open_orders: list[OpenOrder]


class HeldResult(BaseModel):
    """A result waiting for the desk: what the message says, and who it may be."""

    report: ReportSummary
    patient: PatientSent
    filler_order: str | None
    observation_count: int
    candidates: list[CandidateMother]


class HeldResults(BaseModel):
    items: list[HeldResult]


class InboundMessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: str
    sender_name: str
    message_key: str | None
    webhook_id: str | None
    received_at: datetime
    state: str
    outcome: str | None
    ack_code: str | None
    processed_at: datetime | None
    replay_of: uuid.UUID | None
    reused_key_of: uuid.UUID | None = Field(
        description="It reused the control id (or webhook-id) of this earlier, other message"
    )


class InboundMessageList(BaseModel):
    items: list[InboundMessagePublic]
    page: PageInfo


class AlertPublic(BaseModel):
    """One line of the critical-value register: raised, its tier, the mother contacted, the
    doctor's closure with the read-back and the action, or why it was voided."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    report_id: uuid.UUID | None = Field(description="The lab report of a critical value")
    measurement_id: uuid.UUID | None = Field(
        default=None, description="Or the reading of hers (a blood pressure >= 160/110)"
    )
    mother_id: uuid.UUID | None
    butler_id: uuid.UUID | None
    reason: str
    state: AlertState = Field(description="open, acknowledged (closed by a doctor) or voided")
    raised_at: datetime
    tier: Tier = Field(
        description="0 doctor on duty, 1 obstetric lead, 2 the hospital's duty office",
    )
    tier_name: str = Field(examples=["obstetric_lead"])
    due_at: datetime = Field(description="When the current tier's time runs out")
    escalated_at: datetime | None = Field(description="The last step up a tier")
    level: int = Field(description="The tier as a number (kept for older clients)")
    mother_contacted_at: datetime | None
    mother_contacted_by: str | None
    mother_contact_note: str | None
    acknowledged_at: datetime | None = Field(description="When a doctor closed it")
    acknowledged_by: str | None = Field(examples=["doctor:dr.wang"])
    read_back: str | None = Field(description="What the doctor read back, e.g. Hb 58 g/L")
    action_taken: str | None
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str | None

    @classmethod
    def of(cls, alert: Any) -> AlertPublic:
        tier = Tier(alert.level)
        return cls.model_validate(
            {
                **{k: getattr(alert, k) for k in _ALERT_COLUMNS},
                "state": state_of(acknowledged_at=alert.acknowledged_at, voided_at=alert.voided_at),
                "tier": tier,
                "tier_name": tier.label,
            }
        )


_ALERT_COLUMNS = (
    "id",
    "report_id",
    "measurement_id",
    "mother_id",
    "butler_id",
    "reason",
    "raised_at",
    "due_at",
    "escalated_at",
    "level",
    "mother_contacted_at",
    "mother_contacted_by",
    "mother_contact_note",
    "acknowledged_at",
    "acknowledged_by",
    "read_back",
    "action_taken",
    "voided_at",
    "voided_by",
    "void_reason",
)


class AlertList(BaseModel):
    items: list[AlertPublic]


class AcknowledgeAlert(BaseModel):
    """A doctor's closure of a critical value (the 2018 rules: the receiver reads back)."""

    model_config = ConfigDict(extra="forbid")

    read_back: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=300)
    ] = Field(
        description="The value as the doctor read it back: analyte, number and unit",
        examples=["Hb 58 g/L"],
    )
    action_taken: Text = Field(
        examples=["Phoned her: admitted to the day ward for transfusion; repeat Hb tonight."]
    )


class MotherContacted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=1000)
    ] = Field(examples=["Phoned her at 10:05; she is on her way to the clinic."])


class AlertIndicators(BaseModel):
    """The register's indicators over the alerts raised in the period (2018 rules)."""

    raised_from: datetime | None
    raised_before: datetime | None
    total: int
    open: int
    acknowledged: int
    voided: int
    escalated: int = Field(description="Reached the obstetric lead or beyond")
    open_past_target: int = Field(description="Open and older than the doctor on duty's time")
    unacknowledged_rate: float | None = Field(
        description="Open among the alerts that still stand (voided ones left out)"
    )
    target_minutes: int = Field(description="CRITICAL_ACK_MINUTES")
    acknowledged_within_target: int
    median_minutes_to_acknowledge: float | None = Field(
        description="From raise to a doctor's closure (nearest rank)"
    )
    p90_minutes_to_acknowledge: float | None
