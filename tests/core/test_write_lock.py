"""The embedded database's write lock is taken only once a request is ready to write.

On SQLite one request writes at a time (``app.state.write_lock``). Before issue 18 the lock was
taken before the body was read and before the caller was authenticated: one client sending half
a body blocked every write in the clinic, and bogus logins hashing passwords under it slowed
every write. These tests hold each of those slow parts open and show that another write goes
through meanwhile (they fail on the old order: the other write waits for the lock).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.core import security
from app.core.clock import FrozenClock
from app.core.middleware import RequestGuardMiddleware
from app.core.settings import Settings
from app.main import create_app
from tests.helpers.api import Api
from tests.helpers.factories import PASSWORD, make_staff
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem

# The lock exists on the embedded database only.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Long enough to tell "went through" from "waited for the lock", short for a test.
PROMPT = 5.0


@sqlite_only
async def test_a_half_sent_body_does_not_hold_up_another_write(api: Api) -> None:
    assert api.client._transport is not None
    stall = asyncio.Event()

    async def half_a_body() -> AsyncIterator[bytes]:
        yield b'{"mrn": "MRN-STALL", "name": "'
        await stall.wait()
        yield b'x"}'

    stalled = asyncio.create_task(
        api.client.post(
            "/v1/mothers",
            headers={**api.auth("frontdesk"), "content-type": "application/json"},
            content=half_a_body(),
        )
    )
    await asyncio.sleep(0.2)  # the stalled request is in, its body half read
    try:
        # A write by someone else, and a login (which writes its failure count), go through.
        mother = await asyncio.wait_for(enrol(api), PROMPT)
        assert mother["id"]
        login = await asyncio.wait_for(
            api.client.post("/v1/auth/login", json={"username": "doctor", "password": PASSWORD}),
            PROMPT,
        )
        assert login.status_code == 200
        assert not stalled.done()
    finally:
        stall.set()
    assert_problem(await stalled, 422)  # its body, once whole, is simply not a valid mother


@pytest.fixture
async def impatient_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(update={"body_read_timeout_seconds": 0.5}), clock=clock
    )
    yield application
    await application.state.engine.dispose()


@sqlite_only
async def test_a_body_that_never_arrives_whole_gets_408(
    impatient_app: FastAPI, clock: FrozenClock
) -> None:
    staff = await make_staff(impatient_app.state.session_factory, now=clock.now())
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"mrn": '
        await never.wait()
        yield b"}"  # pragma: no cover - never sent

    transport = httpx.ASGITransport(app=impatient_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await asyncio.wait_for(
            client.post(
                "/v1/mothers",
                headers={
                    "Authorization": f"Bearer {staff.tokens['frontdesk']}",
                    "content-type": "application/json",
                },
                content=trickle(),
            ),
            PROMPT,
        )
        body = assert_problem(answer, 408)
        assert "0.5 seconds" in body["detail"]
        # The lock was never taken: the next write goes straight through.
        again = await client.post(
            "/v1/auth/login", json={"username": "frontdesk", "password": PASSWORD}
        )
        assert again.status_code == 200


@sqlite_only
async def test_a_bogus_token_is_refused_without_waiting_for_the_lock(
    api: Api, app: FastAPI
) -> None:
    lock: asyncio.Lock = app.state.write_lock
    await lock.acquire()  # somebody's long write
    try:
        refused = await asyncio.wait_for(
            api.client.post("/v1/mothers", headers={"Authorization": "Bearer pbt_bogus"}, json={}),
            PROMPT,
        )
        assert_problem(refused, 401)
        # A good token is also known before the lock; its write then waits its turn.
        waiting = asyncio.create_task(enrol(api))
        await asyncio.sleep(0.3)
        assert not waiting.done()
    finally:
        lock.release()
    assert (await asyncio.wait_for(waiting, PROMPT))["id"]


@sqlite_only
async def test_a_request_without_credentials_is_refused_without_waiting_for_the_lock(
    api: Api, app: FastAPI
) -> None:
    lock: asyncio.Lock = app.state.write_lock
    await lock.acquire()
    try:
        for _ in range(3):
            refused = await asyncio.wait_for(api.client.post("/v1/mothers", json={}), PROMPT)
            assert_problem(refused, 401)
    finally:
        lock.release()


async def test_a_body_read_late_but_whole_is_not_refused() -> None:
    """The deadline runs from the app's first read of the body, not from the request's start:
    an app that reads it after slow work (authentication, a busy pool) still gets it whole."""

    async def slow_reader(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.6)  # longer than the deadline
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    guarded = RequestGuardMiddleware(slow_reader, max_bytes=1024, body_timeout=0.3)
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/anything", content=b"whole")
    assert answer.status_code == 200
    assert answer.content == b"whole"


@sqlite_only
async def test_a_login_hashing_its_password_does_not_hold_up_writes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashing = threading.Event()
    finish = threading.Event()
    real_verify = security.verify_password

    def slow_verify(password_hash: str | None, password: str) -> bool:
        hashing.set()
        finish.wait(timeout=30)
        return real_verify(password_hash, password)

    monkeypatch.setattr("app.auth.service.verify_password", slow_verify)
    login = asyncio.create_task(
        api.client.post(
            "/v1/auth/login", json={"username": "frontdesk", "password": "a-wrong-guess"}
        )
    )
    try:
        assert await asyncio.to_thread(hashing.wait, PROMPT)
        monkeypatch.setattr("app.auth.service.verify_password", real_verify)
        # While the guess is being hashed, the clinic's writes go on.
        mother = await asyncio.wait_for(enrol(api), PROMPT)
        assert mother["id"]
        assert not login.done()
    finally:
        finish.set()
    assert_problem(await login, 401)
