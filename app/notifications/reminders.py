"""Overdue tasks: a task past due reminds its butler; still open later, the front desk.

Tasks are the feed's rows; the reminders are messages, so they live with the outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.models import Task
from app.notifications.outbox import notify_butler


async def remind_overdue_tasks(
    session: AsyncSession, *, now: datetime, escalate_after: timedelta
) -> int:
    """A task past due reminds its butler; still open ``escalate_after`` later, the desk."""
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
        channel = "front_desk" if to_desk else "butler_app"
        await notify_butler(  # the desk's reminder names no butler: the outbox row only
            session,
            topic="task.overdue",
            now=now,
            butler_id=None if to_desk else task.butler_id,
            mother_id=task.mother_id,
            payload={"task_id": task.id, "channel": channel},
        )
        reminded += 1
    return reminded
