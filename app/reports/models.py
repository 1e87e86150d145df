from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.reports.domain import PickupState, ReportStatus

# An alert that still stands: no doctor has closed it and it was not voided.
OPEN_ALERT = "acknowledged_at IS NULL AND voided_at IS NULL"


class InboundMessage(UUIDPrimaryKey, Base):
    """Every message from the lab, stored verbatim before it is processed."""

    __tablename__ = "inbound_messages"

    channel: Mapped[str] = mapped_column(String(10))  # hl7v2 | fhir | mllp
    sender_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_clients.id", ondelete="SET NULL")
    )
    sender_name: Mapped[str] = mapped_column(String(100))
    message_key: Mapped[str | None] = mapped_column(String(200))  # MSH-10, Bundle/report id
    webhook_id: Mapped[str | None] = mapped_column(String(200))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # exactly the bytes that arrived
    received_at: Mapped[datetime] = mapped_column(index=True)
    # received | processed | rejected | failed | superseded (taken over by a resend)
    state: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(1000))
    ack_code: Mapped[str | None] = mapped_column(String(12))  # AA, AE, AR or a FHIR severity
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    replay_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    # SHA-256 of what the message says (separators normalised, no BOM): the same control id
    # with other content is another message, never a resend.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # This message reused the control id (or webhook-id) of an earlier one with other content.
    reused_key_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )

    __table_args__ = (
        # The same MSH-10 with the same content from the same sender is the same message,
        # over HTTP or MLLP alike (FHIR deliveries carry no message_key).
        Index(
            "uq_inbound_messages_sender_key",
            "sender_id",
            "message_key",
            "content_hash",
            unique=True,
            postgresql_where=text("message_key IS NOT NULL AND replay_of IS NULL"),
            sqlite_where=text("message_key IS NOT NULL AND replay_of IS NULL"),
        ),
        # A webhook-id names one delivery on one endpoint.
        Index(
            "uq_inbound_messages_webhook_id",
            "sender_id",
            "channel",
            "webhook_id",
            "content_hash",
            unique=True,
            postgresql_where=text("webhook_id IS NOT NULL AND replay_of IS NULL"),
            sqlite_where=text("webhook_id IS NOT NULL AND replay_of IS NULL"),
        ),
    )


class LabReport(UUIDPrimaryKey, Base):
    """One report from the lab; amendments update it and keep the trail in report_events."""

    __tablename__ = "lab_reports"

    sender_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_clients.id", ondelete="SET NULL")
    )
    source_key: Mapped[str] = mapped_column(String(200))
    last_message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inbound_messages.id"))
    exam_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("exam_orders.id", ondelete="SET NULL"), index=True
    )
    mother_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    placer_order: Mapped[str | None] = mapped_column(String(64))
    filler_order: Mapped[str | None] = mapped_column(String(64))
    patient_mrn: Mapped[str | None] = mapped_column(String(64))  # as the lab sent it
    patient_name: Mapped[str | None] = mapped_column(String(200))  # as the lab sent it
    patient_birth_date: Mapped[date | None]
    patient_sex: Mapped[str | None] = mapped_column(String(10))
    comments: Mapped[str | None] = mapped_column(Text)  # NTE on the order, as sent
    # A value in a thresholded code that could not be assessed: a clinician must look.
    needs_review: Mapped[bool] = mapped_column(default=False)
    # Held because it names another patient than the report it updates (that one unchanged).
    conflict_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="SET NULL"), index=True
    )
    # The desk detached it from this mother: the lab's updates never attach it to her again.
    detached_from_mother_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mothers.id", ondelete="SET NULL")
    )
    code: Mapped[str | None] = mapped_column(String(64))
    display: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[ReportStatus] = mapped_column(str_enum(ReportStatus, "status"))
    status_derived: Mapped[bool] = mapped_column(default=False)
    status_note: Mapped[str] = mapped_column(String(200))
    pickup_state: Mapped[PickupState] = mapped_column(str_enum(PickupState, "pickup_state"))
    effective_at: Mapped[datetime | None]
    issued_at: Mapped[datetime | None]
    conclusion: Mapped[str | None] = mapped_column(Text)
    critical: Mapped[bool] = mapped_column(default=False)
    reconciliation_reason: Mapped[str | None] = mapped_column(String(300))
    reconciled_by: Mapped[str | None] = mapped_column(String(100))
    picked_up_at: Mapped[datetime | None]
    picked_up_by: Mapped[uuid.UUID | None]
    pickup_place: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None]
    delivered_by: Mapped[uuid.UUID | None]
    delivery_note: Mapped[str | None] = mapped_column(String(2000))
    ready_at: Mapped[datetime | None]  # when it last became ready for pickup
    reminders_sent: Mapped[int] = mapped_column(SmallInteger, default=0)
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        UniqueConstraint("sender_id", "source_key"),  # a lab's report exists once
        Index(
            "ix_lab_reports_unreconciled",
            "received_at",
            postgresql_where=text("mother_id IS NULL"),
            sqlite_where=text("mother_id IS NULL"),
        ),
    )


