"""Every query of the worklist."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.mothers.models import Mother
from app.reports.models import CriticalAlert
from app.worklist.models import WorklistItem


class WorklistRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version(self, audiences: Sequence[str]) -> str:
        """Changes whenever an item is added or acknowledged: newest id, total, acknowledged.
        Items are never deleted (but with their mother), so the counts only grow."""
        row = (
            await self.session.execute(
                select(
                    func.max(cast(WorklistItem.id, String)),  # uuid7: time order
                    func.count(WorklistItem.id),
                    func.count(WorklistItem.acknowledged_at),
                ).where(WorklistItem.audience.in_(audiences))
            )
        ).one()
        newest, total, acknowledged = row
        newest_id = str(newest).replace("-", "")[-12:] if newest else "0"
        return f"{newest_id}.{total}.{acknowledged}"

    async def items(
        self, audiences: Sequence[str], *, open_only: bool, limit: int
    ) -> list[WorklistItem]:
        stmt = (
            select(WorklistItem)
            .where(WorklistItem.audience.in_(audiences))
            .order_by(WorklistItem.priority, WorklistItem.created_at, WorklistItem.id)
            .limit(limit)
        )
        if open_only:
            stmt = stmt.where(WorklistItem.acknowledged_at.is_(None))
        return list(await self.session.scalars(stmt))

    async def mothers_of(self, items: Sequence[WorklistItem]) -> dict[uuid.UUID, tuple[str, str]]:
        """The MRN and name of each mother the items are about, in one query."""
        ids = {i.mother_id for i in items if i.mother_id is not None}
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Mother.id, Mother.mrn, Mother.name).where(Mother.id.in_(ids))
        )
        return {row.id: (row.mrn, row.name) for row in rows}

    async def item(self, item_id: uuid.UUID, *, for_update: bool = False) -> WorklistItem | None:
        stmt = select(WorklistItem).where(WorklistItem.id == item_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def open_item(
        self,
        *,
        audience: str,
        kind: str,
        report_id: uuid.UUID | None,
        alert_id: uuid.UUID | None,
        visit_id: uuid.UUID | None,
        message_id: uuid.UUID | None,
        mother_id: uuid.UUID | None = None,
        task_id: uuid.UUID | None = None,
    ) -> WorklistItem | None:
        """The open item about the same thing, if any: a resend does not list it twice."""
        stmt = select(WorklistItem).where(
            WorklistItem.audience == audience,
            WorklistItem.kind == kind,
            WorklistItem.acknowledged_at.is_(None),
        )
        for column, value in (
            (WorklistItem.report_id, report_id),
            (WorklistItem.alert_id, alert_id),
            (WorklistItem.visit_id, visit_id),
            (WorklistItem.message_id, message_id),
            (WorklistItem.mother_id, mother_id),
            (WorklistItem.task_id, task_id),
        ):
            stmt = stmt.where(column.is_(None) if value is None else column == value)
        return await self.session.scalar(stmt.limit(1))

    async def open_items_about(
        self,
        *,
        report_id: uuid.UUID | None = None,
        alert_id: uuid.UUID | None = None,
        kinds: Sequence[str] = (),
    ) -> list[WorklistItem]:
        stmt = select(WorklistItem).where(WorklistItem.acknowledged_at.is_(None))
        if report_id is not None:
            stmt = stmt.where(WorklistItem.report_id == report_id)
        if alert_id is not None:
            stmt = stmt.where(WorklistItem.alert_id == alert_id)
        if kinds:
            stmt = stmt.where(WorklistItem.kind.in_(kinds))
        return list(await self.session.scalars(stmt.with_for_update()))

    async def open_items_for(
        self, mother_id: uuid.UUID, audiences: Sequence[str], kinds: Sequence[str] = ()
    ) -> list[WorklistItem]:
        """What an audience still has open about one mother (of those kinds, if given)."""
        stmt = select(WorklistItem).where(
            WorklistItem.acknowledged_at.is_(None),
            WorklistItem.mother_id == mother_id,
            WorklistItem.audience.in_(audiences),
        )
        if kinds:
            stmt = stmt.where(WorklistItem.kind.in_(kinds))
        return list(await self.session.scalars(stmt.with_for_update()))

    async def raised_since(
        self, *, mother_id: uuid.UUID, kind: str, since: datetime
    ) -> list[WorklistItem]:
        """The items of a kind about her raised since a moment, open or acknowledged."""
        return list(
            await self.session.scalars(
                select(WorklistItem).where(
                    WorklistItem.mother_id == mother_id,
                    WorklistItem.kind == kind,
                    WorklistItem.created_at >= since,
                )
            )
        )

    async def alert_is_open(self, alert_id: uuid.UUID | None) -> bool:
        """Whether the critical value an item pages about still stands."""
        if alert_id is None:
            return False
        found = await self.session.scalar(
            select(CriticalAlert.id).where(
                CriticalAlert.id == alert_id,
                CriticalAlert.acknowledged_at.is_(None),
                CriticalAlert.voided_at.is_(None),
            )
        )
        return found is not None
