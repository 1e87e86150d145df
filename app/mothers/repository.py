"""Every query of the mother aggregate (mother, her pregnancies, risk-grade history)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments.repository import visible_mother_ids
from app.mothers.domain import RiskGrade
from app.mothers.models import DatingChange, Mother, Pregnancy, PregnancyStatus, RiskGradeChange
from app.worklist.models import WorklistItem


@dataclass(frozen=True, slots=True)
class MotherFilter:
    mrn: str | None = None
    name: str | None = None
    phone: str | None = None
    risk_grades: tuple[RiskGrade, ...] = ()
    edd_from: date | None = None
    edd_to: date | None = None
    primary_butler_id: uuid.UUID | None = None
    visible_to_butler: uuid.UUID | None = None  # only her assigned mothers (as of visible_on)
    visible_on: date | None = None


class MotherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, mother_id: uuid.UUID, *, for_update: bool = False) -> Mother | None:
        stmt = select(Mother).where(Mother.id == mother_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def active_pregnancy(self, mother_id: uuid.UUID) -> Pregnancy | None:
        return await self.session.scalar(
            select(Pregnancy).where(
                Pregnancy.mother_id == mother_id, Pregnancy.status == PregnancyStatus.ACTIVE
            )
        )

    async def pregnancy(self, pregnancy_id: uuid.UUID) -> Pregnancy | None:
        return await self.session.scalar(select(Pregnancy).where(Pregnancy.id == pregnancy_id))

    async def open_worklist_items(
        self, mother_id: uuid.UUID, kinds: tuple[str, ...]
    ) -> list[WorklistItem]:
        """Her open risk items (the re-assessment prompts a doctor's decision closes)."""
        return list(
            await self.session.scalars(
                select(WorklistItem)
                .where(
                    WorklistItem.mother_id == mother_id,
                    WorklistItem.kind.in_(kinds),
                    WorklistItem.acknowledged_at.is_(None),
                )
                .order_by(WorklistItem.created_at, WorklistItem.id)
                .with_for_update()
            )
        )

    async def mrn_taken(self, mrn: str) -> bool:
        return await self.session.scalar(select(Mother.id).where(Mother.mrn == mrn)) is not None

    async def national_id_owner(self, national_id: str) -> uuid.UUID | None:
        return await self.session.scalar(select(Mother.id).where(Mother.national_id == national_id))

    def _search(self, f: MotherFilter) -> Select[Mother, Pregnancy]:
        stmt = select(Mother, Pregnancy).outerjoin(
            Pregnancy,
            (Pregnancy.mother_id == Mother.id) & (Pregnancy.status == PregnancyStatus.ACTIVE),
        )
        if f.mrn:
            stmt = stmt.where(Mother.mrn == f.mrn)
        if f.name:
            escaped = f.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Mother.name.ilike(f"%{escaped}%", escape="\\"))
        if f.phone:
            stmt = stmt.where(Mother.phone == f.phone)
        if f.risk_grades:  # 'purple' (beside the colour) is the flag
            colours = [g for g in f.risk_grades if g is not RiskGrade.PURPLE]
            wanted = [Pregnancy.risk_grade.in_(colours)] if colours else []
            if RiskGrade.PURPLE in f.risk_grades:
                wanted.append(Pregnancy.purple.is_(True))
            stmt = stmt.where(or_(*wanted))
        if f.edd_from:
            stmt = stmt.where(Pregnancy.edd_date >= f.edd_from)
        if f.edd_to:
            stmt = stmt.where(Pregnancy.edd_date <= f.edd_to)
        if f.primary_butler_id:
            stmt = stmt.where(Mother.primary_butler_id == f.primary_butler_id)
        if f.visible_to_butler is not None:
            assert f.visible_on is not None
            stmt = stmt.where(Mother.id.in_(visible_mother_ids(f.visible_to_butler, f.visible_on)))
        return stmt

    async def search(
        self, f: MotherFilter, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[Mother, Pregnancy | None]]:
        stmt = self._search(f).order_by(Mother.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Mother.id > after)
        rows = (await self.session.execute(stmt)).all()
        return [(mother, pregnancy) for mother, pregnancy in rows]

    async def dating_history(self, pregnancy_id: uuid.UUID) -> list[DatingChange]:
        return list(
            await self.session.scalars(
                select(DatingChange)
                .where(DatingChange.pregnancy_id == pregnancy_id)
                .order_by(DatingChange.changed_at, DatingChange.id)
            )
        )

    async def by_mrn(self, mrn: str) -> Mother | None:
        return await self.session.scalar(select(Mother).where(Mother.mrn == mrn))

    async def risk_history(self, pregnancy_id: uuid.UUID) -> list[RiskGradeChange]:
        return list(
            await self.session.scalars(
                select(RiskGradeChange)
                .where(RiskGradeChange.pregnancy_id == pregnancy_id)
                .order_by(RiskGradeChange.changed_at, RiskGradeChange.id)
            )
        )
