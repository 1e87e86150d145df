"""Every query of inbound messages, reports, observations and alerts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.reports.models import CriticalAlert, InboundMessage, LabObservation, LabReport, ReportEvent
from app.visits.models import ExamOrder, Visit


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def message(self, message_id: uuid.UUID) -> InboundMessage | None:
        return await self.session.get(InboundMessage, message_id)

    async def seen(
        self, *, sender_id: uuid.UUID, channel: str, key: str | None, webhook_id: str | None
    ) -> InboundMessage | None:
        """The latest take of the same message (same MSH-10 or the same webhook-id), replays
        included, so that a resend after a failure sees how the retry went."""
        clauses = []
        if key:
            clauses.append(
                select(InboundMessage).where(
                    InboundMessage.sender_id == sender_id,
                    InboundMessage.channel == channel,
                    InboundMessage.message_key == key,
                )
            )
        if webhook_id:
            clauses.append(
                select(InboundMessage).where(
                    InboundMessage.sender_id == sender_id,
                    InboundMessage.webhook_id == webhook_id,
                )
            )
        for stmt in clauses:
            found = await self.session.scalar(stmt.order_by(InboundMessage.id.desc()).limit(1))
            if found is not None:
                return found
        return None

    async def messages(
        self, *, after: uuid.UUID | None, limit: int, state: str | None
    ) -> list[InboundMessage]:
        stmt = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(InboundMessage.id < after)
        if state:
            stmt = stmt.where(InboundMessage.state == state)
        return list(await self.session.scalars(stmt))

    async def report_by_key(self, sender_id: uuid.UUID | None, key: str) -> LabReport | None:
        return await self.session.scalar(
            select(LabReport)
            .where(LabReport.sender_id == sender_id, LabReport.source_key == key)
            .with_for_update()
        )

    async def report(self, report_id: uuid.UUID, *, for_update: bool = False) -> LabReport | None:
        stmt = select(LabReport).where(LabReport.id == report_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def order_by_number(self, number: str) -> tuple[ExamOrder, Visit] | None:
        row = (
            await self.session.execute(
                select(ExamOrder, Visit)
                .join(Visit, Visit.id == ExamOrder.visit_id)
                .where(ExamOrder.order_number == number)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def order(self, order_id: uuid.UUID) -> tuple[ExamOrder, Visit] | None:
        row = (
            await self.session.execute(
                select(ExamOrder, Visit)
                .join(Visit, Visit.id == ExamOrder.visit_id)
                .where(ExamOrder.id == order_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def replace_observations(self, report_id: uuid.UUID, rows: list[LabObservation]) -> None:
        await self.session.execute(
            delete(LabObservation).where(LabObservation.report_id == report_id)
        )
        self.session.add_all(rows)

    async def observations(self, report_id: uuid.UUID) -> list[LabObservation]:
        return list(
            await self.session.scalars(
                select(LabObservation)
                .where(LabObservation.report_id == report_id)
                .order_by(LabObservation.seq)
            )
        )

    async def events(self, report_id: uuid.UUID) -> list[ReportEvent]:
        return list(
            await self.session.scalars(
                select(ReportEvent)
                .where(ReportEvent.report_id == report_id)
                .order_by(ReportEvent.at, ReportEvent.id)
            )
        )

    async def reports(
        self,
        *,
        mother_ids: list[uuid.UUID] | None,
        unmatched: bool = False,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[LabReport]:
        stmt = select(LabReport).order_by(LabReport.id).limit(limit)
        if unmatched:
            stmt = stmt.where(LabReport.mother_id.is_(None))
        elif mother_ids is not None:
            stmt = stmt.where(LabReport.mother_id.in_(mother_ids))
        if after is not None:
            stmt = stmt.where(LabReport.id > after)
        return list(await self.session.scalars(stmt))

    async def open_alert(self, report_id: uuid.UUID) -> CriticalAlert | None:
        return await self.session.scalar(
            select(CriticalAlert).where(
                CriticalAlert.report_id == report_id, CriticalAlert.acknowledged_at.is_(None)
            )
        )

    async def alert(self, alert_id: uuid.UUID, *, for_update: bool = False) -> CriticalAlert | None:
        stmt = select(CriticalAlert).where(CriticalAlert.id == alert_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def alerts(
        self, *, open_only: bool, mother_ids: list[uuid.UUID] | None
    ) -> list[CriticalAlert]:
        stmt = select(CriticalAlert).order_by(CriticalAlert.raised_at, CriticalAlert.id)
        if open_only:
            stmt = stmt.where(CriticalAlert.acknowledged_at.is_(None))
        if mother_ids is not None:
            stmt = stmt.where(CriticalAlert.mother_id.in_(mother_ids))
        return list(await self.session.scalars(stmt))

    async def ready_since(self, before: datetime) -> list[LabReport]:
        return list(
            await self.session.scalars(
                select(LabReport)
                .where(
                    LabReport.pickup_state == "ready",
                    LabReport.mother_id.is_not(None),
                    LabReport.ready_at <= before,
                    LabReport.reminders_sent < 2,
                )
                .with_for_update(skip_locked=True)
            )
        )

    async def overdue_alerts(self, now: datetime) -> list[CriticalAlert]:
        return list(
            await self.session.scalars(
                select(CriticalAlert)
                .where(
                    CriticalAlert.acknowledged_at.is_(None),
                    CriticalAlert.escalated_at.is_(None),
                    CriticalAlert.due_at <= now,
                )
                .with_for_update(skip_locked=True)
            )
        )
