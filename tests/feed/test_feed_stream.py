"""The change feed as Server-Sent Events: pushed as it commits, resumable, ended by a revocation.

httpx's ASGI transport gathers a whole body before answering, so these tests drive the app as a
server would: one ASGI call, reading each chunk as it is sent.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.feed import stream as stream_module
from app.feed.changes import purge_feed
from app.feed.models import FeedEvent
from app.feed.notifier import sweep_once
from tests.helpers.api import Api
from tests.helpers.feed import task
from tests.helpers.mothers import enrol


class Stream:
    """One open request to the app; read its SSE messages as they come."""

    def __init__(self, app: FastAPI, headers: dict[str, str], **params: Any) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.query = urlencode(params).encode()
        self.chunks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.hang_up = asyncio.Event()
        self.status = 0
        self.buffer = ""
        self.ended = False

    async def _receive(self) -> dict[str, Any]:
        if not getattr(self, "_asked", False):
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self.chunks.put(message)

    async def __aenter__(self) -> Stream:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/me/events/stream",
            "raw_path": b"/v1/me/events/stream",
            "query_string": self.query,
            "root_path": "",
            "headers": [(b"host", b"test"), *self.headers],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        self.task = asyncio.create_task(self.app(scope, self._receive, self._send))
        start = await asyncio.wait_for(self.chunks.get(), 5)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return self

    async def body(self) -> bytes:
        """The whole body of an answer that is not a stream (an error)."""
        out = b""
        while True:
            message = await asyncio.wait_for(self.chunks.get(), 5)
            out += message.get("body", b"")
            if not message.get("more_body"):
                return out

    async def message(self, within: float = 5) -> dict[str, str] | None:
        """The next SSE message as its fields; None once the stream has ended."""
        while "\n\n" not in self.buffer:
            if self.ended:
                return None
            chunk = await asyncio.wait_for(self.chunks.get(), within)
            self.buffer += chunk.get("body", b"").decode()
            self.ended = not chunk.get("more_body", False)
        block, self.buffer = self.buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.strip()
        return fields

    async def event(self, within: float = 5) -> dict[str, str] | None:
        """The next message that is not a keep-alive or the retry hint."""
        while True:
            fields = await self.message(within)
            if fields is None or "event" in fields:
                return fields

    async def __aexit__(self, *_exc: object) -> None:
        self.hang_up.set()
        await asyncio.wait_for(self.task, 5)  # the app ends the request cleanly on a hang-up


@pytest.fixture
def short_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "HEARTBEAT_SECONDS", 0.2)


async def read_from(app: FastAPI, api: Api, *, after: int) -> list[bytes]:
    """butler1's stream, driven directly (no route, so no check of the cursor first)."""

    async def allowed() -> bool:
        return True

    return [
        f
        async for f in stream_module.feed_stream(
            session_factory=app.state.session_factory,
            notifier=app.state.notifier,
            butler_id=api.staff.butlers["butler1"].id,
            after=after,
            still_allowed=allowed,
            lifetime=5,
        )
    ]


async def test_the_stream_sends_what_was_missed_then_each_change_as_it_commits(
    api: Api, app: FastAPI
) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    async with (
        Stream(app, api.auth("butler1")) as stream,
        Stream(app, api.auth("butler2")) as other,
    ):
        assert stream.status == 200
        assert stream.response_headers["content-type"].startswith("text/event-stream")
        assert stream.response_headers["cache-control"] == "no-store"
        assert await stream.message() == {"retry": "3000"}
        first = await stream.event()
        assert first is not None
        assert (first["id"], first["event"]) == ("1", "feed")
        assert json.loads(first["data"])["kind"] == "assignment.primary"
        created = await task(api, mine["id"])
        second = await stream.event()
        assert second is not None
        assert second["id"] == "2"
        data = json.loads(second["data"])
        assert (data["seq"], data["kind"], data["ref_id"]) == (2, "task.created", created["id"])
        # Another butler's stream never carries her.
        assert await other.message() == {"retry": "3000"}
        with pytest.raises(TimeoutError):
            await other.event(within=0.5)


async def test_the_stream_resumes_after_last_event_id(api: Api, app: FastAPI) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    for i in range(3):
        await task(api, mine["id"], f"task {i}")
    async with Stream(app, {**api.auth("butler1"), "Last-Event-ID": "2"}, after=0) as stream:
        ids = [(await stream.event() or {}).get("id") for _ in range(2)]
    assert ids == ["3", "4"]  # the header wins over ?after, and nothing is sent twice


