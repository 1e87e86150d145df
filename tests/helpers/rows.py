"""What the database holds after a request: row counts and the outbox's topics."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.notifications.models import OutboxMessage


async def count(factory: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def topics(factory: async_sessionmaker[AsyncSession], prefix: str) -> list[str]:
    async with factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.topic)
            .where(OutboxMessage.topic.like(f"{prefix}%"))
            .order_by(OutboxMessage.id)
        )
        return list(rows)
