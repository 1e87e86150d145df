"""LISTEN on PostgreSQL, so that what other server processes commit reaches this one.

Which channels there are and who handles them is wired in ``app/wiring.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger("app.listen")


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def listen(
    database_url: str,
    channels: Mapping[str, Callable[[str], None]],
    *,
    on_connect: Callable[[], None],
    stop: asyncio.Event,
) -> None:
    """Hand each NOTIFY payload to its channel's handler until ``stop`` is set.

    A dropped connection is re-opened, and ``on_connect`` runs on every (re)connection: what
    was notified while nobody listened is unknown, so it is for the handlers' owners to forget
    what they remember (a lost notification then costs at most one poll interval).
    """
    import asyncpg

    def handler(deliver: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            deliver(payload)

        return on_notify

    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(_dsn(database_url))
            for channel, deliver in channels.items():
                await conn.add_listener(channel, handler(deliver))
            on_connect()
            while not stop.is_set() and not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
        except Exception:
            logger.warning("listener lost its connection; reconnecting", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()
