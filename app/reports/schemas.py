from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.pagination import PageInfo
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
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    report_id: uuid.UUID
    mother_id: uuid.UUID | None
    butler_id: uuid.UUID | None
    reason: str
    raised_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_at: datetime | None
    level: int


class AlertList(BaseModel):
    items: list[AlertPublic]
