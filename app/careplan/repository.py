"""Every query the care plan makes: what was recorded about her plan and what happened to it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.careplan.models import CareIndication, ExamDecline, OutsideResult, ScreeningChoice
from app.mothers.models import Pregnancy, PregnancyStatus
from app.reports.domain import READY
from app.reports.models import LabObservation, LabReport
from app.visits.models import ExamOrder, Visit
from app.worklist.models import WorklistItem

TWINS_INDICATION = "multiple_pregnancy"  # the care plan's indication a doctor records


@dataclass(frozen=True, slots=True)
class OrderRow:
    exam_code: str
    order_status: str
    visit_status: str
    visit_date: date
    arrived: bool
    resulted: bool  # a final (or later) report is attached to this order


class CarePlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def orders(self, pregnancy_id: uuid.UUID) -> list[OrderRow]:
        resulted = (
            select(LabReport.id)
            .where(
                LabReport.exam_order_id == ExamOrder.id,
                LabReport.status.in_(sorted(READY)),
                LabReport.mother_id.is_not(None),
                LabReport.conflict_of.is_(None),
            )
            .exists()
        )
        rows = await self.session.execute(
            select(
                ExamOrder.exam_code,
                ExamOrder.status,
                Visit.status,
                Visit.visit_date,
                Visit.arrived_at.is_not(None),
                resulted,
            )
            .join(Visit, Visit.id == ExamOrder.visit_id)
            .where(ExamOrder.pregnancy_id == pregnancy_id)
        )
        return [
            OrderRow(code, status, str(visit_status), day, bool(arrived), bool(res))
            for code, status, visit_status, day, arrived, res in rows.all()
        ]

    async def first_arrival(self, pregnancy_id: uuid.UUID) -> date | None:
        return await self.session.scalar(
            select(Visit.visit_date)
            .where(Visit.pregnancy_id == pregnancy_id, Visit.arrived_at.is_not(None))
            .order_by(Visit.visit_date)
            .limit(1)
        )

    async def declines(self, pregnancy_id: uuid.UUID) -> list[ExamDecline]:
        return list(
            await self.session.scalars(
                select(ExamDecline)
                .where(ExamDecline.pregnancy_id == pregnancy_id)
                .order_by(ExamDecline.recorded_at)
            )
        )

    async def outside_results(self, pregnancy_id: uuid.UUID) -> list[OutsideResult]:
        return list(
            await self.session.scalars(
                select(OutsideResult)
                .where(OutsideResult.pregnancy_id == pregnancy_id)
                .order_by(OutsideResult.result_date)
            )
        )

    async def current_choices(self, pregnancy_id: uuid.UUID) -> list[ScreeningChoice]:
        return list(
            await self.session.scalars(
                select(ScreeningChoice).where(
                    ScreeningChoice.pregnancy_id == pregnancy_id,
                    ScreeningChoice.superseded_at.is_(None),
                )
            )
        )

    async def current_choice(
        self, pregnancy_id: uuid.UUID, choice_code: str
    ) -> ScreeningChoice | None:
        return await self.session.scalar(
            select(ScreeningChoice)
            .where(
                ScreeningChoice.pregnancy_id == pregnancy_id,
                ScreeningChoice.choice_code == choice_code,
                ScreeningChoice.superseded_at.is_(None),
            )
            .with_for_update()
        )

    async def indications(self, pregnancy_id: uuid.UUID) -> list[CareIndication]:
        """Every indication row, oldest first: the last row of a code is its state."""
        return list(
            await self.session.scalars(
                select(CareIndication)
                .where(CareIndication.pregnancy_id == pregnancy_id)
                .order_by(CareIndication.recorded_at, CareIndication.id)
            )
        )

    async def twins(self, pregnancy_id: uuid.UUID) -> bool:
        """A doctor recorded a multiple pregnancy (the indication's last row is its state)."""
        present = False
        for row in await self.indications(pregnancy_id):
            if row.code == TWINS_INDICATION:
                present = row.present
        return present

    async def observations(
        self, mother_id: uuid.UUID, codes: set[str]
    ) -> list[tuple[LabObservation, LabReport]]:
        """Her resulted observations of these codes, newest first."""
        if not codes:
            return []
        rows = await self.session.execute(
            select(LabObservation, LabReport)
            .join(LabReport, LabReport.id == LabObservation.report_id)
            .where(
                LabReport.mother_id == mother_id,
                LabReport.conflict_of.is_(None),
                LabReport.status.in_(sorted(READY)),
                LabObservation.code.in_(codes),
            )
            .order_by(LabReport.effective_at.desc().nulls_last(), LabReport.updated_at.desc())
        )
        return [(obs, report) for obs, report in rows.all()]

    async def late_pregnancies(self, edd_on_or_before: date) -> list[Pregnancy]:
        """Active pregnancies whose EDD is on or before the day (41+0 and later ones)."""
        return list(
            await self.session.scalars(
                select(Pregnancy).where(
                    Pregnancy.status == PregnancyStatus.ACTIVE,
                    Pregnancy.edd_date <= edd_on_or_before,
                )
            )
        )

    async def action_raised(self, pregnancy: Pregnancy, kind: str) -> bool:
        """An item of this kind was raised for her in this pregnancy (open or closed)."""
        found = await self.session.scalar(
            select(WorklistItem.id)
            .where(
                WorklistItem.mother_id == pregnancy.mother_id,
                WorklistItem.kind == kind,
                WorklistItem.created_at >= pregnancy.created_at,
            )
            .limit(1)
        )
        return found is not None
