"""The dispatcher and the clinic's other writes: the SMS gateway is called with no database
transaction open (a slow gateway holds up nobody's write, nor a staff text to the same mother),
and the texts nobody typed (report-ready, the OGTT's preparation) share her daily count with
the staff's, the last text of her day kept for the staff."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications import dispatcher
from app.notifications.models import OutboxMessage
from app.notifications.outbox import enqueue
from app.notifications.preparation import load_text
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.visits import checked_in_mother, order_number

TEXTS = dispatcher.MotherTexts.from_settings(Settings())  # 30 minutes, 3 a day
PROMPTLY = 3.0  # seconds; SQLite's busy_timeout is 10 s, the gateway's timeout 10 s


class HangingSms:
    """A gateway that does not answer until it is told to."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.answer = asyncio.Event()
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, *, to: str, text: str, key: str) -> None:
        self.inside.set()
        await self.answer.wait()
        self.sent.append((to, text, key))


class Sms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, *, to: str, text: str, key: str) -> None:
        self.sent.append((to, text, key))


async def drain(
    factory: async_sessionmaker[AsyncSession],
    sms: Any,
    clock: FrozenClock,
    texts: dispatcher.MotherTexts = TEXTS,
    **kw: Any,
) -> None:
    while await dispatcher.dispatch_one(
        factory, sms=sms, now=clock.now(), max_attempts=3, texts=texts, **kw
    ):
        pass


async def sms_states(factory: async_sessionmaker[AsyncSession], topic: str) -> Counter[str]:
    async with factory() as session:
        return Counter(
            await session.scalars(select(OutboxMessage.state).where(OutboxMessage.topic == topic))
        )


async def _report_ready_text_in_the_gateway(
    api: Api, clock: FrozenClock, factory: async_sessionmaker[AsyncSession], **kw: Any
) -> tuple[dict[str, Any], HangingSms, asyncio.Task[None]]:
    """Her report-ready text, the dispatcher inside the gateway call with it."""
    mother, visit = await checked_in_mother(api)
    await Lab(api, clock).hl7(oru(control_id="G1", mrn=mother["mrn"], order=order_number(visit)))
    sms = HangingSms()
    worker = asyncio.create_task(drain(factory, sms, clock, **kw))
    await asyncio.wait_for(sms.inside.wait(), 5)
    return mother, sms, worker


async def _finish(sms: HangingSms, worker: asyncio.Task[None]) -> None:
    sms.answer.set()
    await asyncio.wait_for(worker, 15)


