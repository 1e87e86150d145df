from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class WorklistItemPublic(BaseModel):
    """What to act on; the record it points to (report, alert, visit) holds the details."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    audience: str = Field(
        description="front_desk, doctor, admin, obstetric_lead or duty_office (the tiers of an "
        "unclosed critical value)"
    )
    kind: str = Field(
        examples=["critical.unmatched"],
        description=(
            "report.unmatched, report.identity_conflict, alert.critical, critical.unmatched, "
            "observation.review, report.detached, alert.escalated, alert.voided, "
            "visit.unaccompanied, message.control_id_reused, task.overdue"
        ),
    )
    priority: int = Field(description="0 critical (act now), 1 today, 2 when possible")
    title: str
    report_id: uuid.UUID | None
    alert_id: uuid.UUID | None
    mother_id: uuid.UUID | None
    mother_mrn: str | None = Field(
        default=None, description="Her MRN, when the item is about a mother."
    )
    mother_masked_name: str | None = Field(
        default=None, description="Her name masked (王*琪), as lists show it."
    )
    visit_id: uuid.UUID | None
    message_id: uuid.UUID | None
    task_id: uuid.UUID | None
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_note: str | None


class Worklist(BaseModel):
    items: list[WorklistItemPublic]
    version: str = Field(description="The same as the ETag, without quotes")


class AcknowledgeItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=1000)
    ] = Field(examples=["Called the lab: the MRN was mistyped; attached to the right mother."])
