"""The kept answer sent before the framework, and the audit rows written together for it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.group_commit import AuditGroupCommit
from app.audit.models import AuditEvent
from app.audit.service import audit_row
from app.core.clock import FrozenClock
from app.feed import fast_path
from tests.helpers.api import Api
from tests.helpers.feed import assignments, task
from tests.helpers.mothers import enrol


async def audit_count(factory: async_sessionmaker[AsyncSession], *where: Any) -> int:
    async with factory() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEvent).where(*where))
        return int(count or 0)


async def shown(factory: async_sessionmaker[AsyncSession], mother_id: str) -> int:
    return await audit_count(
        factory, AuditEvent.action == "mother.assignments", AuditEvent.resource_id == mother_id
    )


async def two_mothers(api: Api) -> list[str]:
    butler = str(api.staff.butlers["butler1"].id)
    ids = []
    for serial, phone in (("001", "13900000001"), ("002", "13900000002")):
        mother = await enrol(api, primary_butler_id=butler, serial=serial, phone=phone)
        await task(api, mother["id"])
        ids.append(mother["id"])
    return ids


async def test_a_kept_answer_is_sent_as_built_and_only_after_its_reads_are_on_record(
    api: Api,
    app: FastAPI,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mothers = await two_mothers(api)
    first = await assignments(api)  # the route builds and keeps it
    assert first.status_code == 200
    writer: AuditGroupCommit = app.state.audit_writer
    rows_before = writer.rows

    order: list[str] = []
    real_write = writer.write
    real_answer = fast_path._answer

    async def audited(rows: list[dict[str, Any]]) -> None:
        order.append("audit begun")
        await real_write(rows)
        order.append("audit committed")

    async def sent(*args: Any) -> None:
        order.append("answer sent")
        await real_answer(*args)

    monkeypatch.setattr(writer, "write", audited)
    monkeypatch.setattr(fast_path, "_answer", sent)
    again = await assignments(api)
    assert order == ["audit begun", "audit committed", "answer sent"]

    assert writer.rows == rows_before + 2  # one row per mother shown, through the writer
    assert again.status_code == 200
    assert again.content == first.content  # byte for byte what the route sent
    for header in ("etag", "content-type", "cache-control", "content-length"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["x-request-id"]
    for mother in mothers:
        assert await shown(session_factory, mother) == 2


async def test_when_the_grouped_write_fails_the_route_answers_and_audits_in_its_own(
    api: Api, app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mothers = await two_mothers(api)
    first = await assignments(api)
    writer: AuditGroupCommit = app.state.audit_writer

    async def broken(rows: list[dict[str, Any]]) -> None:
        raise ConnectionError("database gone")

    writer._insert = broken  # type: ignore[method-assign]
    again = await assignments(api)
    assert again.status_code == 200
    assert again.content == first.content
    assert writer.rows == 0
    for mother in mothers:
        assert await shown(session_factory, mother) == 2  # the route wrote this one


def rows_for(request_id: str, count: int, clock: FrozenClock) -> list[dict[str, Any]]:
    return [
        audit_row(
            None,
            "mother.assignments",
            "mother",
            uuid.uuid4(),
            occurred_at=clock.now(),
            request_id=request_id,
        )
        for _ in range(count)
    ]


async def committed(factory: async_sessionmaker[AsyncSession], request_id: str) -> int:
    return await audit_count(factory, AuditEvent.request_id == request_id)


async def test_concurrent_writes_share_commits_and_each_returns_after_its_own(
    app: FastAPI, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    writer = AuditGroupCommit(app.state.engine, write_lock=app.state.write_lock)

    async def one(n: int) -> int:
        request_id = f"req-{n:04d}-group"
        await writer.write(rows_for(request_id, 3, clock))
        return await committed(session_factory, request_id)  # visible the moment it returns

    seen = await asyncio.gather(*(one(n) for n in range(60)))
    assert seen == [3] * 60
    assert writer.rows == 180
    assert writer.batches < 60  # they waited together, not one commit each


async def test_a_failed_batch_fails_every_request_in_it_and_writes_none_of_them(
    app: FastAPI, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    writer = AuditGroupCommit(app.state.engine, write_lock=app.state.write_lock)
    await writer.write(rows_for("req-0000-early", 1, clock))
    async with session_factory() as session:
        taken = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.request_id == "req-0000-early")
        )
    clash = rows_for("req-0001-clash", 1, clock)
    clash[0]["id"] = taken  # a primary key already used: the whole batch is refused
    good = rows_for("req-0002-good", 2, clock)
    results = await asyncio.gather(writer.write(clash), writer.write(good), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert await committed(session_factory, "req-0002-good") == 0  # nothing half-written
    await writer.write(rows_for("req-0003-after", 1, clock))  # the writer goes on
    assert await committed(session_factory, "req-0003-after") == 1


async def test_nothing_to_write_costs_no_transaction(app: FastAPI) -> None:
    writer = AuditGroupCommit(app.state.engine, write_lock=app.state.write_lock)
    await writer.write([])
    assert writer.batches == 0


async def long_poll(api: Api, etag: str, wait: int | str) -> tuple[int, float]:
    started = time.monotonic()
    r = await api.client.get(
        "/v1/me/assignments",
        params={"wait": wait},
        headers={**api.auth("butler1"), "If-None-Match": etag},
    )
    return r.status_code, time.monotonic() - started


def route_waits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the long-polls the route itself holds (the fast path should hold them)."""
    from app.feed import router as feed_router

    held = Counter[str]()
    real = feed_router._wait_for_change

    async def counting(*args: Any, **kwargs: Any) -> int:
        held["route"] += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(feed_router, "_wait_for_change", counting)
    return held


