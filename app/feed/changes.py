"""Recording that a butler's assignments changed: version bump, feed event, wake-up.

Noted in the same transaction as the change and made at its commit. The version row is
upserted with a lock, so the feed is gap-free; on PostgreSQL a NOTIFY (sent by the database at
commit) wakes the long-polls of every server process; in one process the in-memory notifier
is told after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from app.assignments.repository import butlers_who_see, who_sees_whom
from app.core.ids import uuid7
from app.core.session_state import FeedBump, session_state
from app.feed.models import FeedEvent, FeedState

CHANNEL = "butler_feed"


async def touch(
    session: AsyncSession,
    butler_id: uuid.UUID,
    *,
    kind: str,
    now: datetime,
    ref_type: str | None = None,
    ref_id: uuid.UUID | None = None,
) -> None:
    """Note that her list changed; the version is bumped when the transaction commits.

    The bumps of one transaction are made together, just before it commits, in butler-id
    order: two transactions touching the same butlers lock their rows in the same order (no
    deadlock), and the locks are held only for the commit.
    """
    session_state(session).feed_bumps.append(FeedBump(butler_id, kind, ref_type, ref_id, now))


def bump_versions(session: Session) -> None:
    """Commit hook (before commit): make the noted bumps. Runs inside the commit, in the sync
    session (the async session's greenlet). Only at the transaction's own commit, never at a
    savepoint's release (app/core/hooks.py)."""
    state = session_state(session)
    pending, state.feed_bumps = state.feed_bumps, []
    if not pending:
        return
    bind = session.get_bind()
    dialect = bind.dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for butler_id, kind, ref_type, ref_id, now in sorted(pending, key=lambda p: p.butler_id):
        upsert = (
            maker(FeedState)
            .values(butler_id=butler_id, version=1, updated_at=now)
            .on_conflict_do_update(
                index_elements=[FeedState.butler_id],
                set_={"version": FeedState.version + 1, "updated_at": now},
            )
            .returning(FeedState.version)
        )
        version = int(session.execute(upsert).scalar_one())
        session.execute(
            insert(FeedEvent).values(
                id=uuid7(),
                butler_id=butler_id,
                seq=version,
                kind=kind,
                ref_type=ref_type,
                ref_id=ref_id,
                created_at=now,
            )
        )
        if dialect == "postgresql":  # delivered by the database when (and only if) we commit
            session.execute(select(func.pg_notify(CHANNEL, str(butler_id))))
        state.wake.add(butler_id)


def discard_bumps(session: Session) -> None:
    """Commit hook (after rollback): the bumps of a transaction that did not commit. A
    savepoint's rollback drops only those noted inside it (app/core/hooks.py)."""
    session_state(session).feed_bumps.clear()


async def touch_mother(
    session: AsyncSession,
    mother_id: uuid.UUID | None,
    *,
    kind: str,
    now: datetime,
    today: date,
    ref_type: str | None = None,
    ref_id: uuid.UUID | None = None,
    also: Iterable[uuid.UUID | None] = (),
) -> None:
    """Something about a mother changed: every butler who sees her hears of it."""
    butlers = await butlers_who_see(session, [mother_id], today) if mother_id else set()
    butlers |= {b for b in also if b is not None}
    for butler_id in sorted(butlers):
        await touch(session, butler_id, kind=kind, now=now, ref_type=ref_type, ref_id=ref_id)


async def touch_mothers(
    session: AsyncSession,
    mother_ids: Iterable[uuid.UUID],
    *,
    kind: str,
    now: datetime,
    today: date,
    ref_type: str | None = None,
    ref_id: uuid.UUID | None = None,
) -> None:
    """Many mothers changed at once (a queue moved): each of their butlers hears once. The
    event is about her, for a butler with one mother among them; else about what the caller
    names (the station that moved); else about the butler's own list ("assignments", the
    butler's id: read GET /v1/me/assignments)."""
    seen = await who_sees_whom(session, mother_ids, today)
    for butler_id in sorted(seen):
        mothers = seen[butler_id]
        if len(mothers) == 1:
            ref: tuple[str | None, uuid.UUID | None] = ("mother", next(iter(mothers)))
        elif ref_type is not None:
            ref = (ref_type, ref_id)
        else:
            ref = ("assignments", butler_id)
        await touch(session, butler_id, kind=kind, now=now, ref_type=ref[0], ref_id=ref[1])


# A butler's message names what it is about in its payload: the feed event says it too.
_PAYLOAD_REFS = (("alert_id", "alert"), ("task_id", "task"), ("report_id", "report"))


def payload_ref(
    payload: dict[str, object] | None, mother_id: uuid.UUID | None
) -> tuple[str | None, uuid.UUID | None]:
    """(ref_type, ref_id) of a message to a butler: its alert, task or report, else her."""
    for key, ref_type in _PAYLOAD_REFS:
        value = (payload or {}).get(key)
        if value is not None:
            try:
                return ref_type, value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
            except ValueError:
                continue
    return ("mother", mother_id) if mother_id is not None else (None, None)


async def purge_feed(session: AsyncSession, *, before: datetime) -> int:
    """Drop events older than the retention window (cursors before them then get 410)."""
    # By seq, per butler: everything up to her newest event older than the cutoff. A purge by
    # time alone could cut an old seq out of the middle of newer ones (times are taken when a
    # request starts, seqs when it takes the lock).
    older = aliased(FeedEvent)
    newest_old = (
        select(func.max(older.seq))
        .where(older.butler_id == FeedEvent.butler_id, older.created_at < before)
        .scalar_subquery()
    )
    result = await session.execute(delete(FeedEvent).where(FeedEvent.seq <= newest_old))
    return int(getattr(result, "rowcount", 0) or 0)
