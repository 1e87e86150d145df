"""Abuse limits: failed logins per account, texts per mother and per account (429 + Retry-After)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications.models import OutboxMessage
from tests.helpers.api import Api
from tests.helpers.factories import PASSWORD
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem


async def attempt(api: Api, username: str, password: str) -> Any:
    return await api.client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )


async def test_failed_logins_lock_the_account_for_the_window(api: Api, clock: FrozenClock) -> None:
    for _ in range(5):  # LOGIN_MAX_FAILURES
        assert (await attempt(api, "frontdesk", "wrong-password-1")).status_code == 401
    locked = await attempt(api, "frontdesk", PASSWORD)  # even the right password
    body = assert_problem(locked, 429)
    assert body["type"] == "/problems/too-many-requests"
    retry = int(locked.headers["retry-after"])
    assert 0 < retry <= 15 * 60
    # Another account is not affected; the name is matched case-insensitively.
    assert (await attempt(api, "doctor", PASSWORD)).status_code == 200
    assert_problem(await attempt(api, " FrontDesk ", PASSWORD), 429)
    clock.advance(timedelta(seconds=retry))
    assert (await attempt(api, "frontdesk", PASSWORD)).status_code == 200


async def test_successful_logins_are_not_counted(api: Api) -> None:
    for _ in range(8):
        assert (await attempt(api, "frontdesk", PASSWORD)).status_code == 200


async def sms(
    api: Api, mother_id: str, who: str = "frontdesk", template: str = "visit_reminder"
) -> Any:
    return await api.client.post(
        f"/v1/mothers/{mother_id}/sms", headers=api.auth(who), json={"template": template}
    )


async def test_texts_to_a_mother_are_limited_per_day(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    sent = [await sms(api, mother["id"]) for _ in range(3)]  # SMS_PER_MOTHER_PER_DAY
    assert {r.status_code for r in sent} == {202}
    assert sent[0].json()["channel"] == "sms"
    fourth = await sms(api, mother["id"], who="butler1")  # another sender, the same mother
    body = assert_problem(fourth, 429)
    assert body["limit"] == 3
    assert int(fourth.headers["retry-after"]) == 14 * 3600  # 10:00 now: her day ends at midnight
    async with session_factory() as session:
        queued = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel == "sms")
        )
    assert queued == 3  # the refused one queued nothing
    clock.advance(timedelta(days=1))
    assert (await sms(api, mother["id"])).status_code == 202
    # A texted template carries no results: only the fixed texts can be asked for.
    assert_problem(await sms(api, mother["id"], template="free text: your glucose is high"), 422)


async def test_texts_from_one_account_are_limited_per_hour(api: Api, app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.settings = settings.model_copy(update={"sms_per_account_per_hour": 2})
    first = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    second = await enrol(
        api,
        primary_butler_id=str(api.staff.butlers["butler1"].id),
        serial="003",
        phone="13900000003",
    )
    assert (await sms(api, first["id"])).status_code == 202
    assert (await sms(api, second["id"])).status_code == 202
    assert_problem(await sms(api, second["id"]), 429)
    assert (await sms(api, second["id"], who="admin")).status_code == 202


async def test_a_butler_texts_only_her_own_mothers(api: Api) -> None:
    theirs = await enrol(api, primary_butler_id=str(api.staff.butlers["butler2"].id))
    assert_problem(await sms(api, theirs["id"], who="butler1"), 404)
    assert_problem(await sms(api, theirs["id"], who="doctor"), 403)


@pytest.mark.postgres_only
async def test_concurrent_texts_never_exceed_the_limit(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    responses = await asyncio.gather(*(sms(api, mother["id"]) for _ in range(10)))
    assert Counter(r.status_code for r in responses) == Counter({202: 3, 429: 7})
