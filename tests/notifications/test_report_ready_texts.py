"""Texts the mother can bear: the lab's automatic "report ready" texts are one per mother per
window, and count in her daily limit with the staff's texts; over it they are recorded as
suppressed, never lost silently; the butler's and the doctors' notices are never held back."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications import dispatcher
from app.notifications.models import OutboxMessage
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.problems import assert_problem
from tests.helpers.visits import checked_in_mother, order_number

TEXTS = dispatcher.MotherTexts.from_settings(Settings())  # 30 minutes, 3 a day, her clinic's day


class SlowSms:
    """A gateway that takes a moment: two dispatchers are really in flight at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, *, to: str, text: str, key: str) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append((to, text, key))


def bundle(*, mrn: str, order: str, reports: int, tag: str, critical: bool = False) -> str:
    """One ORU^R01 with ``reports`` reports for one order (the lab's panels of a morning)."""
    segments = [
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|{tag}|P|2.5",
        f"PID|1||{mrn}^^^HOSP^MR||TEST^MOTHER",
    ]
    for i in range(reports):
        value = "40" if critical and i == 0 else "210"  # platelets 40: a critical value
        segments += [
            f"OBR|{i + 1}|{order}|{tag}-{i}|P{i}^Panel {i}^L|||20261128080000"
            "|||||||||||||||20261128092500|||F",
            f"OBX|1|NM|777-3^Platelets^LN||{value}|10*9/L|125-350|N|||F",
        ]
    return "\r".join(segments) + "\r"


async def drain(factory: async_sessionmaker[AsyncSession], sms: Any, clock: FrozenClock) -> None:
    while await dispatcher.dispatch_one(
        factory, sms=sms, now=clock.now(), max_attempts=3, texts=TEXTS
    ):
        pass


async def her_texts(factory: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.state).where(OutboxMessage.topic == "sms.report_ready")
        )
        return Counter(rows)


async def test_a_25_report_bundle_is_one_text_and_the_window_holds(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    lab, sms, order = Lab(api, clock), SlowSms(), order_number(visit)
    assert await lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=25, tag="B1")) == (
        "AA",
        "B1",
    )
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 1
    assert await her_texts(session_factory) == Counter(delivered=1, coalesced=24)
    # Her butler still hears of every report, at once.
    async with session_factory() as session:
        ready = await session.scalars(
            select(OutboxMessage.state).where(OutboxMessage.topic == "report.ready")
        )
        assert Counter(ready) == Counter(delivered=25)

    clock.advance(timedelta(minutes=20))  # a second bundle inside the window: no new text
    await lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=3, tag="B2"))
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 1
    clock.advance(timedelta(minutes=11))  # 31 minutes after her text: one more
    await lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=2, tag="B3"))
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 2
    assert await her_texts(session_factory) == Counter(delivered=2, coalesced=28)
    listed = await api.client.get(
        "/v1/notifications",
        params={"state": "coalesced", "limit": 50},
        headers=api.auth("admin"),
    )
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 28
    assert all("sent as one" in (n["last_error"] or "") for n in listed.json()["items"])


async def test_her_texts_go_through_the_limiter_with_the_staffs(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    lab, sms, order = Lab(api, clock), SlowSms(), order_number(visit)
    await lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=4, tag="L1"))
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 1
    # The automatic text was counted: the desk has two of her three left today.
    path = f"/v1/mothers/{mother['id']}/sms"
    for _ in range(2):
        sent = await api.client.post(
            path, headers=api.auth("frontdesk"), json={"template": "call_back"}
        )
        assert sent.status_code == 202
    refused = await api.client.post(
        path, headers=api.auth("frontdesk"), json={"template": "call_back"}
    )
    assert_problem(refused, 429)


async def test_a_text_over_her_daily_limit_is_suppressed_and_said_so(
    api: Api,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mother, visit = await checked_in_mother(api)
    path = f"/v1/mothers/{mother['id']}/sms"
    for _ in range(3):  # the desk used her three texts of the day
        sent = await api.client.post(
            path, headers=api.auth("frontdesk"), json={"template": "visit_reminder"}
        )
        assert sent.status_code == 202
    sms = SlowSms()
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 3
    # A bundle with a critical value: her text is held back, the page is not.
    await Lab(api, clock).hl7(
        bundle(mrn=mother["mrn"], order=order_number(visit), reports=5, tag="C1", critical=True)
    )
    with caplog.at_level("WARNING", logger="app.dispatcher"):
        await drain(session_factory, sms, clock)
    assert len(sms.sent) == 3
    assert await her_texts(session_factory) == Counter(suppressed=1, coalesced=4)
    assert any("suppressed" in r.getMessage() for r in caplog.records)
    listed = await api.client.get(
        "/v1/notifications", params={"state": "suppressed"}, headers=api.auth("admin")
    )
    (row,) = listed.json()["items"]
    assert row["mother_id"] == mother["id"]
    assert "sms_per_mother_per_day" in row["last_error"]
    async with session_factory() as session:
        page = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.topic == "alert.critical")
        )
    assert page is not None
    assert page.state == "delivered"
    assert page.created_at == clock.now()  # paged in the lab's own transaction, not later
    # Her new day: the limiter's day is the clinic's; the next report's text goes out.
    clock.advance(timedelta(days=1))
    await Lab(api, clock).hl7(
        bundle(mrn=mother["mrn"], order=order_number(visit), reports=1, tag="C2")
    )
    await drain(session_factory, sms, clock)
    assert len(sms.sent) == 4


@pytest.mark.postgres_only
async def test_two_lab_messages_at_once_for_one_mother_are_one_text(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Real concurrency on PostgreSQL: two lab deliveries at once, then two dispatchers at
    once, each in its own connection, with a gateway slow enough that both are in flight."""
    mother, visit = await checked_in_mother(api)
    lab, order = Lab(api, clock), order_number(visit)
    acks = await asyncio.gather(
        lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=6, tag="P1")),
        lab.hl7(bundle(mrn=mother["mrn"], order=order, reports=6, tag="P2")),
    )
    assert sorted(a for a, _ in acks) == ["AA", "AA"]
    sms = SlowSms(delay=0.2)
    for _ in range(10):  # rows put back while another dispatcher decided come round again
        await asyncio.gather(*(drain(session_factory, sms, clock) for _ in range(3)))
        if "pending" not in await her_texts(session_factory):
            break
        clock.advance(timedelta(seconds=3))
    assert len(sms.sent) == 1
    assert await her_texts(session_factory) == Counter(delivered=1, coalesced=11)
