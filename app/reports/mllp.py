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
    taker = taker or Taker(factory, context)
    async with factory() as session:
        taken = await taker.take(
            session,
            channel="mllp",
            raw=raw,
            sender_id=client_id,
            sender_name=client_name,
            headers={},
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
        return hl7_answer(
            None,
            "AE",
            "Not stored; send it again.",
            now=now,
            state="failed",
            control_id=hl7_control_id(raw),
        ).body


async def refuse_oversized(
    head: bytes,
    size: int,
    *,
    factory: async_sessionmaker[AsyncSession],
    client_id: uuid.UUID,
    client_name: str,
    now: datetime,
) -> str:
    """A frame over the limit is answered AR (echoing its MSH-10) and its head is kept for
    the integration engineer, instead of the connection being reset with no answer."""
    text = (
        f"The MLLP frame of {size:,} bytes is over the {MAX_MESSAGE:,}-byte limit; split the "
        "report or send the document by reference (RP)."
    )
    answer = hl7_answer(
        None, "AR", text, now=now, state="rejected", control_id=hl7_control_id(head)
    )
    await store(
        factory,
        channel="mllp",
        sender_id=client_id,
        sender_name=client_name,
        body=head,
        headers={"mllp-frame-bytes": str(size), "kept-bytes": str(len(head))},
        message_key=None,
        webhook_id=None,
        now=now,
        state=answer.state,
        outcome=answer.outcome,
    )
    return answer.body


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

    async def answer(raw: bytes) -> bytes:
        ack = await _safe_take(
            raw,
            factory=factory,
            client_id=client_id,
            client_name=client_name,
            context=context,
            now=now(),
            taker=taker,
        )
        return START + ack.encode() + END

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        head: bytes | None = None  # the start of a frame over the limit, while skipping it
        skipped = 0
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                while True:
                    if head is not None:  # skip to the end of the oversized frame
                        end = buffer.find(END)
                        if end < 0:
                            keep = 1 if buffer.endswith(END[:1]) else 0
                            skipped += len(buffer) - keep
                            buffer = buffer[len(buffer) - keep :]
                            break
                        skipped += end
                        buffer = buffer[end + 2 :]
                        try:
                            ack = await refuse_oversized(
                                head,
                                skipped,
                                factory=factory,
                                client_id=client_id,
                                client_name=client_name,
                                now=now(),
                            )
                        except Exception:
                            logger.exception("an oversized MLLP frame could not be stored")
                            ack = hl7_answer(
                                None,
                                "AE",
                                "Not stored; send it again.",
                                now=now(),
                                state="failed",
                                control_id=hl7_control_id(head),
                            ).body
                        writer.write(START + ack.encode() + END)
                        await writer.drain()
                        head, skipped = None, 0
                        continue
                    start = buffer.find(START)
                    if start < 0:
                        buffer = b""  # bytes outside a frame mean nothing
                        break
                    end = buffer.find(END, start)
                    if end < 0:
                        if len(buffer) - start - 1 > MAX_MESSAGE:
                            logger.warning("MLLP frame over the limit; answering AR")
                            head = buffer[start + 1 : start + 1 + MAX_MESSAGE]
                            keep = 1 if buffer.endswith(END[:1]) else 0  # END split across reads
                            skipped = len(buffer) - start - 1 - keep
                            buffer = buffer[len(buffer) - keep :]
                        else:
                            buffer = buffer[start:]
                        break
                    raw, buffer = buffer[start + 1 : end], buffer[end + 2 :]
                    if len(raw) > MAX_MESSAGE:
                        head, skipped = raw[:MAX_MESSAGE], len(raw)
                        buffer = END + buffer  # let the skipping branch answer it
                        continue
                    writer.write(await answer(raw))
                    await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port)
