from __future__ import annotations

import uuid
from datetime import datetime
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
    critical_reason: str | None


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
    reconciliation_reason: str | None
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
    filler_order: str | None
    effective_at: datetime | None
    conclusion: str | None
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


class Attach(BaseModel):
    exam_order_id: uuid.UUID
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


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
