"""A savepoint's release is no commit, and its rollback is not the transaction's.

SQLAlchemy runs before/after_commit at a savepoint's release and after_rollback at its rollback;
the commit hooks act only on the transaction's own (app/core/hooks.py). Here for the queue
moves (call-next claims its entry in a savepoint) and the token cache's revocations.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.repository import AuthRepository
from app.auth.service import authenticate_bearer
from app.core.clock import FrozenClock
from app.core.errors import AppError
from app.queues.changes import mark_changed, station_wake_key
from app.queues.models import Station
from tests.helpers.api import Api


async def stations(session: AsyncSession) -> list[Station]:
    found = list(await session.scalars(select(Station).order_by(Station.code).limit(2)))
    assert len(found) == 2, "the reference stations"
    return found


async def stamps(factory: async_sessionmaker[AsyncSession], *ids: uuid.UUID) -> list[Any]:
    async with factory() as session:
        rows = await session.execute(select(Station.id, Station.queue_changed_at))
        at = {station_id: changed_at for station_id, changed_at in rows}
        return [at[i] for i in ids]


def published(app: Any) -> list[set[uuid.UUID]]:
    told: list[set[uuid.UUID]] = []
    real = app.state.notifier.publish

    def publish(ids: Any) -> None:
        told.append(set(ids))
        real(ids)

    app.state.notifier.publish = publish
    return told


async def test_a_savepoint_rolled_back_keeps_the_queue_moves_noted_before_it(
    app: Any, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    told = published(app)
    now = clock.now()
    async with session_factory() as session:
        one, two = await stations(session)
        ids = (one.id, two.id)
        before = await stamps(session_factory, *ids)
        mark_changed(session, one, now)
        with contextlib.suppress(RuntimeError):  # as call-next's claim on an IntegrityError
            async with session.begin_nested():
                raise RuntimeError("another station called her first")
        async with session.begin_nested():  # and one released
            mark_changed(session, two, now)
        assert told == [], "told at a savepoint's release, before anything committed"
        await session.commit()
    assert await stamps(session_factory, *ids) == [now, now] != before
    assert told == [{station_wake_key(one.id), station_wake_key(two.id)}]


async def test_a_rollback_with_a_savepoint_open_stamps_nothing(
    app: Any, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    told = published(app)
    async with session_factory() as session:
        one, two = await stations(session)
        ids = (one.id, two.id)
        before = await stamps(session_factory, *ids)
        mark_changed(session, one, clock.now())
        await session.begin_nested()
        mark_changed(session, two, clock.now())
        await session.rollback()
        await session.commit()
    assert await stamps(session_factory, *ids) == before
    assert told == []


async def verify(factory: async_sessionmaker[AsyncSession], app: Any, token: str, now: Any) -> Any:
    """A request verifying the token (another session, as a concurrent request would)."""
    async with factory() as session:
        return await authenticate_bearer(
            AuthRepository(session), secret=token, now=now, cache=app.state.token_cache
        )


@pytest.mark.parametrize("savepoint", ["released", "rolled back"])
async def test_a_revocation_is_forgotten_by_the_cache_at_the_real_commit(
    api: Api,
    app: Any,
    session_factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
    savepoint: str,
) -> None:
    now = clock.now()
    token = api.staff.tokens["doctor"]
    user = api.staff.users["doctor"].id
    assert (await verify(session_factory, app, token, now)).id == user  # cached
    async with session_factory() as session:
        assert await AuthRepository(session).revoke_tokens(user_id=user, at=now, reason="test")
        with contextlib.suppress(RuntimeError):
            async with session.begin_nested():
                if savepoint == "rolled back":
                    raise RuntimeError("a later step failed")
        # Not committed yet: a request verifying now still finds the token valid and caches it.
        assert (await verify(session_factory, app, token, now)).id == user
        await session.commit()
    with pytest.raises(AppError):
        await verify(session_factory, app, token, now)