async def test_a_write_goes_through_while_the_gateway_hangs(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """As the CLI worker runs it (no in-process lock): nothing of the database is held."""
    _, sms, worker = await _report_ready_text_in_the_gateway(api, clock, session_factory)
    try:
        other = await asyncio.wait_for(enrol(api, serial="311", phone="13800000311"), PROMPTLY)
        assert other["id"]
    finally:
        await _finish(sms, worker)
    assert len(sms.sent) == 1
    assert await sms_states(session_factory, "sms.report_ready") == Counter(delivered=1)


async def test_with_the_apps_write_lock_a_write_goes_through_while_the_gateway_hangs(
    api: Api, app: FastAPI, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """As the web process runs it: the dispatcher takes the app's write lock (SQLite) for its
    short transactions only, never across the gateway call."""
    lock = app.state.write_lock
    _, sms, worker = await _report_ready_text_in_the_gateway(
        api, clock, session_factory, write_lock=lock
    )
    try:
        assert lock is None or not lock.locked()
        other = await asyncio.wait_for(enrol(api, serial="312", phone="13800000312"), PROMPTLY)
        assert other["id"]
    finally:
        await _finish(sms, worker)
    assert len(sms.sent) == 1


async def test_a_staff_text_to_her_goes_through_while_her_report_ready_text_hangs(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Her daily counter (PostgreSQL: its row lock) is not held across the gateway call."""
    mother, sms, worker = await _report_ready_text_in_the_gateway(api, clock, session_factory)
    try:
        sent = await asyncio.wait_for(
            api.client.post(
                f"/v1/mothers/{mother['id']}/sms",
                headers=api.auth("frontdesk"),
                json={"template": "call_back"},
            ),
            PROMPTLY,
        )
        assert sent.status_code == 202, sent.text
    finally:
        await _finish(sms, worker)
    # The automatic text and the desk's: two of her three; the desk has one left.
    path = f"/v1/mothers/{mother['id']}/sms"
    assert (
        await api.client.post(path, headers=api.auth("frontdesk"), json={"template": "call_back"})
    ).status_code == 202
    assert_problem(
        await api.client.post(path, headers=api.auth("frontdesk"), json={"template": "call_back"}),
        429,
    )


async def test_a_text_claimed_by_a_worker_that_died_is_sent_again_with_its_key(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Delivered with no transaction open: a worker that dies inside the gateway call leaves
    the row claimed; after the lease another sends it with the same Idempotency-Key, and her
    count is not taken twice."""
    mother, _, worker = await _report_ready_text_in_the_gateway(api, clock, session_factory)
    worker.cancel()  # dies inside the call, nothing recorded
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    again = Sms()
    await drain(session_factory, again, clock)
    assert again.sent == []  # claimed: not sent twice at once
    clock.advance(dispatcher.CLAIM_LEASE + timedelta(seconds=1))
    await drain(session_factory, again, clock)
    ((_, _, key),) = again.sent
    async with session_factory() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.topic == "sms.report_ready")
        )
    assert row is not None
    assert (key, row.state) == (str(row.id), "delivered")
    path = f"/v1/mothers/{mother['id']}/sms"
    for _ in range(2):  # counted once: the desk still has two of her three
        assert (
            await api.client.post(
                path, headers=api.auth("frontdesk"), json={"template": "call_back"}
            )
        ).status_code == 202
    assert_problem(
        await api.client.post(path, headers=api.auth("frontdesk"), json={"template": "call_back"}),
        429,
    )


async def test_the_last_text_of_her_day_is_kept_for_the_staff(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Two texts today (per_day - 1): the report-ready text is suppressed, and the desk can
    still send her the third (a call-back after a result)."""
    mother, visit = await checked_in_mother(api)
    path = f"/v1/mothers/{mother['id']}/sms"
    desk = api.auth("frontdesk")
    sms = Sms()
    # One text today: the automatic one still goes (her count becomes 2 = per_day - 1).
    assert (
        await api.client.post(path, headers=desk, json={"template": "visit_reminder"})
    ).status_code == 202
    await Lab(api, clock).hl7(oru(control_id="T1", mrn=mother["mrn"], order=order_number(visit)))
    await drain(session_factory, sms, clock)
    assert await sms_states(session_factory, "sms.report_ready") == Counter(delivered=1)
    # Two today: the next window's report-ready text is held back.
    clock.advance(TEXTS.report_ready_window + timedelta(minutes=1))
    await Lab(api, clock).hl7(
        oru(control_id="T2", mrn=mother["mrn"], order=order_number(visit), filler="F-2")
    )
    await drain(session_factory, sms, clock)
    assert await sms_states(session_factory, "sms.report_ready") == Counter(
        delivered=1, suppressed=1
    )
    async with session_factory() as session:
        held = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.state == "suppressed")
        )
    assert held is not None
    assert "sms_per_mother_per_day" in (held.last_error or "")
    assert "staff" in (held.last_error or "")
    # The slot kept: the desk's call-back goes.
    assert (
        await api.client.post(path, headers=desk, json={"template": "call_back"})
    ).status_code == 202
    assert_problem(await api.client.post(path, headers=desk, json={"template": "call_back"}), 429)


async def test_with_one_text_a_day_the_automatic_ones_are_never_sent(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """per_day 1: that one text is the staff's (her butler has the report-ready notice and
    calls her); an automatic text would leave nobody able to text her a call-back."""
    mother, visit = await checked_in_mother(api)
    await Lab(api, clock).hl7(oru(control_id="O1", mrn=mother["mrn"], order=order_number(visit)))
    sms = Sms()
    one = dispatcher.MotherTexts(
        report_ready_window=TEXTS.report_ready_window, per_day=1, tz=TEXTS.tz
    )
    await drain(session_factory, sms, clock, texts=one)
    assert sms.sent == []
    assert await sms_states(session_factory, "sms.report_ready") == Counter(suppressed=1)
    assert await sms_states(session_factory, "report.ready") == Counter(delivered=1)


async def _preparation_text(
    factory: async_sessionmaker[AsyncSession], clock: FrozenClock, mother_id: str
) -> None:
    """What preparation.queue_ogtt_preparation enqueues for her visit tomorrow."""
    text = load_text()
    async with factory() as session:
        await enqueue(
            session,
            topic=text.topic,
            now=clock.now(),
            mother_id=uuid.UUID(mother_id),
            payload={"channel": "sms", "template": text.template, "visit_id": "v"},
        )
        await session.commit()


async def test_the_ogtt_preparation_text_counts_and_is_never_held_back(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}/sms"
    desk = api.auth("frontdesk")
    sms = Sms()
    await _preparation_text(session_factory, clock, mother["id"])
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 1
    # It counted: the desk has two of her three left.
    for _ in range(2):
        assert (
            await api.client.post(path, headers=desk, json={"template": "call_back"})
        ).status_code == 202
    assert_problem(await api.client.post(path, headers=desk, json={"template": "call_back"}), 429)
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 3
    # Her day is full, and the fasting instructions for tomorrow still go out (one per visit).
    clock.advance(timedelta(hours=1))
    await _preparation_text(session_factory, clock, mother["id"])
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 4
    assert await sms_states(session_factory, "visit.ogtt_preparation") == Counter(delivered=2)


async def test_after_the_preparation_text_a_report_ready_text_keeps_the_staffs_slot(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    sms = Sms()
    await _preparation_text(session_factory, clock, mother["id"])
    assert (
        await api.client.post(
            f"/v1/mothers/{mother['id']}/sms",
            headers=api.auth("frontdesk"),
            json={"template": "call_back"},
        )
    ).status_code == 202
    await drain(session_factory, sms, clock)  # the preparation text and the desk's: two
    await Lab(api, clock).hl7(oru(control_id="P1", mrn=mother["mrn"], order=order_number(visit)))
    await drain(session_factory, sms, clock)
    assert await sms_states(session_factory, "sms.report_ready") == Counter(suppressed=1)
    assert len(sms.sent) == 2
