from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey


class AuditEvent(UUIDPrimaryKey, Base):
    """Who did what to which record, when, in which request. Never updated or deleted."""

    __tablename__ = "audit_events"

    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    # The mother the row concerns, whatever it is keyed by (her visit, report, queue place…):
    # "everything done with her record" is one indexed query. None: no mother (a butler's
    # roster, a station) or one not known (a lab report that matched nobody).
    mother_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Identifiers and field names only: never personal data.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index(None, "resource_type", "resource_id"),)
