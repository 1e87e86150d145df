"""HL7 over MLLP reaches the same intake: framed ACKs, storage, de-duplication."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.reports import mllp
from app.reports.intake import IntakeContext, thresholds_from
from app.reports.models import InboundMessage, LabReport
from tests.helpers.api import Api
from tests.helpers.messages import oru
from tests.helpers.visits import checked_in_mother, order_number


async def exchange(port: int, *writes: bytes, acks: int) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in writes:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.01)
    answers = []
    for _ in range(acks):
        data = await reader.readuntil(mllp.END)
        assert data.startswith(mllp.START)
        answers.append(data[1:-2].decode())
    writer.close()
    return answers


async def test_mllp_messages_are_acked_stored_and_deduplicated(
    api: Api, app: FastAPI, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    server = await mllp.serve(
        host="127.0.0.1",
        port=0,
        factory=session_factory,
        client_id=api.staff.lab_client.id,  # type: ignore[union-attr]
        client_name="Test LIS",
        context=IntakeContext(
            tz=app.state.settings.tz,
            thresholds=thresholds_from(None),
            ack_within=timedelta(minutes=15),
        ),
        now=clock.now,
    )
    port = server.sockets[0].getsockname()[1]
    message = oru(control_id="M-1", mrn=mother["mrn"], order=order_number(visit)).encode()
    # Two frames in one write and one frame split over two writes are both handled.
    async with server:
        both = mllp.START + message + mllp.END + mllp.START + message + mllp.END
        first, duplicate = await exchange(port, both, acks=2)
        (garbage,) = await exchange(port, mllp.START + b"hel", b"lo" + mllp.END, acks=1)
    assert "MSA|AA|M-1" in first
    assert duplicate == first
    assert "MSA|AR" in garbage
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(LabReport)) == 1
        states = list(
            await session.scalars(select(InboundMessage.state).order_by(InboundMessage.id))
        )
    assert states == ["processed", "rejected"]


async def test_mllp_takes_again_a_message_whose_take_died(
    api: Api, app: FastAPI, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from app.reports.intake import content_hash, store

    mother, visit = await checked_in_mother(api)
    assert api.staff.lab_client is not None
    message = oru(control_id="M-DIED", mrn=mother["mrn"], order=order_number(visit)).encode()
    # Stored by a listener that died before processing it.
    await store(
        session_factory,
        channel="mllp",
        sender_id=api.staff.lab_client.id,
        sender_name="Test LIS",
        body=message,
        headers={},
        message_key="M-DIED",
        webhook_id=None,
        now=clock.now(),
        content_hash=content_hash("mllp", message),
    )
    context = IntakeContext(
        tz=app.state.settings.tz, thresholds=thresholds_from(None), ack_within=timedelta(minutes=15)
    )
    kwargs = {
        "factory": session_factory,
        "client_id": api.staff.lab_client.id,
        "client_name": "Test LIS",
        "context": context,
    }
    soon = await mllp.take(message, now=clock.now(), **kwargs)  # type: ignore[arg-type]
    assert "MSA|AE" in soon  # it may still be starting: "send it again later"
    clock.advance(timedelta(seconds=6))
    later = await mllp.take(message, now=clock.now(), **kwargs)  # type: ignore[arg-type]
    assert "MSA|AA|M-DIED" in later
    async with session_factory() as session:
        reports = await session.scalar(select(func.count()).select_from(LabReport))
    assert reports == 1
