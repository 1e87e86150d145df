"""The service purges Idempotency-Key copies on its own, every idempotency_purge_minutes: the
stored answers (about her) are kept only as long as a retry may come."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.idempotency import IdempotencyRecord, IdempotencyStatus
from app.core.settings import Settings
from app.notifications import dispatcher
from tests.helpers.api import Api


class NoSms:
    async def send(self, *, to: str, text: str, key: str) -> None:  # pragma: no cover
        raise AssertionError("nothing to text here")


async def keys(factory: async_sessionmaker[AsyncSession]) -> set[str]:
    async with factory() as session:
        return set(await session.scalars(select(IdempotencyRecord.key)))


async def wait_for(
    condition: Callable[[set[str]], bool], factory: async_sessionmaker[AsyncSession]
) -> set[str]:
    for _ in range(100):
        left = await keys(factory)
        if condition(left):
            return left
        await asyncio.sleep(0.05)
    return await keys(factory)


async def test_the_dispatcher_purges_expired_copies_on_its_schedule(
    api: Api,
    clock: FrozenClock,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    now = clock.now()
    async with session_factory() as session:
        for key, expires in (
            ("old", now - timedelta(minutes=1)),
            ("live", now + timedelta(minutes=10)),
        ):
            session.add(
                IdempotencyRecord(
                    scope="user:x",
                    key=key,
                    fingerprint="f" * 64,
                    status=IdempotencyStatus.COMPLETED,
                    response_status=201,
                    created_at=now - timedelta(hours=47),
                    locked_until=now,
                    expires_at=expires,
                )
            )
        await session.commit()
    fast = settings.model_copy(
        update={"dispatch_interval_seconds": 0.05, "idempotency_purge_minutes": 60}
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(
        dispatcher.run(session_factory, fast, now=clock.now, sms=NoSms(), stop=stop)
    )
    try:
        assert await wait_for(lambda k: "old" not in k, session_factory) == {"live"}
        clock.advance(timedelta(minutes=20))  # "live" has expired too, but the next purge...
        await asyncio.sleep(0.3)
        assert await keys(session_factory) == {"live"}
        clock.advance(timedelta(minutes=41))  # ...is 60 minutes after the first
        assert await wait_for(lambda k: not k, session_factory) == set()
    finally:
        stop.set()
        await worker
