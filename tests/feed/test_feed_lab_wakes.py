"""A lab result wakes her butler's phone at once: the held long-poll answers the new list.

The phone long-polls GET /v1/me/assignments?wait=25 with the ETag it has; when the lab posts a
signed result for one of her mothers, the held request must answer the report (not a 304 and
not only when the wait runs out, nor after the sweep), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.session_state import session_state
from app.feed.changes import touch
from app.feed.repository import STATE, FeedRepository
from tests.helpers.api import Api
from tests.helpers.feed import assignments
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.visits import checked_in_mother, order_number

DEADLINE_S = 2.0


def pickups(response: httpx.Response) -> list[dict[str, Any]]:
    return [i for i in response.json()["items"] if i["kind"] == "report_pickup"]


async def long_poll(api: Api, etag: str, wait: int = 25) -> httpx.Response:
    return await api.client.get(
        f"/v1/me/assignments?wait={wait}",
        headers={**api.auth("butler1"), "If-None-Match": etag},
    )


async def settled(task: asyncio.Task[Any], notifier: Any, butler: Any) -> None:
    """Until the long-poll is held (subscribed), or it has answered."""
    for _ in range(200):
        if task.done() or butler in notifier._events:
            return
        await asyncio.sleep(0.01)


async def test_a_lab_result_answers_the_held_long_poll_at_once(
    api: Api, app: Any, lab: Lab, clock: FrozenClock
) -> None:
    mother, visit = await checked_in_mother(api)
    before = await assignments(api)
    assert before.status_code == 200
    assert pickups(before) == []
    etag = before.headers["etag"]
    # The phone polls again with the ETag it has: a 304, as phones do between changes.
    assert (await assignments(api, **{"If-None-Match": etag})).status_code == 304

    butler = api.staff.butlers["butler1"].id
    poll = asyncio.create_task(long_poll(api, etag))
    await settled(poll, app.state.notifier, butler)
    assert not poll.done(), f"the long-poll answered before the result: {poll.result()}"

    body = oru(control_id="WAKE1", mrn=mother["mrn"], order=order_number(visit))
    code, _ = await lab.hl7(body)
    assert code == "AA"
    posted = time.monotonic()
    answer = await asyncio.wait_for(poll, timeout=30)
    took = time.monotonic() - posted
    assert answer.status_code == 200, f"{answer.status_code} after {took:.2f} s"
    assert took < DEADLINE_S, f"the held long-poll answered after {took:.2f} s"
    (pickup,) = pickups(answer)
    assert pickup["mother_id"] == mother["id"]
    assert answer.headers["etag"] != etag

    # Whatever the phone asks next shows the report: a plain read, a conditional one with the
    # old ETag, and a long-poll with the old ETag (none served from a stale cache).
    plain = await assignments(api)
    assert plain.headers["etag"] == answer.headers["etag"]
    assert pickups(plain) == [pickup]
    old = await assignments(api, **{"If-None-Match": etag})
    assert old.status_code == 200
    assert pickups(old) == [pickup]
    started = time.monotonic()
    again = await long_poll(api, etag)
    assert again.status_code == 200
    assert time.monotonic() - started < DEADLINE_S
    assert pickups(again) == [pickup]
    assert (await assignments(api, **{"If-None-Match": answer.headers["etag"]})).status_code == 304


async def test_a_long_poll_with_the_old_etag_after_a_lab_result_answers_at_once(
    api: Api, app: Any, lab: Lab, clock: FrozenClock
) -> None:
    """The phone was between polls when the result came: its next long-poll is not held."""
    mother, visit = await checked_in_mother(api)
    before = await assignments(api)
    etag = before.headers["etag"]
    assert (await assignments(api, **{"If-None-Match": etag})).status_code == 304  # remembered

    body = oru(control_id="WAKE2", mrn=mother["mrn"], order=order_number(visit))
    assert (await lab.hl7(body))[0] == "AA"
    started = time.monotonic()
    answer = await long_poll(api, etag)
    took = time.monotonic() - started
    assert answer.status_code == 200, f"{answer.status_code} after {took:.2f} s"
    assert took < DEADLINE_S
    assert [p["mother_id"] for p in pickups(answer)] == [mother["id"]]


# The commit hooks and savepoints --------------------------------------------------------
# SQLAlchemy runs the commit events at a savepoint's release and rollback too. The feed acts
# only on the transaction's own commit, and a savepoint's rollback drops only its own notes.


async def versions(factory: async_sessionmaker[AsyncSession], *butlers: uuid.UUID) -> list[int]:
    async with factory() as session:
        repo = FeedRepository(session)
        return [await repo.version(b) for b in butlers]


def butler_ids(api: Api) -> tuple[uuid.UUID, uuid.UUID]:
    return api.staff.butlers["butler1"].id, api.staff.butlers["butler2"].id


async def test_a_released_savepoint_bumps_and_wakes_only_at_the_commit(
    api: Api, app: Any, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    one, two = butler_ids(api)
    told: list[tuple[set[uuid.UUID], list[int]]] = []
    real = app.state.notifier.publish
    pool = app.state.engine

    def publish(ids: Any) -> None:
        ids = set(ids)
        # What another connection sees when the long-polls are woken (they read it then).
        with pool.sync_engine.connect() as conn:
            seen = [
                int(conn.scalar(select(STATE.c.version).where(STATE.c.butler_id == b)) or 0)
                for b in (one, two)
            ]
        told.append((ids, seen))
        real(ids)

    app.state.notifier.publish = publish
    async with session_factory() as session:
        await touch(session, one, kind="outside", now=clock.now())
        async with session.begin_nested():
            await touch(session, two, kind="inside", now=clock.now())
        assert told == [], "woken at a savepoint's release, before anything committed"
        assert await versions(session_factory, one, two) == [0, 0]
        await session.commit()
    assert told == [({one, two}, [1, 1])]
    assert await versions(session_factory, one, two) == [1, 1]


async def test_a_savepoint_rolled_back_drops_only_what_was_noted_inside_it(
    api: Api, app: Any, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    one, two = butler_ids(api)
    async with session_factory() as session:
        await touch(session, one, kind="outside", now=clock.now())
        with contextlib.suppress(RuntimeError):
            async with session.begin_nested():
                await touch(session, two, kind="inside", now=clock.now())
                raise RuntimeError("a rule failed")
        await session.commit()
    assert await versions(session_factory, one, two) == [1, 0]

    # Savepoints in savepoints: one released inside one rolled back is rolled back with it.
    async with session_factory() as session:
        async with session.begin_nested():
            await touch(session, one, kind="kept", now=clock.now())
        with contextlib.suppress(RuntimeError):
            async with session.begin_nested():
                async with session.begin_nested():
                    await touch(session, two, kind="inner", now=clock.now())
                raise RuntimeError("the outer one failed")
        await session.commit()
    assert await versions(session_factory, one, two) == [2, 0]


async def test_a_rollback_with_savepoints_open_drops_every_note(
    api: Api, app: Any, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    one, two = butler_ids(api)
    async with session_factory() as session:
        await touch(session, one, kind="outside", now=clock.now())
        await session.begin_nested()
        await touch(session, two, kind="inside", now=clock.now())
        await session.rollback()
        assert session_state(session).feed_bumps == []
        assert session_state(session).wake == set()
        await session.commit()
    assert await versions(session_factory, one, two) == [0, 0]
