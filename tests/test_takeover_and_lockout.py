"""Races found by review: parallel failed logins and the lockout, an admin unlock, and the take-
over of a lab message whose server died (once, by one resend, never under a live take)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.notifications.models import OutboxMessage
from app.reports import intake
from app.reports.intake import content_hash, store
from app.reports.models import CriticalAlert, InboundMessage, ReportEvent
from tests.helpers.api import Api
from tests.helpers.factories import PASSWORD
from tests.helpers.lab import Lab
from tests.helpers.messages import fhir_bundle, oru
from tests.helpers.visits import checked_in_mother, order_number


async def attempt(api: Api, username: str, password: str) -> Any:
    return await api.client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )


async def _count(factory: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# 1. Login lockout: check-then-count race ---------------------------------------------------


@pytest.mark.postgres_only
async def test_concurrent_wrong_passwords_get_no_more_guesses_than_the_limit(api: Api) -> None:
    # 8 < the pool's 10 connections, so this shows the race alone (no pool starvation).
    responses = await asyncio.gather(
        *(attempt(api, "frontdesk", f"wrong-password-{i}") for i in range(8))
    )
    statuses = Counter(r.status_code for r in responses)
    # LOGIN_MAX_FAILURES = 5: at most 5 passwords may be tried (401); the rest must be 429.
    assert statuses[401] <= 5, statuses


# 2. Login failure path takes a second pooled connection while holding the first -----------


@pytest.mark.postgres_only
async def test_a_burst_of_wrong_passwords_does_not_starve_the_pool(api: Api) -> None:
    # 20 > pool_size + max_overflow (5 + 5): were a failing login to hold its request's
    # connection while asking for another for its counter, all would wait, then 500.
    responses = await asyncio.wait_for(
        asyncio.gather(*(attempt(api, "frontdesk", f"wrong-password-{i}") for i in range(20))),
        timeout=60,
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {401, 429}, statuses


# 3. "Ask an admin" cannot help: a new password does not lift the lockout -----------------


async def test_an_admin_password_reset_lets_the_locked_user_in(api: Api) -> None:
    for _ in range(5):
        assert (await attempt(api, "frontdesk", "wrong-password-1")).status_code == 401
    assert (await attempt(api, "frontdesk", PASSWORD)).status_code == 429
    user_id = str(api.staff.users["frontdesk"].id)
    read = await api.client.get(f"/v1/users/{user_id}", headers=api.auth("admin"))
    new_password = "a-brand-new-password-2026"
    changed = await api.client.patch(
        f"/v1/users/{user_id}",
        headers={**api.auth("admin"), "If-Match": read.headers["etag"]},
        json={"password": new_password},
    )
    assert changed.status_code == 200, changed.text
    # The 429 says "Try again later, or ask an admin" - but there is nothing an admin can do.
    assert (await attempt(api, "frontdesk", new_password)).status_code == 200


# 4. FHIR take-over: the replay drops the webhook-id, so the next resend takes it again ----


def _critical_bundle(order: str, mrn: str) -> str:
    data = json.loads(fhir_bundle(order=order, mrn=mrn))
    data["entry"][1]["resource"]["valueQuantity"]["value"] = 25.0  # fasting glucose >= 22
    return json.dumps(data)


async def test_a_taken_over_fhir_delivery_is_not_processed_and_paged_again(
    api: Api,
    lab: Lab,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    mother, visit = await checked_in_mother(api)
    body = _critical_bundle(order_number(visit, "ogtt"), mother["mrn"])
    assert api.staff.lab_client is not None
    # Stored by a server that then died: "received", unlocked.
    await store(
        session_factory,
        channel="fhir",
        sender_id=api.staff.lab_client.id,
        sender_name="Hospital LIS",
        body=body.encode(),
        headers={},
        message_key=None,
        webhook_id="wh-dead-1",
        now=clock.now(),
        content_hash=content_hash("fhir", body.encode()),
    )
    clock.advance(timedelta(seconds=6))
    first = await lab.fhir(body, msg_id="wh-dead-1")  # the resend takes it over
    assert first.status_code == 200, first.text
    (alert,) = (await api.client.get("/v1/alerts", headers=api.auth("butler1"))).json()["items"]
    ack = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledge",
        headers=api.auth("doctor"),
        json={"read_back": "glucose 1.9 mmol/L", "action_taken": "Called her in"},
    )
    assert ack.status_code == 200, ack.text
    # The LIS did not get the first ACK and sends the same webhook-id once more.
    clock.advance(timedelta(seconds=30))
    again = await lab.fhir(body, msg_id="wh-dead-1")
    pages = await _count(session_factory, OutboxMessage, OutboxMessage.topic == "alert.critical")
    processed = await _count(session_factory, InboundMessage, InboundMessage.state == "processed")
    assert (pages, processed, again.headers.get("idempotent-replayed")) == (1, 1, "true")


# 5. Two resends of a dead message at once both take it over -------------------------------


@pytest.mark.postgres_only
async def test_two_simultaneous_resends_take_a_dead_message_over_once(
    api: Api,
    lab: Lab,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="DIED-2", mrn=mother["mrn"], order=order_number(visit))
    assert api.staff.lab_client is not None
    await store(
        session_factory,
        channel="hl7v2",
        sender_id=api.staff.lab_client.id,
        sender_name="Hospital LIS",
        body=body.encode(),
        headers={},
        message_key="DIED-2",
        webhook_id=None,
        now=clock.now(),
        content_hash=content_hash("hl7v2", body.encode()),
    )
    clock.advance(timedelta(seconds=6))
    # Make the interleaving deterministic: both resends look before either stores its take.
    real_check = intake.Taker.being_taken
    checked, both = [0], asyncio.Event()

    async def check_then_wait(*args: Any, **kwargs: Any) -> bool:
        taken = await real_check(*args, **kwargs)
        checked[0] += 1
        if checked[0] == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return taken

    monkeypatch.setattr(intake.Taker, "being_taken", check_then_wait)
    acks = await asyncio.gather(lab.hl7(body), lab.hl7(body))
    takes = await _count(
        session_factory,
        InboundMessage,
        InboundMessage.message_key == "DIED-2",
        InboundMessage.replay_of.is_not(None),
    )
    events = await _count(session_factory, ReportEvent, ReportEvent.kind == "lab_status")
    assert (takes, events) == (1, 1), acks


# 6. A live first take that reaches its row lock after the grace is processed twice --------


@pytest.mark.postgres_only
async def test_a_live_take_that_starts_late_is_not_processed_twice(
    api: Api,
    lab: Lab,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mother, visit = await checked_in_mother(api)
    critical = ["OBX|1|NM|718-7^Hemoglobin^LN||62|g/L|110-150|LL|||F"]
    body = oru(control_id="SLOW-1", mrn=mother["mrn"], order=order_number(visit), obx=critical)
    stored, gate = asyncio.Event(), asyncio.Event()
    real_store = intake.store
    calls = {"n": 0}

    async def slow_store(*args: Any, **kwargs: Any) -> Any:
        message_id = await real_store(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # the first take: stored, then slow to start (pool wait, GC, ...)
            stored.set()
            await gate.wait()
        return message_id

    monkeypatch.setattr(intake, "store", slow_store)
    first = asyncio.create_task(lab.hl7(body))
    await asyncio.wait_for(stored.wait(), 10)
    clock.advance(timedelta(seconds=6))
    resend = await lab.hl7(body)  # the LIS timed out and sent it again
    gate.set()
    original = await first
    processed = await _count(
        session_factory,
        InboundMessage,
        InboundMessage.message_key == "SLOW-1",
        InboundMessage.state == "processed",
    )
    alerts = await _count(session_factory, CriticalAlert)
    assert processed == 1, (original, resend, alerts)
