"""An MLLP listener (HL7 over TCP: 0x0B message 0x1C 0x0D) feeding the same intake as HTTP.

MLLP carries no credentials: run it on the hospital's integration network only (it binds to
127.0.0.1 unless told otherwise), and name the API client whose messages it receives.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.reports.intake import IntakeContext, Taker, hl7_answer, hl7_control_id, store

logger = logging.getLogger("app.mllp")

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1_048_576


async def take(
    raw: bytes,
    *,
    factory: async_sessionmaker[AsyncSession],
    client_id: uuid.UUID,
    client_name: str,
    context: IntakeContext,
    now: datetime,
    taker: Taker | None = None,
) -> str:
    """Store, de-duplicate, process and record one message, as the HTTP intake does (the same
    taker: a failed or cut-off take is taken again by the resend); return the ACK text."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    if body is None or "\x00" in body:
        answer = hl7_answer(None, "AR", "The message is not UTF-8 text.", now=now, state="rejected")
        await store(
            factory,
            channel="mllp",
            sender_id=client_id,
            sender_name=client_name,
            body=raw,
            headers={},
            message_key=None,
            webhook_id=None,
            now=now,
            state=answer.state,
            outcome=answer.outcome,
        )
        return answer.body
    taker = taker or Taker(factory, context)
    async with factory() as session:
        taken = await taker.take(
            session,
            channel="mllp",
            raw=raw,
            body=body,
            sender_id=client_id,
            sender_name=client_name,
            headers={},
            key=hl7_control_id(body),
            webhook_id=None,
            now=now,
        )
        await session.commit()
    return taken.answer.body


async def _safe_take(raw: bytes, **kw: Any) -> str:
    """A broken take (the database away, say) still answers AE, so the sender resends."""
    try:
        return await take(raw, **kw)
    except Exception:
        logger.exception("MLLP message could not be taken in")
        now = kw["now"]
        return hl7_answer(None, "AE", "Not stored; send it again.", now=now, state="failed").body


async def serve(
    *,
    host: str,
    port: int,
    factory: async_sessionmaker[AsyncSession],
    client_id: uuid.UUID,
    client_name: str,
    context: IntakeContext,
    now: Callable[[], datetime],
) -> asyncio.Server:
    taker = Taker(factory, context)  # one per listener: it knows what it is processing

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                if len(buffer) > MAX_MESSAGE + 3 and END not in buffer:
                    logger.warning("MLLP frame too large; closing the connection")
                    return
                while (start := buffer.find(START)) >= 0 and (end := buffer.find(END, start)) >= 0:
                    raw, buffer = buffer[start + 1 : end], buffer[end + 2 :]
                    ack = await _safe_take(
                        raw,
                        factory=factory,
                        client_id=client_id,
                        client_name=client_name,
                        context=context,
                        now=now(),
                        taker=taker,
                    )
                    writer.write(START + ack.encode() + END)
                    await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port)
