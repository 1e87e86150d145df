"""The queries behind the butler's phone. The version read is Core-only: it is the hot path."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments.models import AssignmentRole, CareAssignment
from app.assignments.repository import visible_mother_ids
from app.feed.models import FeedEvent, FeedState, Task
from app.mothers.models import Mother
from app.reports.domain import PickupState
from app.reports.models import CriticalAlert, LabReport
from app.reviews.models import ReportReview
from app.visits.domain import ACTIVE
from app.visits.models import Visit

STATE = FeedState.__table__
EVENTS = FeedEvent.__table__


class FeedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version(self, butler_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            select(STATE.c.version).where(STATE.c.butler_id == butler_id)
        )
        return int(value or 0)

    async def events_after(self, butler_id: uuid.UUID, after: int, limit: int) -> list[FeedEvent]:
        return list(
            await self.session.scalars(
                select(FeedEvent)
                .where(FeedEvent.butler_id == butler_id, FeedEvent.seq > after)
                .order_by(FeedEvent.seq)
                .limit(limit)
            )
        )

    async def oldest_seq(self, butler_id: uuid.UUID) -> int | None:
        value = await self.session.scalar(
            select(func.min(EVENTS.c.seq)).where(EVENTS.c.butler_id == butler_id)
        )
        return int(value) if value is not None else None

    async def visits_today(
        self, butler_id: uuid.UUID, today: date
    ) -> list[tuple[Visit, Mother, bool]]:
        rows = await self.session.execute(
            select(Visit, Mother, CareAssignment.id)
            .join(Mother, Mother.id == Visit.mother_id)
            .outerjoin(
                CareAssignment,
                and_(
                    CareAssignment.visit_id == Visit.id,
                    CareAssignment.role == AssignmentRole.COVER,
                    CareAssignment.ends_at.is_(None),
                ),
            )
            .where(
                Visit.accompanying_butler_id == butler_id,
                Visit.visit_date == today,
                Visit.status.in_(ACTIVE),
            )
            .order_by(Visit.scheduled_at)
        )
        return [(v, m, cover is not None) for v, m, cover in rows.all()]

    async def open_reports(
        self, butler_id: uuid.UUID, today: date
    ) -> list[tuple[LabReport, Mother]]:
        rows = await self.session.execute(
            select(LabReport, Mother)
            .join(Mother, Mother.id == LabReport.mother_id)
            .where(
                LabReport.mother_id.in_(visible_mother_ids(butler_id, today)),
                LabReport.pickup_state.in_((PickupState.READY, PickupState.PICKED_UP)),
            )
            .order_by(LabReport.ready_at, LabReport.id)
        )
        return [(r, m) for r, m in rows.all()]

    async def open_alerts(
        self, butler_id: uuid.UUID, today: date
    ) -> list[tuple[CriticalAlert, Mother]]:
        rows = await self.session.execute(
            select(CriticalAlert, Mother)
            .join(Mother, Mother.id == CriticalAlert.mother_id)
            .where(
                CriticalAlert.mother_id.in_(visible_mother_ids(butler_id, today)),
                CriticalAlert.acknowledged_at.is_(None),
                CriticalAlert.voided_at.is_(None),
                CriticalAlert.mother_contacted_at.is_(None),  # her part is to reach the mother
            )
            .order_by(CriticalAlert.due_at)
        )
        return [(a, m) for a, m in rows.all()]

    async def open_tasks(self, butler_id: uuid.UUID, today: date) -> list[tuple[Task, Mother]]:
        rows = await self.session.execute(
            select(Task, Mother)
            .join(Mother, Mother.id == Task.mother_id)
            .where(
                Task.butler_id == butler_id,
                Task.completed_at.is_(None),
                Task.mother_id.in_(visible_mother_ids(butler_id, today)),
            )
            .order_by(Task.due_at)
        )
        return [(t, m) for t, m in rows.all()]

    async def reviews_of_reports(
        self, report_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, ReportReview]:
        """The newest review of each report given to the mother it is attached to now (the
        current one, else its earlier version's), never a withdrawn one: a report detached
        from one mother and attached to another must not carry the first one's advice."""
        found: dict[uuid.UUID, ReportReview] = {}
        if report_ids:
            for review in await self.session.scalars(
                select(ReportReview)
                .join(LabReport, LabReport.id == ReportReview.report_id)
                .where(
                    ReportReview.report_id.in_(report_ids),
                    ReportReview.mother_id == LabReport.mother_id,
                    ReportReview.withdrawn_at.is_(None),
                )
                .order_by(ReportReview.reviewed_at, ReportReview.id)
            ):
                found[review.report_id] = review
        return found

    async def reviews_of_tasks(self, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, ReportReview]:
        """The review whose advice a task brings her (reviewed after delivery)."""
        if not task_ids:
            return {}
        rows = await self.session.scalars(
            select(ReportReview)
            .join(Task, Task.id == ReportReview.advice_task_id)
            .where(
                ReportReview.advice_task_id.in_(task_ids),
                ReportReview.mother_id == Task.mother_id,
                ReportReview.withdrawn_at.is_(None),
            )
        )
        return {r.advice_task_id: r for r in rows if r.advice_task_id is not None}
