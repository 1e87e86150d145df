"""The butler's phone: ETag and 304, long-polls, the change feed, and wake-ups across processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.feed.changes import purge_feed
from tests.helpers.api import Api
from tests.helpers.feed import DUE, assignments, task
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.servers import ROOT, free_port


async def test_the_etag_changes_exactly_when_the_answer_does(api: Api) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    theirs = await enrol(
        api,
        primary_butler_id=str(api.staff.butlers["butler2"].id),
        serial="003",
        phone="13900000003",
    )
    first = await assignments(api)
    etag = first.headers["etag"]
    assert first.json()["items"] == []
    unchanged = await assignments(api, **{"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    await task(api, theirs["id"])  # another butler's mother: not my list
    assert (await assignments(api, **{"If-None-Match": etag})).status_code == 304
    created = await task(api, mine["id"])
    changed = await assignments(api, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert [(i["kind"], i["id"]) for i in changed.json()["items"]] == [("task", created["id"])]
    done = await api.client.post(
        f"/v1/me/tasks/{created['id']}/complete", headers=api.auth("butler1"), json={"note": "done"}
    )
    assert done.json()["completed_at"] is not None
    after = await assignments(api, **{"If-None-Match": changed.headers["etag"]})
    assert after.json()["items"] == []
    # A butler never sees another butler's items.
    theirs_list = (await assignments(api, "butler2")).json()["items"]
    assert {i["mother_id"] for i in theirs_list} == {theirs["id"]}


async def test_the_etag_turns_at_midnight(api: Api, clock: FrozenClock) -> None:
    etag = (await assignments(api)).headers["etag"]
    clock.advance(timedelta(days=1))
    assert (await assignments(api, **{"If-None-Match": etag})).status_code == 200


async def test_a_long_poll_returns_early_on_a_change_and_304_at_its_end(api: Api) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    etag = (await assignments(api)).headers["etag"]
    started = time.monotonic()
    timed_out = await api.client.get(
        "/v1/me/assignments",
        params={"wait": 1},
        headers={**api.auth("butler1"), "If-None-Match": etag},
    )
    assert timed_out.status_code == 304
    assert 0.9 < time.monotonic() - started < 3

    async def change_soon() -> None:
        await asyncio.sleep(0.3)
        await task(api, mine["id"])

    started = time.monotonic()
    poll, _ = await asyncio.gather(
        api.client.get(
            "/v1/me/assignments",
            params={"wait": 20},
            headers={**api.auth("butler1"), "If-None-Match": etag},
        ),
        change_soon(),
    )
    assert poll.status_code == 200
    assert time.monotonic() - started < 2
    assert poll.json()["items"][0]["kind"] == "task"


async def test_the_feed_is_ordered_and_expires(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    for i in range(3):
        await task(api, mine["id"], f"task number {i}")
    page = (await api.client.get("/v1/me/events", headers=api.auth("butler1"))).json()
    kinds = [e["kind"] for e in page["events"]]
    assert kinds == ["assignment.primary", "task.created", "task.created", "task.created"]
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4]
    rest = await api.client.get(
        "/v1/me/events", params={"after": page["next_cursor"]}, headers=api.auth("butler1")
    )
    assert rest.json() == {"events": [], "next_cursor": "4"}
    async with session_factory() as session:
        await purge_feed(session, before=datetime(2100, 1, 1, tzinfo=UTC))
        await session.commit()
    gone = await api.client.get("/v1/me/events", params={"after": 2}, headers=api.auth("butler1"))
    body = assert_problem(gone, 410)
    assert body["current_version"] == 4
    current = await api.client.get(
        "/v1/me/events", params={"after": 4}, headers=api.auth("butler1")
    )
    assert current.status_code == 200


@pytest.mark.postgres_only
async def test_concurrent_writers_leave_no_gaps_or_duplicates(api: Api) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await asyncio.gather(*(task(api, mine["id"], f"parallel {i}") for i in range(25)))
    seqs: list[int] = []
    cursor = "0"
    while True:
        page = (
            await api.client.get(
                "/v1/me/events", params={"after": cursor}, headers=api.auth("butler1")
            )
        ).json()
        if not page["events"]:
            break
        seqs += [e["seq"] for e in page["events"]]
        cursor = page["next_cursor"]
    assert seqs == list(range(1, 27))
    assert Counter(seqs).most_common(1)[0][1] == 1


@pytest.mark.postgres_only
async def test_a_change_through_one_process_wakes_a_long_poll_on_another(
    api: Api, settings: Settings
) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "LOG_LEVEL": "WARNING",
        "DISPATCHER_IN_APP": "false",
    }
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(p), "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for base in (a, b):  # a loaded CI machine (two test workers) starts slowly
                for _ in range(600):
                    try:
                        if (await client.get(f"{base}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"the server at {base} did not start within 60 s")
            etag = (
                await client.get(f"{a}/v1/me/assignments", headers=api.auth("butler1"))
            ).headers["etag"]

            async def change_on_b() -> float:
                await asyncio.sleep(0.5)
                response = await client.post(
                    f"{b}/v1/mothers/{mine['id']}/tasks",
                    headers=api.auth("frontdesk"),
                    json={"title": "Call her about the scan", "due_at": DUE},
                )
                assert response.status_code == 201
                return time.monotonic()

            poll, changed_at = await asyncio.gather(
                client.get(
                    f"{a}/v1/me/assignments",
                    params={"wait": 20},
                    headers={**api.auth("butler1"), "If-None-Match": etag},
                ),
                change_on_b(),
            )
            answered_at = time.monotonic()
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    assert poll.status_code == 200
    assert poll.json()["items"][0]["title"] == "Call her about the scan"
    assert answered_at - changed_at < 1.0


@pytest.mark.postgres_only
async def test_a_revocation_in_one_process_ends_the_cached_token_in_another(
    api: Api, settings: Settings
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "LOG_LEVEL": "WARNING",
        "DISPATCHER_IN_APP": "false",
        "TOKEN_CACHE_SECONDS": "300",
    }
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(p), "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for base in (a, b):
                for _ in range(600):  # a loaded CI machine starts slowly (60 s)
                    try:
                        if (await client.get(f"{base}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            me = await client.get(f"{a}/v1/auth/me", headers=api.auth("butler1"))
            assert me.status_code == 200  # now cached in process A for five minutes
            user_id = api.staff.users["butler1"].id
            await client.post(f"{b}/v1/users/{user_id}/revoke-tokens", headers=api.auth("admin"))
            status_code = 200
            for _ in range(20):
                status_code = (
                    await client.get(f"{a}/v1/auth/me", headers=api.auth("butler1"))
                ).status_code
                if status_code == 401:
                    break
                await asyncio.sleep(0.05)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    assert status_code == 401


async def test_a_cover_accepts_or_declines_and_another_steps_in(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from tests.helpers.butlers import new_butler
    from tests.helpers.visits import book, open_session

    b1 = str(api.staff.butlers["butler1"].id)
    third = await new_butler(api, "butler.three", skills=["high_risk"])
    mother = await enrol(api, primary_butler_id=b1)
    await api.client.post(
        f"/v1/butlers/{b1}/leaves",
        headers=api.auth("admin"),
        json={"starts_on": "2026-11-28", "ends_on": "2026-11-28", "reason": "ill"},
    )
    session = await open_session(api, day="2026-11-28")
    visit = (await book(api, mother["id"], session["id"])).json()
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler2"].id)
    items = (await assignments(api, "butler2")).json()["items"]
    assert [(i["kind"], i["role"]) for i in items] == [("visit", "cover")]
    accepted = await api.client.post(
        f"/v1/me/covers/{visit['id']}/accept", headers=api.auth("butler2")
    )
    assert accepted.status_code == 204
    declined = await api.client.post(
        f"/v1/me/covers/{visit['id']}/decline",
        headers=api.auth("butler2"),
        json={"reason": "double-booked"},
    )
    assert declined.status_code == 204
    now = (await api.client.get(f"/v1/visits/{visit['id']}", headers=api.auth("frontdesk"))).json()
    assert now["accompanying_butler_id"] == third
    assert (await assignments(api, "butler2")).json()["items"] == []
    assert_problem(
        await api.client.post(f"/v1/me/covers/{visit['id']}/accept", headers=api.auth("butler2")),
        404,
    )


async def test_overdue_tasks_remind_the_butler_then_the_desk(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from sqlalchemy import select

    from app.notifications.models import OutboxMessage
    from app.notifications.reminders import remind_overdue_tasks

    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await task(api, mine["id"])  # due 2026-11-29T02:00Z

    async def remind() -> int:
        async with session_factory() as session:
            n = await remind_overdue_tasks(
                session, now=clock.now(), escalate_after=timedelta(hours=2)
            )
            await session.commit()
            return n

    assert await remind() == 0
    clock.advance(timedelta(days=1, minutes=1))
    assert await remind() == 1
    assert await remind() == 0
    clock.advance(timedelta(hours=2))
    assert await remind() == 1
    async with session_factory() as session:
        channels = list(
            await session.scalars(
                select(OutboxMessage.channel)
                .where(OutboxMessage.topic == "task.overdue")
                .order_by(OutboxMessage.id)
            )
        )
    assert channels == ["butler_app", "front_desk"]


async def test_an_unchanged_answer_is_served_again_and_still_audited(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from sqlalchemy import func, select

    from app.audit.models import AuditEvent
    from app.feed import router as feed_router

    built = Counter[str]()
    real = feed_router._build_assignments

    async def counting(*args: Any, **kwargs: Any) -> Any:
        built["answers"] += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(feed_router, "_build_assignments", counting)
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await task(api, mine["id"])
    first = await assignments(api)
    again = await assignments(api)  # no If-None-Match: the full answer, from the cache
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert built["answers"] == 1
    await task(api, mine["id"], title="Call about the glucose result")
    changed = await assignments(api)
    assert len(changed.json()["items"]) == 2
    assert built["answers"] == 2
    async with session_factory() as session:
        shown = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "mother.assignments", AuditEvent.resource_id == mine["id"])
        )
    assert shown == 3  # every showing is an access, cached or not
