"""Failed logins cannot be used to lock a colleague out, and every login is audited.

Before issue 18, five wrong passwords every 15 minutes, from anywhere, kept any account (the
admin's included) locked for ever. Now failures count per account and client address: the
guesser locks out only himself. Past ``LOGIN_ACCOUNT_MAX_FAILURES`` from all clients together,
the account opens only on a client it logged in from in the last 30 days.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.factories import PASSWORD
from tests.helpers.problems import assert_problem

Desk = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def desk(app: FastAPI) -> Desk:
    """A client at another address (the transport's default is 127.0.0.1)."""

    @asynccontextmanager
    async def at(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client

    return at


async def login(client: httpx.AsyncClient, username: str, password: str) -> Any:
    return await client.post("/v1/auth/login", json={"username": username, "password": password})


async def test_a_guesser_elsewhere_cannot_lock_the_admin_out(api: Api, desk: Desk) -> None:
    async with desk("10.9.9.9") as attacker:
        for _ in range(5):  # LOGIN_MAX_FAILURES
            assert (await login(attacker, "admin", "guess")).status_code == 401
        assert_problem(await login(attacker, "admin", "guess"), 429)
        assert_problem(await login(attacker, "admin", PASSWORD), 429)  # his own client only
    # The admin at her own desk (another address) still gets in, at once.
    async with desk("10.0.0.7") as own:
        assert (await login(own, "admin", PASSWORD)).status_code == 200


async def test_an_account_guessed_at_from_everywhere_opens_only_on_its_recent_clients(
    api: Api, app: FastAPI, desk: Desk, clock: FrozenClock
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"login_account_max_failures": 6})
    async with desk("10.0.0.7") as own:
        assert (await login(own, "doctor", PASSWORD)).status_code == 200  # her desk, known
    clock.advance(timedelta(days=29))
    answers = []
    for n in range(4):  # a botnet: two guesses each from four addresses (8 > 6)
        async with desk(f"172.16.0.{n}") as bot:
            for _ in range(2):
                answers.append((await login(bot, "doctor", "guess")).status_code)
    assert answers == [401] * 6 + [429] * 2  # past the account's limit, strangers stop
    async with desk("172.16.1.1") as stranger:
        body = assert_problem(await login(stranger, "doctor", PASSWORD), 429)
        assert "device it was used on lately" in body["detail"]
        # The same answer for a wrong guess: a stranger cannot tell a right password.
        wrong = assert_problem(await login(stranger, "doctor", "guess"), 429)
        assert {k: v for k, v in wrong.items() if k != "request_id"} == {
            k: v for k, v in body.items() if k != "request_id"
        }
    async with desk("10.0.0.7") as own:
        assert (await login(own, "doctor", PASSWORD)).status_code == 200
    # Known means within 30 days: the login a moment ago renews it, the one before expires.
    clock.advance(timedelta(days=31))
    for n in range(4):
        async with desk(f"172.16.2.{n}") as bot:
            for _ in range(2):
                await login(bot, "doctor", "guess")
    async with desk("10.0.0.7") as own:
        assert_problem(await login(own, "doctor", PASSWORD), 429)


async def test_one_address_refused_by_its_own_limit_does_not_push_the_account_over(
    api: Api, app: FastAPI, desk: Desk
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"login_account_max_failures": 6})
    async with desk("10.9.9.9") as attacker:
        for _ in range(50):  # five counted, the rest refused by his own limit and not counted
            await login(attacker, "frontdesk", "guess")
    async with desk("10.0.0.8") as new_phone:  # never used before: not a known client
        assert (await login(new_phone, "frontdesk", PASSWORD)).status_code == 200


async def test_an_ipv6_network_counts_as_one_client(api: Api, desk: Desk) -> None:
    for host in range(1, 7):  # six addresses of one /64: one client
        async with desk(f"2001:db8:1:2::{host}") as attacker:
            await login(attacker, "butler1", "guess")
    async with desk("2001:db8:1:2::99") as attacker:
        assert_problem(await login(attacker, "butler1", PASSWORD), 429)
    async with desk("2001:db8:1:3::1") as other_network:
        assert (await login(other_network, "butler1", PASSWORD)).status_code == 200


async def test_an_admin_reset_clears_every_clients_count(api: Api, desk: Desk) -> None:
    async with desk("10.9.9.9") as mistyper:
        for _ in range(6):
            await login(mistyper, "frontdesk", "guess")
        assert_problem(await login(mistyper, "frontdesk", PASSWORD), 429)
    user_id = str(api.staff.users["frontdesk"].id)
    current = await api.client.get(f"/v1/users/{user_id}", headers=api.auth("admin"))
    reset = await api.client.patch(
        f"/v1/users/{user_id}",
        headers={**api.auth("admin"), "If-Match": current.headers["etag"]},
        json={"password": "a-new-password-2026"},
    )
    assert reset.status_code == 200, reset.text
    async with desk("10.9.9.9") as mistyper:
        assert (await login(mistyper, "frontdesk", "a-new-password-2026")).status_code == 200


async def test_every_login_is_audited_with_its_client_and_refusals_are_logged(
    api: Api,
    desk: Desk,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("app.auth").addHandler(handler)
    try:
        async with desk("10.0.0.7") as own:
            assert (await login(own, "nutritionist", PASSWORD)).status_code == 200
            assert (await login(own, "nutritionist", "wrong")).status_code == 401
            assert (await login(own, "my-password-typed-here", "wrong")).status_code == 401
    finally:
        logging.getLogger("app.auth").removeHandler(handler)
    async with session_factory() as session:
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "auth.login")
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
            )
        ).all()
    success = [r for r in rows if r.outcome == "success"]
    denied = [r for r in rows if r.outcome == "denied"]
    assert len(success) == 1
    assert len(denied) == 2
    assert success[0].actor_id == api.staff.users["nutritionist"].id
    assert success[0].detail == {"client": "10.0.0.7"}
    # What was typed as a user name is kept only when it names an account.
    assert {(d.detail or {}).get("username") for d in denied} == {"nutritionist", "(unknown)"}
    assert all((d.detail or {}).get("client") == "10.0.0.7" for d in denied)
    assert all(d.actor_kind == "anonymous" for d in denied)
    refused = [r for r in seen if getattr(r, "event", None) == "login_refused"]
    assert len(refused) == 2
    assert all(r.levelno == logging.WARNING for r in refused)
    assert all("wrong" not in str(vars(r)) for r in seen)  # never the password
    assert all("my-password-typed-here" not in str(vars(r)) for r in seen)
