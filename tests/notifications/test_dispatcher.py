"""The outbox dispatcher: retries with backoff, in-app and SMS channels, reminders, and a
worker killed mid-delivery that loses nothing and texts nobody twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications import dispatcher
from app.notifications.models import OutboxMessage
from app.notifications.outbox import enqueue
from app.reports.repository import ReportRepository
from app.reports.service import remind_overdue_pickups
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import enrol
from tests.helpers.servers import ROOT, SmsGateway, free_port
from tests.helpers.visits import checked_in_mother, order_number


class FakeSms:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, *, to: str, text: str, key: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("gateway timeout")
        self.sent.append((to, text, key))


async def drain(factory: async_sessionmaker[AsyncSession], sms: Any, clock: FrozenClock) -> int:
    n = 0
    while await dispatcher.dispatch_one(factory, sms=sms, now=clock.now(), max_attempts=3):
        n += 1
    return n


async def states(factory: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with factory() as session:
        rows = await session.execute(select(OutboxMessage.topic, OutboxMessage.state))
        return {topic: state for topic, state in rows.all()}


async def test_a_report_ready_text_is_retried_then_sent_without_clinical_content(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    await Lab(api, clock).hl7(oru(control_id="D1", mrn=mother["mrn"], order=order_number(visit)))
    sms = FakeSms(failures=1)
    await drain(session_factory, sms, clock)
    got = await states(session_factory)
    assert got["report.ready"] == "delivered"  # in-app: the butler's list shows it
    assert got["visit.checked_in"] == "delivered"
    assert got["sms.report_ready"] == "pending"  # failed once; waits for its backoff
    assert sms.sent == []
    clock.advance(timedelta(seconds=3))
    await drain(session_factory, sms, clock)
    assert (await states(session_factory))["sms.report_ready"] == "delivered"
    ((to, text, key),) = sms.sent
    assert to == "13800138000"
    assert text == dispatcher.SMS_TEXTS["report_ready"]
    assert not any(ch.isdigit() for ch in text)  # no values, no dates, nothing clinical
    async with session_factory() as session:
        message = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.topic == "sms.report_ready")
        )
    assert message is not None
    assert (key, message.attempts, message.last_error) == (str(message.id), 2, "gateway timeout")
    listed = (
        await api.client.get(
            "/v1/notifications", headers=api.auth("admin"), params={"channel": "sms"}
        )
    ).json()
    assert [(n["topic"], n["state"]) for n in listed["items"]] == [
        ("sms.report_ready", "delivered")
    ]
    assert "13800138000" not in str(listed)


async def test_a_delivery_that_cannot_succeed_fails_after_its_attempts(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session:
        await enqueue(
            session, topic="sms.x", now=clock.now(), payload={"channel": "sms", "template": "nope"}
        )
        await enqueue(
            session,
            topic="sms.y",
            now=clock.now(),
            payload={"channel": "sms", "template": "report_ready"},
        )
        await session.commit()
    sms = FakeSms(failures=99)
    for _ in range(4):
        await drain(session_factory, sms, clock)
        clock.advance(timedelta(minutes=5))
    assert await states(session_factory) == {"sms.x": "failed", "sms.y": "failed"}


async def test_overdue_pickups_remind_the_butler_then_the_front_desk(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    await Lab(api, clock).hl7(oru(control_id="R1", mrn=mother["mrn"], order=order_number(visit)))

    async def remind() -> list[Any]:
        async with session_factory() as session:
            done = await remind_overdue_pickups(
                ReportRepository(session),
                now=clock.now(),
                today=clock.now().date(),
                after=timedelta(hours=2),
            )
            await session.commit()
            return done

    clock.advance(timedelta(minutes=90))
    assert await remind() == []
    clock.advance(timedelta(minutes=31))
    assert len(await remind()) == 1
    assert await remind() == []  # once per step
    clock.advance(timedelta(hours=2))
    assert len(await remind()) == 1
    clock.advance(timedelta(hours=5))
    assert await remind() == []  # two reminders, then it is on the front desk's list
    async with session_factory() as session:
        rows = await session.execute(
            select(OutboxMessage.channel)
            .where(OutboxMessage.topic == "report.pickup_overdue")
            .order_by(OutboxMessage.id)
        )
        assert [c for (c,) in rows.all()] == ["butler_app"]
    desk = (await api.client.get("/v1/worklist", headers=api.auth("frontdesk"))).json()["items"]
    assert [i["kind"] for i in desk] == ["report.pickup_overdue"]


@pytest.mark.postgres_only
async def test_a_killed_worker_loses_nothing_and_texts_nobody_twice(
    api: Api,
    clock: FrozenClock,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    mother = await enrol(api)
    async with session_factory() as session:
        for i in range(40):
            await enqueue(  # texts the desk sent (report-ready ones would be sent as one)
                session,
                topic="sms.call_back",
                now=clock.now(),
                mother_id=mother["id"],
                payload={"channel": "sms", "template": "call_back", "sent_by": "desk", "n": i},
            )
        await session.commit()
    SmsGateway.requests, SmsGateway.effects = [], Counter()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), SmsGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SMS_PROVIDER": "http",
        "SMS_HTTP_URL": f"http://127.0.0.1:{port}/sms",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
    }

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "dispatch"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def delivered() -> int:
        async with session_factory() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.state == "delivered", OutboxMessage.channel == "sms")
                )
                or 0
            )

    try:
        worker = start()
        for _ in range(300):
            if len(SmsGateway.requests) >= 8:
                break
            await asyncio.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # mid-delivery, no goodbye
        worker.wait(timeout=10)
        assert await delivered() < 40
        worker = start()
        for _ in range(300):
            if await delivered() == 40:
                break
            await asyncio.sleep(0.1)
        worker.terminate()
        worker.wait(timeout=10)
    finally:
        server.shutdown()
    assert await delivered() == 40
    async with session_factory() as session:
        ids = {
            str(i)
            for i in await session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.channel == "sms")
            )
        }
    assert set(SmsGateway.effects) == ids  # every text went out
    assert set(SmsGateway.effects.values()) == {1}  # and none went out twice
