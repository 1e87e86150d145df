"""The change feed as Server-Sent Events: the events of GET /v1/me/events, pushed as they commit.

A stream holds no database connection while it waits, and reads nothing until a change wakes
it (a lost notification is caught by the process's version sweep, one query every 15 s for all
streams). Each read opens a short session of its own: the request's session is committed and
closed before the first byte of the stream leaves.
The stream ends on its own after ``lifetime`` seconds; the phone's EventSource reconnects with
``Last-Event-ID`` and continues without a gap. The token is checked again before every read
after the first and at every heartbeat (against the token cache's revocation epoch: no query
unless something was revoked), so a logout or a revocation ends the stream within one
heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.feed.models import FeedEvent
from app.feed.notifier import Notifier
from app.feed.repository import FeedRepository
from app.feed.schemas import FeedEventPublic

HEARTBEAT_SECONDS = 15.0
RECONNECT_MILLISECONDS = 3000
PAGE = 200


def public_event(e: FeedEvent) -> FeedEventPublic:
    return FeedEventPublic(
        seq=e.seq,
        cursor=str(e.seq),
        kind=e.kind,
        ref_type=e.ref_type,
        ref_id=e.ref_id,
        created_at=e.created_at,
    )


def frame(data: str, *, event: str, event_id: int | None = None) -> bytes:
    """One SSE message. ``data`` is one line of JSON (it never holds a newline)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


async def feed_stream(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    butler_id: uuid.UUID,
    after: int,
    still_allowed: Callable[[], Awaitable[bool]],
    lifetime: float,
    heartbeat: float | None = None,
) -> AsyncIterator[bytes]:
    heartbeat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n".encode()
    cursor = after
    deadline = time.monotonic() + lifetime
    read = True
    while True:
        if read:
            # Take the wake-up before reading, so that a change committed after the read
            # wakes us.
            woken = notifier.subscribe(butler_id)
            async with session_factory() as session:
                repo = FeedRepository(session)
                current = await repo.version(butler_id)
                events = (
                    await repo.events_after(butler_id, cursor, PAGE) if current > cursor else []
                )
            if current > cursor and (not events or events[0].seq != cursor + 1):
                # Purged from under the stream: say so, never a silent gap. The phone then
                # re-reads its assignments and follows the feed from current_version.
                yield frame(json.dumps({"current_version": current}), event="expired")
                return
            for e in events:
                yield frame(public_event(e).model_dump_json(), event="feed", event_id=e.seq)
                cursor = e.seq
            if len(events) == PAGE:  # more behind this page: read on before waiting
                if not await still_allowed():
                    return
                continue
            # Waiting costs no read: a change wakes us, and the process's sweep wakes us if
            # the database moved past ``cursor`` without a notification.
            notifier.watch(butler_id, cursor)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        read = False
        with contextlib.suppress(TimeoutError):
            read = await asyncio.wait_for(woken.wait(), timeout=min(heartbeat, remaining))
        if not await still_allowed():
            return
        if not read and time.monotonic() < deadline:
            yield b": keep-alive\n\n"
