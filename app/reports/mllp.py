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

from app.reports.intake import IntakeContext, hl7_answer, hl7_control_id, process, record, store
from app.reports.repository import ReportRepository

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
) -> str:
    """Store, de-duplicate, process and record one message; return the ACK text."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    key = hl7_control_id(body) if body else None
    if key:
        async with factory() as db:
            earlier = await ReportRepository(db).seen(
                sender_id=client_id, channel="mllp", key=key, webhook_id=None
            )
        if earlier is not None and earlier.response_body:
            return earlier.response_body
    message_id = await store(
        factory,
        channel="mllp",
        sender_id=client_id,
        sender_name=client_name,
        body=raw,
        headers={},
        message_key=key,
        webhook_id=None,
        now=now,
    )
    if message_id is None:
        return hl7_answer(
            None, "AE", "The same message is still being processed.", now=now, state="received"
        ).body
    if body is None or "\x00" in body:
        answer = hl7_answer(None, "AR", "The message is not UTF-8 text.", now=now, state="rejected")
        async with factory() as db:
            await record(db, message_id, answer, now=now)
            await db.commit()
        return answer.body
    async with factory() as db:
        try:
            answer = await process(
                db,
                channel="mllp",
                body=body,
                sender_id=client_id,
                message_id=message_id,
                context=context,
                now=now,
            )
        except Exception:
            logger.exception("MLLP message processing failed")
            await db.rollback()
            answer = hl7_answer(
                None, "AE", "Internal error; the message is stored.", now=now, state="failed"
            )
        if answer.state != "processed":
            await db.rollback()
        await record(db, message_id, answer, now=now)
        await db.commit()
    return answer.body


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
                    )
                    writer.write(START + ack.encode() + END)
                    await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port)
