"""Every query of rule firings and pregnancy flags."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clinical.models import PregnancyFlag, RuleFiring
from app.clinical.rules import LIVE_STATES, FiringState


class ClinicalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def firing(self, firing_id: uuid.UUID, *, for_update: bool = False) -> RuleFiring | None:
        stmt = select(RuleFiring).where(RuleFiring.id == firing_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def live_firings(self, pregnancy_id: uuid.UUID) -> list[RuleFiring]:
        """The firings that still stand (not dismissed, not withdrawn), oldest first."""
        stmt = (
            select(RuleFiring)
            .where(
                RuleFiring.pregnancy_id == pregnancy_id,
                RuleFiring.state.in_(sorted(LIVE_STATES)),
            )
            .order_by(RuleFiring.fired_at, RuleFiring.id)
        )
        return list(await self.session.scalars(stmt))

    async def dismissed_firings(
        self, pregnancy_id: uuid.UUID, rule_ids: list[str]
    ) -> list[RuleFiring]:
        """What a clinician dismissed for these rules on this pregnancy, oldest first."""
        stmt = (
            select(RuleFiring)
            .where(
                RuleFiring.pregnancy_id == pregnancy_id,
                RuleFiring.rule_id.in_(rule_ids),
                RuleFiring.state == FiringState.DISMISSED,
            )
            .order_by(RuleFiring.fired_at, RuleFiring.id)
        )
        return list(await self.session.scalars(stmt))

    async def firings_of_mother(self, mother_id: uuid.UUID) -> list[RuleFiring]:
        stmt = (
            select(RuleFiring)
            .where(RuleFiring.mother_id == mother_id)
            .order_by(RuleFiring.fired_at, RuleFiring.id)
        )
        return list(await self.session.scalars(stmt))

    async def open_flag(self, pregnancy_id: uuid.UUID, code: str) -> PregnancyFlag | None:
        stmt = select(PregnancyFlag).where(
            PregnancyFlag.pregnancy_id == pregnancy_id,
            PregnancyFlag.code == code,
            PregnancyFlag.cleared_at.is_(None),
        )
        return await self.session.scalar(stmt)

    async def open_flags(self, pregnancy_id: uuid.UUID) -> list[PregnancyFlag]:
        stmt = (
            select(PregnancyFlag)
            .where(PregnancyFlag.pregnancy_id == pregnancy_id, PregnancyFlag.cleared_at.is_(None))
            .order_by(PregnancyFlag.raised_at, PregnancyFlag.code)
        )
        return list(await self.session.scalars(stmt))

    async def flags_of_firing(self, firing_id: uuid.UUID) -> list[PregnancyFlag]:
        stmt = select(PregnancyFlag).where(
            PregnancyFlag.firing_id == firing_id, PregnancyFlag.cleared_at.is_(None)
        )
        return list(await self.session.scalars(stmt))

    async def flags_of_pregnancies(self, pregnancy_ids: list[uuid.UUID]) -> list[PregnancyFlag]:
        stmt = (
            select(PregnancyFlag)
            .where(PregnancyFlag.pregnancy_id.in_(pregnancy_ids))
            .order_by(PregnancyFlag.raised_at, PregnancyFlag.code)
        )
        return list(await self.session.scalars(stmt))
