"""ETag and ``?wait=`` long-poll for the public displays (the station board, her own page).

Like the butler's and the worklist's: the answer's ETag is a digest of its body; with
If-None-Match equal to it the request is held, with no database connection, until one of the
stations it shows moves (the notifier is woken after commit here, by NOTIFY from other
processes) or the wait runs out, and then built again: unchanged, a 304. A wait also ends when
the next ticket becomes due by the clock alone (a timed draw's window opens), so a display
moves then without any queue moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.etag import none_match
from app.feed.fast_path import MAX_WAIT, hold_for
from app.feed.notifier import Notifier
from app.queues.changes import station_wake_key

__all__ = ["MAX_WAIT", "Built", "long_poll"]

CACHE_CONTROL = "no-cache"


@dataclass(frozen=True, slots=True)
class Built:
    """One answer: the body, the stations whose moves change it, and when the clock alone
    next changes it (None: only a queue's move does)."""

    body: BaseModel
    stations: frozenset[uuid.UUID]
    changes_at: datetime | None = None


def etag_of(body: bytes, prefix: str) -> str:
    return f'W/"{prefix}-{hashlib.sha256(body).hexdigest()[:20]}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    return none_match(if_none_match, etag)  # weak comparison, lists and "*"


async def _hold(events: Iterable[asyncio.Event], seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        if waiters:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(seconds)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def long_poll(
    request: Request,
    session: AsyncSession,
    clock: Clock,
    *,
    build: Callable[[datetime], Awaitable[Built]],
    prefix: str,
    wait: int,
    if_none_match: str | None,
) -> Response:
    """The answer ``build`` makes at the moment given, with ETag, 304 and the long-poll."""
    notifier: Notifier = request.app.state.notifier
    built = await build(clock.now())
    body = built.body.model_dump_json().encode()
    etag = etag_of(body, prefix)
    if _matches(if_none_match, etag) and wait > 0:
        # Subscribe, then build again: a move committed between the first build and the
        # subscription is not missed (the second build sees it).
        events = [notifier.subscribe(station_wake_key(s)) for s in sorted(built.stations)]
        built = await build(clock.now())
        body = built.body.model_dump_json().encode()
        etag = etag_of(body, prefix)
        if _matches(if_none_match, etag):
            seconds = hold_for(wait)
            if built.changes_at is not None:
                seconds = min(seconds, max(0.0, (built.changes_at - clock.now()).total_seconds()))
            await session.rollback()  # hold no connection while waiting
            with contextlib.suppress(TimeoutError):
                await _hold(events, seconds)
            built = await build(clock.now())
            body = built.body.model_dump_json().encode()
            etag = etag_of(body, prefix)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
