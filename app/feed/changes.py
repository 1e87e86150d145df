"""Recording that a butler's assignments changed: version bump, feed event, wake-up.

Noted in the same transaction as the change and made at its commit. The version row is
upserted with a lock, so the feed is gap-free; on PostgreSQL a NOTIFY (sent by the database at
commit) wakes the long-polls of every server process; in one process the in-memory notifier
is told after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, event, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from app.assignments.models import AssignmentRole, CareAssignment
from app.core.ids import uuid7
from app.feed.models import FeedEvent, FeedState, Task

CHANNEL = "butler_feed"
TOUCHED_KEY = "feed_touched"  # session.info: butlers to wake after commit
PENDING_KEY = "feed_pending"  # session.info: version bumps to make at commit


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
    pending: list[tuple[uuid.UUID, str, str | None, uuid.UUID | None, datetime]] = (
        session.info.setdefault(PENDING_KEY, [])
    )
    pending.append((butler_id, kind, ref_type, ref_id, now))


def _bump_all(session: Session) -> None:
    """Run inside commit (the sync session, in the async session's greenlet)."""
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    bind = session.get_bind()
    dialect = bind.dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for butler_id, kind, ref_type, ref_id, now in sorted(pending, key=lambda p: p[0]):
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
        session.info.setdefault(TOUCHED_KEY, set()).add(butler_id)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _bump_all(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


async def butlers_of(session: AsyncSession, mother_id: uuid.UUID, today: date) -> set[uuid.UUID]:
    """Who has this mother on her phone today: her primary, and a cover valid today."""
    rows = await session.scalars(
        select(CareAssignment.butler_id).where(
            CareAssignment.mother_id == mother_id,
            CareAssignment.ends_at.is_(None),
            or_(
                CareAssignment.role == AssignmentRole.PRIMARY,
                and_(CareAssignment.role == AssignmentRole.COVER, CareAssignment.valid_on == today),
            ),
        )
    )
    return set(rows)


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
    butlers = await butlers_of(session, mother_id, today) if mother_id else set()
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
) -> None:
    """Many mothers changed at once (a queue moved): each of their butlers hears once."""
    ids = sorted(set(mother_ids))
    if not ids:
        return
    butlers = set(
        await session.scalars(
            select(CareAssignment.butler_id).where(
                CareAssignment.mother_id.in_(ids),
                CareAssignment.ends_at.is_(None),
                or_(
                    CareAssignment.role == AssignmentRole.PRIMARY,
                    and_(
                        CareAssignment.role == AssignmentRole.COVER,
                        CareAssignment.valid_on == today,
                    ),
                ),
            )
        )
    )
    for butler_id in sorted(butlers):
        await touch(session, butler_id, kind=kind, now=now)


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


async def remind_overdue_tasks(
    session: AsyncSession, *, now: datetime, escalate_after: timedelta
) -> int:
    """A task past due reminds its butler; still open ``escalate_after`` later, the desk."""
    from app.notifications.outbox import enqueue  # the outbox touches the feed: no cycle here

    reminded = 0
    tasks = await session.scalars(
        select(Task)
        .where(Task.completed_at.is_(None), Task.due_at <= now, Task.reminders_sent < 2)
        .with_for_update(skip_locked=True)
    )
    for task in tasks:
        to_desk = task.reminders_sent == 1
        if to_desk and task.due_at + escalate_after > now:
            continue
        task.reminders_sent += 1
        await enqueue(
            session,
            topic="task.overdue",
            now=now,
            butler_id=None if to_desk else task.butler_id,
            mother_id=task.mother_id,
            payload={"task_id": task.id, "channel": "front_desk" if to_desk else "butler_app"},
        )
        reminded += 1
    return reminded