async def test_a_quiet_long_poll_is_held_and_ended_before_the_framework(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await two_mothers(api)
    etag = (await assignments(api)).headers["etag"]
    held = route_waits(monkeypatch)
    status, took = await long_poll(api, etag, 1)
    assert status == 304
    assert 0.9 < took < 3
    assert held["route"] == 0


async def test_a_change_wakes_a_held_long_poll_and_the_answer_is_the_new_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    mothers = await two_mothers(api)
    etag = (await assignments(api)).headers["etag"]
    held = route_waits(monkeypatch)

    async def change_soon() -> None:
        await asyncio.sleep(0.3)
        await task(api, mothers[0], title="Call about the glucose result")

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
    assert len(poll.json()["items"]) == 3
    assert poll.headers["etag"] != etag
    assert held["route"] == 0


async def test_a_lost_notification_costs_at_most_one_wait(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    mothers = await two_mothers(api)
    etag = (await assignments(api)).headers["etag"]
    app.state.notifier.version_ttl = 60  # the stale version stays known through the wait
    assert (await assignments(api, **{"If-None-Match": etag})).status_code == 304  # cached
    monkeypatch.setattr(app.state.notifier, "publish", lambda _butlers: None)  # NOTIFY lost
    await task(api, mothers[0], title="Call about the glucose result")
    status, took = await long_poll(api, etag, 1)
    assert status == 200  # the version is read again from the database when the wait ends
    assert 0.9 <= took < 3


async def test_a_wait_the_route_would_refuse_is_still_refused(api: Api) -> None:
    etag = (await assignments(api)).headers["etag"]
    for bad in ("31", "abc", "-1", "²", "٣"):
        status, _ = await long_poll(api, etag, bad)
        assert status == 422, bad


async def test_phones_woken_together_share_one_build_of_the_answer(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.feed import router as feed_router

    await two_mothers(api)
    await assignments(api)  # the token is verified and cached
    app.state.notifier.clear_versions()  # as after a change: nothing kept
    built = Counter[str]()
    real = feed_router._build_assignments

    async def slow(*args: Any, **kwargs: Any) -> Any:
        built["answers"] += 1
        await asyncio.sleep(0.2)
        return await real(*args, **kwargs)

    monkeypatch.setattr(feed_router, "_build_assignments", slow)
    answers = await asyncio.gather(*(assignments(api) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.content for a in answers}) == 1
    assert built["answers"] == 1


async def test_a_failed_build_is_not_shared_each_waiter_builds_its_own() -> None:
    from app.feed.notifier import Notifier

    notifier = Notifier()
    butler, calls = uuid.uuid4(), Counter[str]()

    async def build() -> str:
        calls["build"] += 1
        first = calls["build"] == 1
        await asyncio.sleep(0.05)
        if first:
            raise ConnectionError("database gone")
        return "answer"

    results = await asyncio.gather(
        *(notifier.answer_once(butler, (1, "day"), build) for _ in range(3)),
        return_exceptions=True,
    )
    assert isinstance(results[0], ConnectionError)
    assert results[1:] == ["answer", "answer"]
    assert calls["build"] == 3
    assert notifier.answer(butler, (1, "day")) is None  # nothing kept from the failed flight


async def test_a_header_sent_twice_is_left_to_the_route(api: Api, app: FastAPI) -> None:
    await two_mothers(api)
    await assignments(api)  # kept, and the token cached
    writer: AuditGroupCommit = app.state.audit_writer
    before = writer.rows
    r = await api.client.get(
        "/v1/me/assignments",
        headers=[
            ("Authorization", api.auth("butler2")["Authorization"]),
            ("Authorization", api.auth("butler1")["Authorization"]),
        ],
    )
    assert writer.rows == before  # not the fast path: it would read one, the route another
    assert r.status_code == 200
    assert r.json()["items"] == []  # the route reads the first: butler2, who has nobody


async def test_a_closed_writer_takes_no_more_rows(app: FastAPI, clock: FrozenClock) -> None:
    writer = AuditGroupCommit(app.state.engine, write_lock=app.state.write_lock)
    await writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await writer.write(rows_for("req-0004-late", 1, clock))
