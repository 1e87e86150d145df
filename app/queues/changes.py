"""When a queue moves: its station's ``queue_changed_at`` (what positions and boards are read as
of) and the butlers of every mother in it hear.

The time is written at commit, in station-id order: two transactions that move the same queues
lock their rows in the same order (no deadlock), and only for the moment of the commit. Until
then it waits in the session's state (``session_state(session).queue_moves``); the commit hooks
below are wired in ``app/wiring.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.session_state import session_state
from app.feed.changes import CHANNEL, touch_mothers
from app.queues.models import Station
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository, queue_changed_at_update


def mark_changed(session: AsyncSession, station: Station, now: datetime) -> None:
    """Note that the station's queue moved. Written at commit, in station-id order: two
    transactions that move the same queues lock their rows in the same order (no deadlock),
    and only for the moment of the commit."""
    set_committed_value(station, "queue_changed_at", now)  # seen at once by this transaction
    session_state(session).queue_moves[station.id] = now


_WAKE_NAMESPACE = uuid.UUID("3b0d6a52-5f7e-4d0b-9a43-8f2c1e7d9b61")


def station_wake_key(station_id: uuid.UUID) -> uuid.UUID:
    """The id the notifier wakes when a station's queue moves (its board's and her page's
    long-polls wait on it; it shares the butlers' notifier and NOTIFY channel)."""
    return uuid.uuid5(_WAKE_NAMESPACE, f"station:{station_id}")


def stamp_changed_queues(session: Session) -> None:
    """Commit hook (before commit): write every moved station's ``queue_changed_at``, in id
    order, and note its wake-up (told after commit here; other processes by NOTIFY, sent by
    the database when, and only if, the transaction commits). Not at a savepoint's release
    (app/core/hooks.py)."""
    state = session_state(session)
    changed, state.queue_moves = state.queue_moves, {}
    postgres = bool(changed) and session.get_bind().dialect.name == "postgresql"
    for station_id, at in sorted(changed.items()):
        session.execute(queue_changed_at_update(station_id, at))
        key = station_wake_key(station_id)
        state.wake.add(key)
        if postgres:
            session.execute(select(func.pg_notify(CHANNEL, str(key))))


def forget_changed_queues(session: Session) -> None:
    """Commit hook (after rollback): nothing moved. Not at a savepoint's rollback: the moves
    noted before it did happen (app/core/hooks.py)."""
    session_state(session).queue_moves.clear()


async def queue_changed(
    session: AsyncSession,
    stations: Iterable[Station],
    ctx: Ctx,
    *,
    mother_ids: Iterable[uuid.UUID] = (),
) -> None:
    """A queue moved: positions and estimates changed for everyone in it, so their butlers hear."""
    stations = list(stations)
    for station in stations:
        mark_changed(session, station, ctx.now)
    mothers = set(mother_ids)
    if stations:
        mothers |= await QueueRepository(session).live_mother_ids_at([s.id for s in stations])
    # About the station that moved (its board says where she stands), when it is one.
    ref = stations[0].id if len(stations) == 1 else None
    await touch_mothers(
        session,
        mothers,
        kind="queue.changed",
        now=ctx.now,
        today=ctx.today,
        ref_type="station" if ref is not None else None,
        ref_id=ref,
    )
