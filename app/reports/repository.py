"""Every query of inbound messages, reports, observations and alerts."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.mothers.models import Mother
from app.reports import reconciliation
from app.reports.domain import PickupState
from app.reports.models import (
    CriticalAlert,
    InboundMessage,
    LabAttachment,
    LabObservation,
    LabReport,
    ReportEvent,
)
from app.visits.models import ExamOrder, Visit
from app.worklist.models import WorklistItem


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def message(self, message_id: uuid.UUID) -> InboundMessage | None:
        return await self.session.get(InboundMessage, message_id)

    async def seen(
        self,
        *,
        sender_id: uuid.UUID,
        channel: str,
        key: str | None,
        webhook_id: str | None,
        content_hash: str,
    ) -> tuple[InboundMessage | None, InboundMessage | None]:
        """(the latest take of the same message, the latest other message under the same id).

        The same message is the same MSH-10 with the same content from this sender, over
        HTTP or MLLP, or the same webhook-id with the same content on the same endpoint;
        replays are included, so that a resend after a failure sees how the retry went.
        """
        by_key = (
            select(InboundMessage).where(
                InboundMessage.sender_id == sender_id,
                InboundMessage.message_key == key,
                InboundMessage.channel.in_(("hl7v2", "mllp")),
            )
            if key
            else None
        )
        by_webhook = (
            select(InboundMessage).where(
                InboundMessage.sender_id == sender_id,
                InboundMessage.channel == channel,
                InboundMessage.webhook_id == webhook_id,
            )
            if webhook_id
            else None
        )
        lookups = [stmt for stmt in (by_key, by_webhook) if stmt is not None]
        for stmt in lookups:
            same = await self.session.scalar(
                stmt.where(InboundMessage.content_hash == content_hash)
                .order_by(InboundMessage.id.desc())
                .limit(1)
            )
            if same is not None:
                return same, None
        for stmt in lookups:
            other = await self.session.scalar(
                stmt.where(
                    or_(
                        InboundMessage.content_hash.is_(None),
                        InboundMessage.content_hash != content_hash,
                    ),
                    InboundMessage.replay_of.is_(None),
                )
                .order_by(InboundMessage.id.desc())
                .limit(1)
            )
            if other is not None:
                return None, other
        return None, None

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

    async def replace_observations(
        self, report_id: uuid.UUID, rows: list[LabObservation], files: list[LabAttachment]
    ) -> None:
        await self.session.execute(
            delete(LabObservation).where(LabObservation.report_id == report_id)
        )
        await self.session.execute(
            delete(LabAttachment).where(LabAttachment.report_id == report_id)
        )
        self.session.add_all(rows)
        self.session.add_all(files)

    async def attachments(self, report_id: uuid.UUID) -> list[LabAttachment]:
        """Without their bytes: the list says what there is, the download fetches one."""
        return list(
            await self.session.scalars(
                select(LabAttachment)
                .options(defer(LabAttachment.data))
                .where(LabAttachment.report_id == report_id)
                .order_by(LabAttachment.observation_seq, LabAttachment.id)
            )
        )

    async def attachment(
        self, report_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> LabAttachment | None:
        return await self.session.scalar(
            select(LabAttachment).where(
                LabAttachment.id == attachment_id, LabAttachment.report_id == report_id
            )
        )

    async def observation_counts(self, report_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not report_ids:
            return {}
        rows = await self.session.execute(
            select(LabObservation.report_id, func.count())
            .where(LabObservation.report_id.in_(report_ids))
            .group_by(LabObservation.report_id)
        )
        return {r: int(n) for r, n in rows.all()}

    async def held(self, *, limit: int) -> list[LabReport]:
        """Reports waiting for the desk: critical first, then oldest first."""
        return list(
            await self.session.scalars(
                select(LabReport)
                .where(LabReport.mother_id.is_(None))
                .order_by(LabReport.critical.desc(), LabReport.received_at, LabReport.id)
                .limit(limit)
            )
        )

    async def mothers_like(
        self, *, mrn: str | None, name: str | None, birth_date: date | None
    ) -> list[Mother]:
        """Mothers the message may mean: her MRN, or her name and date of birth."""
        found: dict[uuid.UUID, Mother] = {}
        if mrn:
            for m in await self.session.scalars(select(Mother).where(Mother.mrn == mrn)):
                found[m.id] = m
        if birth_date:  # the same birth date, then the name compared as people write it
            same_day = await self.session.scalars(
                select(Mother).where(Mother.date_of_birth == birth_date).limit(200)
            )
            for m in same_day:
                if name and reconciliation.same_name(name, m.name):
                    found.setdefault(m.id, m)
        return list(found.values())

    async def open_orders(self, mother_ids: list[uuid.UUID]) -> list[tuple[ExamOrder, Visit]]:
        """Her exam orders without a report yet, newest visit first."""
        if not mother_ids:
            return []
        reported = select(LabReport.exam_order_id).where(LabReport.exam_order_id.is_not(None))
        rows = await self.session.execute(
            select(ExamOrder, Visit)
            .join(Visit, Visit.id == ExamOrder.visit_id)
            .where(Visit.mother_id.in_(mother_ids), ExamOrder.id.not_in(reported))
            .order_by(Visit.visit_date.desc(), ExamOrder.order_number)
            .limit(50)
        )
        return [(o, v) for o, v in rows.all()]

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

    async def open_alert(
        self, report_id: uuid.UUID, *, for_update: bool = False
    ) -> CriticalAlert | None:
        """The report's alert that still stands (not closed by a doctor, not voided)."""
        stmt = select(CriticalAlert).where(
            CriticalAlert.report_id == report_id,
            CriticalAlert.acknowledged_at.is_(None),
            CriticalAlert.voided_at.is_(None),
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def open_measurement_alert(self, measurement_id: uuid.UUID) -> CriticalAlert | None:
        """The reading's alert that still stands (a severe blood pressure, not closed)."""
        stmt = select(CriticalAlert).where(
            CriticalAlert.measurement_id == measurement_id,
            CriticalAlert.acknowledged_at.is_(None),
            CriticalAlert.voided_at.is_(None),
        )
        return await self.session.scalar(stmt)

    async def unvoided_alerts(
        self, report_id: uuid.UUID, *, mother_id: uuid.UUID | None = None
    ) -> list[CriticalAlert]:
        """The report's alerts not voided yet, open or closed (a closure for the wrong
        patient is voided too), optionally only those raised for one mother. Locked."""
        stmt = (
            select(CriticalAlert)
            .where(CriticalAlert.report_id == report_id, CriticalAlert.voided_at.is_(None))
            .order_by(CriticalAlert.raised_at, CriticalAlert.id)
            .with_for_update()
        )
        if mother_id is not None:
            stmt = stmt.where(CriticalAlert.mother_id == mother_id)
        return list(await self.session.scalars(stmt))

    async def open_conflict(self, report_id: uuid.UUID) -> LabReport | None:
        """A held update of this report that names another patient, not yet resolved: held
        (no mother) and its identity-conflict item still open on the desk's worklist (the
        desk resolves it by attaching the update, or by acknowledging its item saying why)."""
        return await self.session.scalar(
            select(LabReport)
            .join(WorklistItem, WorklistItem.report_id == LabReport.id)
            .where(
                LabReport.conflict_of == report_id,
                LabReport.mother_id.is_(None),
                WorklistItem.kind == "report.identity_conflict",
                WorklistItem.audience == "front_desk",
                WorklistItem.acknowledged_at.is_(None),
            )
            .limit(1)
        )

    async def alert(self, alert_id: uuid.UUID, *, for_update: bool = False) -> CriticalAlert | None:
        stmt = select(CriticalAlert).where(CriticalAlert.id == alert_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def alerts(
        self,
        *,
        open_only: bool,
        mother_ids: list[uuid.UUID] | None,
        raised_from: datetime | None = None,
        raised_before: datetime | None = None,
    ) -> list[CriticalAlert]:
        """The register: oldest first; open ones (not closed, not voided) when asked."""
        stmt = select(CriticalAlert).order_by(CriticalAlert.raised_at, CriticalAlert.id)
        if open_only:
            stmt = stmt.where(
                CriticalAlert.acknowledged_at.is_(None), CriticalAlert.voided_at.is_(None)
            )
        if mother_ids is not None:
            stmt = stmt.where(CriticalAlert.mother_id.in_(mother_ids))
        if raised_from is not None:
            stmt = stmt.where(CriticalAlert.raised_at >= raised_from)
        if raised_before is not None:
            stmt = stmt.where(CriticalAlert.raised_at < raised_before)
        return list(await self.session.scalars(stmt))

    async def ready_since(self, before: datetime) -> list[LabReport]:
        return list(
            await self.session.scalars(
                select(LabReport)
                .where(
                    LabReport.pickup_state == PickupState.READY,
                    LabReport.mother_id.is_not(None),
                    LabReport.ready_at <= before,
                    LabReport.reminders_sent < 2,
                )
                .with_for_update(skip_locked=True)
            )
        )

    async def overdue_alerts(self, now: datetime, *, below_tier: int) -> list[CriticalAlert]:
        """Open alerts whose tier's time has run out and that have a tier above them."""
        return list(
            await self.session.scalars(
                select(CriticalAlert)
                .where(
                    CriticalAlert.acknowledged_at.is_(None),
                    CriticalAlert.voided_at.is_(None),
                    CriticalAlert.due_at <= now,
                    CriticalAlert.level < below_tier,
                )
                .order_by(CriticalAlert.due_at, CriticalAlert.id)
                .with_for_update(skip_locked=True)
            )
        )
