"""Waking the long-polls: an in-process notifier, fed after commit and by PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from app.core.session_state import session_state

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
        self._building: dict[tuple[uuid.UUID, Hashable], asyncio.Future[Any]] = {}
        self.answers_max = answers
        self.version_ttl = version_ttl
        # Butler -> the lowest version a waiting event stream has delivered; see watched().
        self._watched: dict[uuid.UUID, int] = {}

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

    async def answer_once(
        self, butler_id: uuid.UUID, key: Hashable, build: Callable[[], Awaitable[Any]]
    ) -> Any:
        """The kept answer for ``key``, or one build shared by every request asking meanwhile.

        A change wakes every phone of a butler at once; without this each would build the
        same answer (the same version: the same answer) and the last would wait for them all.
        A failed build is not shared: each waiter then builds its own.
        """
        cached = self.answer(butler_id, key)
        if cached is not None:
            return cached
        if self.answers_max <= 0:  # nothing kept: every request builds (the benchmark's worst)
            return await build()
        flight = self._building.get((butler_id, key))
        if flight is not None:
            with contextlib.suppress(Exception):
                return await asyncio.shield(flight)
            return await build()
        generation = self.generation(butler_id)
        flight = asyncio.get_running_loop().create_future()
        flight.add_done_callback(_retrieve)
        self._building[(butler_id, key)] = flight
        try:
            answer = await build()
        except BaseException as exc:
            flight.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            raise
        finally:
            self._building.pop((butler_id, key), None)
        flight.set_result(answer)
        self.remember_answer(butler_id, key, answer, generation)
        return answer

    def generation(self, butler_id: uuid.UUID) -> int:
        """Read before a version is read from the database; see remember_version."""
        return self._generations.get(butler_id, 0)

    def on_notify(self, payload: str) -> None:
        """A NOTIFY from another process: wake whoever waits for that id."""
        with contextlib.suppress(ValueError):
            self.publish({uuid.UUID(payload)})

    def reset(self) -> None:
        """Whatever was NOTIFYed while nobody listened is unknown: forget every version and
        let every long-poll and stream read its own again."""
        self.clear_versions()
        self.wake_all()

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

    def watch(self, butler_id: uuid.UUID, version: int) -> None:
        """An event stream waits having delivered up to ``version``: the sweep wakes it if the
        database moves past that without a notification (one lost on the way)."""
        seen = self._watched.get(butler_id)
        self._watched[butler_id] = version if seen is None else min(seen, version)

    def watched(self) -> dict[uuid.UUID, int]:
        for butler_id in [b for b in self._watched if b not in self._events]:
            del self._watched[butler_id]  # nobody waits for it any more
        return dict(self._watched)

    def wake_all(self) -> None:
        """Every waiter reads again: after the listener reconnected, what was NOTIFYed while it
        was away is unknown."""
        self.publish(list(self._events))

    def publish(self, butler_ids: Iterable[uuid.UUID]) -> None:
        for butler_id in butler_ids:
            self._watched.pop(butler_id, None)
            self._generations[butler_id] = self._generations.get(butler_id, 0) + 1
            self._versions.pop(butler_id, None)
            self._answers.pop(butler_id, None)
            waiting = self._events.pop(butler_id, None)
            if waiting is not None:
                waiting.set()

    @property
    def waiting(self) -> int:
        return len(self._events)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A build that failed with nobody waiting is not an error to log twice."""
    if not future.cancelled():
        future.exception()


def wake_after_commit(session: Session) -> None:
    """Commit hook (after commit): wake this process's long-polls of what the commit changed.
    Not at a savepoint's release (app/core/hooks.py): a long-poll woken then would read the old
    version and keep it."""
    state = session_state(session)
    woken, state.wake = state.wake, set()
    notifier = state.services.notifier
    if woken and notifier is not None:
        notifier.publish(woken)


def wake_nobody(session: Session) -> None:
    """Commit hook (after rollback): nothing changed, nobody to wake."""
    session_state(session).wake.clear()


SWEEP_BATCH = 500


async def sweep_once(session_factory: Any, notifier: Notifier) -> int:
    """One read of the versions of every butler an event stream waits for; those the
    database has moved past are woken. Returns how many were."""
    from sqlalchemy import select

    from app.feed.models import FeedState

    watched = notifier.watched()
    if not watched:
        return 0
    state = FeedState.__table__
    behind: list[uuid.UUID] = []
    ids = list(watched)
    async with session_factory() as session:
        for i in range(0, len(ids), SWEEP_BATCH):
            rows = await session.execute(
                select(state.c.butler_id, state.c.version).where(
                    state.c.butler_id.in_(ids[i : i + SWEEP_BATCH])
                )
            )
            behind += [b for b, v in rows.all() if v > watched[b]]
    notifier.publish(behind)
    return len(behind)


async def sweep(
    session_factory: Any, notifier: Notifier, stop: asyncio.Event, every: float = 15.0
) -> None:
    """A lost notification costs an event stream at most ``every`` seconds, for one query per
    process, not one per stream."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set():
            return
        try:
            await sweep_once(session_factory, notifier)
        except Exception:
            logger.warning("feed version sweep failed; trying again", exc_info=True)
