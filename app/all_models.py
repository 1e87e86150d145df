"""Imports every model so that Base.metadata is complete (Alembic, tests)."""

import app.clinical.models
import app.healthplan.models
import app.measurements.models
import app.reviews.models  # noqa: F401  (the health-management packages: every mapper in them)
from app.assignments.models import ButlerLeave, CareAssignment
from app.audit.models import AuditEvent
from app.auth.models import ApiClient, AuthToken, User
from app.butlers.models import Butler, RosterShift
from app.careplan.models import CareIndication, ExamDecline, OutsideResult, ScreeningChoice
from app.core.database import Base
from app.core.idempotency import IdempotencyRecord
from app.core.ratelimit import RateCounter
from app.feed.models import FeedEvent, FeedState, Task
from app.mothers.models import DatingChange, Mother, Pregnancy, RiskGradeChange
from app.notifications.models import OutboxMessage
from app.queues.models import (
    ExamStep,
    ExamType,
    PreparationNotice,
    QueueEntry,
    Station,
    StationTicket,
)
from app.reports.models import (
    CriticalAlert,
    InboundMessage,
    LabAttachment,
    LabObservation,
    LabReport,
    ReportEvent,
)
from app.visits.models import ClinicSession, ExamOrder, Visit, VisitStatusChange
from app.worklist.models import WorklistItem

__all__ = [
    "ApiClient",
    "AuditEvent",
    "AuthToken",
    "Base",
    "Butler",
    "ButlerLeave",
    "CareAssignment",
    "CareIndication",
    "ClinicSession",
    "CriticalAlert",
    "DatingChange",
    "ExamDecline",
    "ExamOrder",
    "ExamStep",
    "ExamType",
    "FeedEvent",
    "FeedState",
    "IdempotencyRecord",
    "InboundMessage",
    "LabAttachment",
    "LabObservation",
    "LabReport",
    "Mother",
    "OutboxMessage",
    "OutsideResult",
    "Pregnancy",
    "PreparationNotice",
    "QueueEntry",
    "RateCounter",
    "ReportEvent",
    "RiskGradeChange",
    "RosterShift",
    "ScreeningChoice",
    "Station",
    "StationTicket",
    "Task",
    "User",
    "Visit",
    "VisitStatusChange",
    "WorklistItem",
]
