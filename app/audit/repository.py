"""Every query of the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditFilter:
    resource_type: str | None = None
    resource_id: str | None = None
    mother_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self, f: AuditFilter, *, after: uuid.UUID | None, limit: int
    ) -> list[AuditEvent]:
        stmt = select(AuditEvent).order_by(AuditEvent.id).limit(limit)
        if after is not None:
            stmt = stmt.where(AuditEvent.id > after)
        for column, value in (
            (AuditEvent.resource_type, f.resource_type),
            (AuditEvent.resource_id, f.resource_id),
            (AuditEvent.mother_id, f.mother_id),
            (AuditEvent.actor_id, f.actor_id),
            (AuditEvent.action, f.action),
            (AuditEvent.outcome, f.outcome),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if f.occurred_from is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= f.occurred_from)
        if f.occurred_to is not None:
            stmt = stmt.where(AuditEvent.occurred_at < f.occurred_to)
        return list(await self.session.scalars(stmt))
