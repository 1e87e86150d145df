"""Every query of the butler aggregate (butler and roster)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.butlers.models import Butler, RosterShift


class ButlerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, butler_id: uuid.UUID, *, for_update: bool = False) -> Butler | None:
        if for_update:
            return await self.session.scalar(
                select(Butler).where(Butler.id == butler_id).with_for_update()
            )
        return await self.session.get(Butler, butler_id)

    async def by_user(self, user_id: uuid.UUID) -> Butler | None:
        return await self.session.scalar(select(Butler).where(Butler.user_id == user_id))

    async def list_page(
        self, *, active: bool | None, after: uuid.UUID | None, limit: int
    ) -> list[Butler]:
        stmt = select(Butler).order_by(Butler.id).limit(limit)
        if active is not None:
            stmt = stmt.where(Butler.is_active == active)
        if after is not None:
            stmt = stmt.where(Butler.id > after)
        return list(await self.session.scalars(stmt))

    async def shifts(self, butler_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[RosterShift]]:
        out: dict[uuid.UUID, list[RosterShift]] = {b: [] for b in butler_ids}
        if not butler_ids:
            return out
        rows = await self.session.scalars(
            select(RosterShift)
            .where(RosterShift.butler_id.in_(butler_ids))
            .order_by(RosterShift.weekday, RosterShift.starts_at)
        )
        for shift in rows:
            out[shift.butler_id].append(shift)
        return out

    async def replace_shifts(self, butler_id: uuid.UUID, shifts: list[RosterShift]) -> None:
        await self.session.execute(delete(RosterShift).where(RosterShift.butler_id == butler_id))
        self.session.add_all(shifts)
        await self.session.flush()
