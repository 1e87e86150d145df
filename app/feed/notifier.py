"""Waking the long-polls: an in-process notifier, fed after commit and by PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.auth.cache import REVOKED_CHANNEL, TokenCache
from app.auth.repository import FORGET_KEY
from app.feed.changes import CHANNEL, TOUCHED_KEY

logger = logging.getLogger("app.feed")


class Notifier:
    """One asyncio.Event per butler with someone waiting; a publish sets it and starts anew.

    It also remembers each butler's feed version for a moment, so that an unchanged poll costs
    no database read: a change here or (via NOTIFY) in another process forgets it at once, and
    the short lifetime bounds what a lost notification can cost.
    """

    def __init__(self, version_ttl: float = 2.0, answers: int = 5000) -> None:
        self._events: dict[uuid.UUID, asyncio.Event] = {}
        self._versions: dict[uuid.UUID, tuple[int, float]] = {}
        self._generations: dict[uuid.UUID, int] = {}
        # The last answer built for each butler, keyed by what its ETag says (version, day):
        # an answer is a function of those, so it is served again until either moves.
        self._answers: OrderedDict[uuid.UUID, tuple[Hashable, Any]] = OrderedDict()
        self.answers_max = answers
        self.version_ttl = version_ttl

    def answer(self, butler_id: uuid.UUID, key: Hashable) -> Any | None:
        cached = self._answers.get(butler_id)
        if cached is None or cached[0] != key:
            return None
        self._answers.move_to_end(butler_id)
        return cached[1]

    def remember_answer(
        self, butler_id: uuid.UUID, key: Hashable, answer: Any, generation: int
    ) -> None:
        """Keep it unless a change was published while it was being built."""
        if self.answers_max <= 0 or self._generations.get(butler_id, 0) != generation:
            return
        self._answers[butler_id] = (key, answer)
        self._answers.move_to_end(butler_id)
        while len(self._answers) > self.answers_max:
            self._answers.popitem(last=False)

    def generation(self, butler_id: uuid.UUID) -> int:
        """Read before a version is read from the database; see remember_version."""
        return self._generations.get(butler_id, 0)

    def clear_versions(self) -> None:
        self._versions.clear()
        self._answers.clear()

    def known_version(self, butler_id: uuid.UUID) -> int | None:
        entry = self._versions.get(butler_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def remember_version(self, butler_id: uuid.UUID, version: int, generation: int) -> None:
        """Cache it unless a change was published since ``generation`` was read (the value
        read from the database may then already be old)."""
        if self.version_ttl > 0 and self._generations.get(butler_id, 0) == generation:
            self._versions[butler_id] = (version, time.monotonic() + self.version_ttl)

    def subscribe(self, butler_id: uuid.UUID) -> asyncio.Event:
        """Take the event *before* reading the version, so no change slips between the two."""
        return self._events.setdefault(butler_id, asyncio.Event())

    def publish(self, butler_ids: Iterable[uuid.UUID]) -> None:
        for butler_id in butler_ids:
            self._generations[butler_id] = self._generations.get(butler_id, 0) + 1
            self._versions.pop(butler_id, None)
            self._answers.pop(butler_id, None)
            waiting = self._events.pop(butler_id, None)
            if waiting is not None:
                waiting.set()

    @property
    def waiting(self) -> int:
        return len(self._events)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    touched = session.info.pop(TOUCHED_KEY, None)
    notifier = session.info.get("notifier")
    if touched and isinstance(notifier, Notifier):
        notifier.publish(touched)
    revoked = session.info.pop(FORGET_KEY, None)
    cache = session.info.get("token_cache")
    if revoked and isinstance(cache, TokenCache):
        for user_id in revoked:
            cache.forget_user(user_id)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(TOUCHED_KEY, None)
    session.info.pop(FORGET_KEY, None)


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def listen(
    database_url: str, notifier: Notifier, stop: asyncio.Event, cache: TokenCache | None = None
) -> None:
    """LISTEN on PostgreSQL so that changes committed by other processes wake ours.

    A dropped connection is re-opened; a notification lost meanwhile costs at most one poll
    interval, because the version (the ETag) is always read from the database.
    """
    import asyncpg

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            notifier.publish([uuid.UUID(payload)])

    def on_revoked(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if cache is not None:
            with contextlib.suppress(ValueError):
                cache.forget_user(uuid.UUID(payload))

    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(_dsn(database_url))
            await conn.add_listener(CHANNEL, on_notify)
            await conn.add_listener(REVOKED_CHANNEL, on_revoked)
            # Whatever was NOTIFYed while we were not listening is unknown: forget it all.
            notifier.clear_versions()
            if cache is not None:
                cache.clear()
            while not stop.is_set() and not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
        except Exception:
            logger.warning("feed listener lost its connection; reconnecting", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()