async def test_a_discarded_or_impossible_cursor_is_refused_before_the_stream(
    api: Api, app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await task(api, mine["id"])
    async with Stream(app, {**api.auth("butler1"), "Last-Event-ID": "x1"}) as bad:
        assert bad.status == 422
        await bad.body()
    async with Stream(app, api.auth("butler1"), after=9) as ahead:
        assert ahead.status == 404
        await ahead.body()
    async with session_factory() as session:
        await purge_feed(session, before=datetime(2100, 1, 1, tzinfo=UTC))
        await session.commit()
    async with Stream(app, api.auth("butler1"), after=0) as gone:
        assert gone.status == 410
        body = json.loads(await gone.body())
        assert body["current_version"] == 2
        assert gone.response_headers["content-type"] == "application/problem+json"
    async with Stream(app, api.auth("frontdesk")) as desk:
        assert desk.status == 403
        await desk.body()


async def three_events(api: Api) -> None:
    """butler1's feed: 1 her mother assigned, 2 and 3 two tasks."""
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await task(api, mine["id"], "first")
    await task(api, mine["id"], "second")


async def test_a_purge_under_an_open_stream_says_expired_instead_of_skipping(
    api: Api, app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The stream read up to 1; 2 and 3 were purged before it read again."""
    await three_events(api)
    async with session_factory() as session:
        await purge_feed(session, before=datetime(2100, 1, 1, tzinfo=UTC))
        await session.commit()

    frames = await read_from(app, api, after=1)
    expired = b'event: expired\ndata: {"current_version": 3}\n\n'
    assert frames == [b"retry: 3000\n\n", expired]


async def test_a_hole_in_the_middle_of_what_a_stream_reads_says_expired(
    api: Api, app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The stream read up to 1; 2 was purged, 3 is still there: 3 alone would be a gap."""
    await three_events(api)
    async with session_factory() as session:
        await session.execute(delete(FeedEvent).where(FeedEvent.seq <= 2))
        await session.commit()

    frames = await read_from(app, api, after=1)
    assert frames[-1] == b'event: expired\ndata: {"current_version": 3}\n\n'
    assert not any(f.startswith(b"id:") for f in frames)


@pytest.mark.usefixtures("short_heartbeat")
async def test_a_quiet_stream_keeps_alive_and_a_logout_ends_it(api: Api, app: FastAPI) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    async with Stream(app, api.auth("butler1")) as stream:
        assert (await stream.event() or {}).get("id") == "1"
        assert await stream.message() == {"comment": "keep-alive"}
        logout = await api.client.post("/v1/auth/logout", headers=api.auth("butler1"))
        assert logout.status_code == 204
        await task(api, mine["id"])  # would be event 2, but the token is gone
        rest = []
        async with asyncio.timeout(5):  # it ends: within one heartbeat of the change
            while (fields := await stream.message()) is not None:
                rest.append(fields)
        assert all("event" not in f for f in rest), rest


async def test_the_stream_ends_after_its_lifetime(api: Api, app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(update={"feed_stream_seconds": 1})
    async with Stream(app, api.auth("butler1")) as stream:
        assert await stream.message() == {"retry": "3000"}
        assert await stream.message(within=5) is None  # ended: the phone reconnects


async def test_a_waiting_stream_holds_no_database_connection(api: Api, app: FastAPI) -> None:
    await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    pool = app.state.engine.pool
    async with Stream(app, api.auth("butler1")) as stream:
        # Event 1 leaves after its read's session is closed; the stream then waits 15 s.
        assert (await stream.event() or {}).get("id") == "1"
        for _ in range(5):
            assert pool.checkedout() == 0
            await asyncio.sleep(0.05)


async def test_a_long_backlog_comes_page_after_page_without_a_pause(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "PAGE", 2)
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    for i in range(4):
        await task(api, mine["id"], f"task {i}")
    async with Stream(app, api.auth("butler1")) as stream:
        # A missed page would wait for the next heartbeat (15 s): far past `within`.
        ids = [(await stream.event(within=2) or {}).get("id") for _ in range(5)]
    assert ids == ["1", "2", "3", "4", "5"]


@pytest.mark.usefixtures("short_heartbeat")
async def test_a_quiet_stream_costs_no_query_even_when_another_phone_logs_out(
    api: Api, app: FastAPI
) -> None:
    queries = {"n": 0}

    def before(*_args: Any) -> None:
        queries["n"] += 1

    await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    async with Stream(app, api.auth("butler1")) as stream:
        assert (await stream.event() or {}).get("id") == "1"
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
        try:
            for _ in range(4):  # four heartbeats: the token checked four times, nothing read
                assert await stream.message() == {"comment": "keep-alive"}
            assert queries["n"] == 0
            # Somebody else logs out: every stream checks its token again, from the token
            # cache, which still holds this one; still no query, and the stream goes on.
            await api.client.post("/v1/auth/logout", headers=api.auth("butler2"))
            queries["n"] = 0
            for _ in range(2):
                assert await stream.message() == {"comment": "keep-alive"}
            assert queries["n"] == 0
        finally:
            event.remove(app.state.engine.sync_engine, "before_cursor_execute", before)


async def test_a_lost_notification_is_caught_by_the_sweep(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    notifier = app.state.notifier
    async with Stream(app, api.auth("butler1")) as stream:
        assert (await stream.event() or {}).get("id") == "1"
        assert await sweep_once(app.state.session_factory, notifier) == 0  # nothing behind
        with monkeypatch.context() as lost:
            lost.setattr(notifier, "publish", lambda _ids: None)  # the NOTIFY never came
            await task(api, mine["id"])
        with pytest.raises(TimeoutError):
            await stream.event(within=0.3)  # nothing wakes it by itself
        assert await sweep_once(app.state.session_factory, notifier) == 1
        assert (await stream.event() or {}).get("id") == "2"
