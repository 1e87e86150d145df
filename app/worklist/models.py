from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class WorklistItem(UUIDPrimaryKey, Base):
    """Something the front desk, the doctor on duty or an admin must act on.

    Items point at what they are about (a report, an alert, a visit, a message); the title
    says what happened without personal data, the record it points to holds the rest.
    """

    __tablename__ = "worklist_items"

    audience: Mapped[str] = mapped_column(String(20))  # front_desk | doctor | admin
    kind: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(SmallInteger)  # 0 critical, 1 today, 2 when possible
    title: Mapped[str] = mapped_column(String(300))
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lab_reports.id", ondelete="CASCADE")
    )
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("critical_alerts.id", ondelete="CASCADE")
    )
    mother_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mothers.id", ondelete="CASCADE")
    )
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("butler_tasks.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_note: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        Index("ix_worklist_items_audience_id", "audience", "id"),  # the version of a list
        Index(
            "ix_worklist_items_open",
            "audience",
            "priority",
            "created_at",
            postgresql_where=text("acknowledged_at IS NULL"),
            sqlite_where=text("acknowledged_at IS NULL"),
        ),
    )