class LabObservation(UUIDPrimaryKey, Base):
    __tablename__ = "lab_observations"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(64))
    code_system: Mapped[str | None] = mapped_column(String(200))
    display: Mapped[str | None] = mapped_column(String(200))
    value_type: Mapped[str] = mapped_column(String(5))
    value: Mapped[str | None] = mapped_column(Text)  # whole: repeats, long narrative
    comparator: Mapped[str | None] = mapped_column(String(2))
    numeric: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(40))
    unit_code: Mapped[str | None] = mapped_column(String(40))  # UCUM, when sent
    reference_range: Mapped[str | None] = mapped_column(String(100))
    flag: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str | None] = mapped_column(String(20))
    critical_reason: Mapped[str | None] = mapped_column(String(300))
    review_reason: Mapped[str | None] = mapped_column(String(300))
    comments: Mapped[str | None] = mapped_column(Text)  # NTE after the OBX, as sent

    __table_args__ = (UniqueConstraint("report_id", "seq"),)


class LabAttachment(UUIDPrimaryKey, Base):
    """A document that came with a result: an ED value (the bytes) or an RP pointer."""

    __tablename__ = "lab_attachments"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    observation_seq: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(5))  # ED | RP | FHIR
    media_type: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None]
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    pointer: Mapped[str | None] = mapped_column(String(1000))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inbound_messages.id"))
    created_at: Mapped[datetime]


class ReportEvent(UUIDPrimaryKey, Base):
    """The trail of a report: each lab status, pickup, delivery, reconciliation. Append-only."""

    __tablename__ = "report_events"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str | None] = mapped_column(String(20))
    pickup_state: Mapped[str | None] = mapped_column(String(20))
    message_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[datetime]


class CriticalAlert(UUIDPrimaryKey, Base):
    """A critical value: closed only by a doctor who reads it back and says what was done;
    until then it climbs the tiers (doctor on duty, obstetric lead, duty office). Her
    butler records that she reached the mother, which does not close it. A withdrawn or
    wrong-patient report voids it. The rows are the critical-value register."""

    __tablename__ = "critical_alerts"

    # What it is about: a lab report's critical value, or a severe reading of hers (a blood
    # pressure >= 160/110, raised by the clinical rules): exactly one of the two.
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE"), index=True
    )
    measurement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("measurements.id", ondelete="CASCADE"), index=True
    )
    mother_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE")
    )
    butler_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butlers.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(String(500))
    raised_at: Mapped[datetime]
    due_at: Mapped[datetime]  # when the current tier's time runs out
    acknowledged_at: Mapped[datetime | None]  # a doctor's closure
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    read_back: Mapped[str | None] = mapped_column(String(300))  # what the doctor heard/read
    action_taken: Mapped[str | None] = mapped_column(String(2000))
    escalated_at: Mapped[datetime | None]  # the last step up
    level: Mapped[int] = mapped_column(SmallInteger, default=0)  # the tier (alerts.Tier)
    mother_contacted_at: Mapped[datetime | None]
    mother_contacted_by: Mapped[str | None] = mapped_column(String(100))
    mother_contact_note: Mapped[str | None] = mapped_column(String(1000))
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(100))
    void_reason: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        Index(
            "ix_critical_alerts_open",
            "due_at",
            postgresql_where=text(OPEN_ALERT),
            sqlite_where=text(OPEN_ALERT),
        ),
        # One open alert per report: a resent message does not page twice.
        Index(
            "uq_critical_alerts_open_per_report",
            "report_id",
            unique=True,
            postgresql_where=text(OPEN_ALERT),
            sqlite_where=text(OPEN_ALERT),
        ),
        # One open alert per reading too: a re-evaluation does not page twice.
        Index(
            "uq_critical_alerts_open_per_measurement",
            "measurement_id",
            unique=True,
            postgresql_where=text(OPEN_ALERT),
            sqlite_where=text(OPEN_ALERT),
        ),
        CheckConstraint("(report_id IS NULL) <> (measurement_id IS NULL)", name="one_subject"),
        CheckConstraint("level BETWEEN 0 AND 2", name="tier_range"),
        # A closure says who closed it, what was read back and what was done.
        CheckConstraint(
            "acknowledged_at IS NULL OR (acknowledged_by IS NOT NULL AND read_back IS NOT NULL "
            "AND action_taken IS NOT NULL)",
            name="closure_has_read_back",
        ),
        CheckConstraint(
            "mother_contacted_at IS NULL OR mother_contacted_by IS NOT NULL",
            name="contact_says_who",
        ),
        CheckConstraint(
            "voided_at IS NULL OR (voided_by IS NOT NULL AND void_reason IS NOT NULL)",
            name="void_has_reason",
        ),
    )
