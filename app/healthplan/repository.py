"""Every query of the health plans, their versions and the nutrition assessments."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.models import Task
from app.healthplan.models import HealthPlan, HealthPlanVersion, NutritionAssessment
from app.queues.models import EntryState, QueueEntry

NUTRITION_STATION_TYPE = "nutrition"


class HealthPlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def plan_of(
        self, pregnancy_id: uuid.UUID, *, for_update: bool = False
    ) -> HealthPlan | None:
        query = select(HealthPlan).where(HealthPlan.pregnancy_id == pregnancy_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def lock(self, plan_id: uuid.UUID) -> None:
        """Hold her plan's row until the transaction ends (PostgreSQL): one writer at a time."""
        await self.session.scalar(
            select(HealthPlan.id).where(HealthPlan.id == plan_id).with_for_update()
        )

    async def version(self, plan_id: uuid.UUID, number: int) -> HealthPlanVersion | None:
        return await self.session.scalar(
            select(HealthPlanVersion).where(
                HealthPlanVersion.plan_id == plan_id, HealthPlanVersion.version == number
            )
        )

    async def versions(self, plan_id: uuid.UUID) -> list[HealthPlanVersion]:
        """Every version, newest first."""
        return list(
            await self.session.scalars(
                select(HealthPlanVersion)
                .where(HealthPlanVersion.plan_id == plan_id)
                .order_by(HealthPlanVersion.version.desc())
            )
        )

    async def assessments(self, pregnancy_id: uuid.UUID) -> list[NutritionAssessment]:
        """Her nutrition assessments, newest first."""
        return list(
            await self.session.scalars(
                select(NutritionAssessment)
                .where(NutritionAssessment.pregnancy_id == pregnancy_id)
                .order_by(NutritionAssessment.assessed_at.desc(), NutritionAssessment.id)
            )
        )

    async def nutrition_entry_under_way(self, mother_id: uuid.UUID) -> QueueEntry | None:
        """Her place at the nutrition station while she is called or being seen, locked."""
        return await self.session.scalar(
            select(QueueEntry)
            .where(
                QueueEntry.mother_id == mother_id,
                QueueEntry.station_type == NUTRITION_STATION_TYPE,
                QueueEntry.state.in_((EntryState.CALLED, EntryState.IN_SERVICE)),
            )
            .order_by(QueueEntry.entered_at.desc())
            .limit(1)
            .with_for_update()
        )

    async def open_task_titles(self, mother_id: uuid.UUID) -> set[str]:
        """The titles of her butler's open tasks (tasks carry no kind: the title is what a
        plan follow-up's task is matched on, so the same follow-up is not given twice)."""
        return set(
            await self.session.scalars(
                select(Task.title).where(Task.mother_id == mother_id, Task.completed_at.is_(None))
            )
        )
