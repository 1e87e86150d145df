"""Putting things on the front desk's, the doctors' and the admins' worklists. Flushes only.

What used to be "delivered" to in-app channels nobody could read (front_desk, doctor) is an
item here: listed to those accounts, acknowledged by a person with a note, and its change wakes
the long-polls of that audience (in this process after commit; other processes by NOTIFY).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.session_state import session_state
from app.feed.changes import CHANNEL
from app.worklist.models import WorklistItem
from app.worklist.repository import WorklistRepository

FRONT_DESK, DOCTOR, ADMIN = "front_desk", "doctor", "admin"
NUTRITIONIST = "nutritionist"  # referrals and consultations for the clinic's nutritionist
# The critical-value tiers above the doctor on duty (app.reports.alerts.Tier). No account role
# is an obstetric lead or a duty office: doctors read the lead's list (the lead is one of
# them), admins every list, the duty office's among them.
OBSTETRIC_LEAD, DUTY_OFFICE = "obstetric_lead", "duty_office"
AUDIENCES = (FRONT_DESK, DOCTOR, ADMIN, OBSTETRIC_LEAD, DUTY_OFFICE, NUTRITIONIST)
CRITICAL, TODAY, ROUTINE = 0, 1, 2
# A critical value's pages to the clinicians leave their lists when a doctor closes the value
# (or it is voided), not when someone acknowledges the page.
CLOSED_WITH_THEIR_ALERT = frozenset({"alert.critical", "critical.unmatched", "alert.escalated"})
_NAMESPACE = uuid.UUID("6c1f3c57-29c4-4d8e-9f52-7f4f0a3b2d10")


def wake_key(audience: str) -> uuid.UUID:
    """The id the notifier wakes for an audience's worklist (it shares the butlers' notifier)."""
    return uuid.uuid5(_NAMESPACE, f"worklist:{audience}")


async def _wake(session: AsyncSession, audiences: Iterable[str]) -> None:
    keys = sorted({wake_key(a) for a in audiences})
    session_state(session).wake.update(keys)
    if session.get_bind().dialect.name == "postgresql":  # delivered at commit, if we commit
        for key in keys:
            await session.execute(select(func.pg_notify(CHANNEL, str(key))))


async def add(
    session: AsyncSession,
    *,
    audiences: Sequence[str],
    kind: str,
    title: str,
    now: datetime,
    priority: int = TODAY,
    report_id: uuid.UUID | None = None,
    alert_id: uuid.UUID | None = None,
    mother_id: uuid.UUID | None = None,
    visit_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
) -> list[WorklistItem]:
    """One item per audience; an open item about the same thing is kept, not doubled."""
    repo = WorklistRepository(session)
    items = []
    for audience in audiences:
        assert audience in AUDIENCES, audience
        existing = await repo.open_item(
            audience=audience,
            kind=kind,
            report_id=report_id,
            alert_id=alert_id,
            visit_id=visit_id,
            message_id=message_id,
            mother_id=mother_id,
            task_id=task_id,
        )
        if existing is not None:
            existing.priority = min(existing.priority, priority)  # more urgent now: say so
            items.append(existing)
            continue
        item = WorklistItem(
            audience=audience,
            kind=kind,
            priority=priority,
            title=title[:300],
            report_id=report_id,
            alert_id=alert_id,
            mother_id=mother_id,
            visit_id=visit_id,
            message_id=message_id,
            task_id=task_id,
            created_at=now,
        )
        session.add(item)
        items.append(item)
    await session.flush()
    await _wake(session, audiences)
    return items


async def acknowledge(
    session: AsyncSession, item: WorklistItem, *, by: str, note: str, now: datetime
) -> WorklistItem:
    """A person has dealt with it; a second acknowledgement changes nothing."""
    if item.acknowledged_at is None:
        item.acknowledged_at, item.acknowledged_by, item.acknowledged_note = now, by, note
        await session.flush()
        await _wake(session, [item.audience])
    return item


async def close_for_mother(
    session: AsyncSession,
    *,
    mother_id: uuid.UUID,
    audiences: Sequence[str],
    by: str,
    note: str,
    now: datetime,
) -> list[WorklistItem]:
    """Everything an audience had open about her was answered by one act (the nutritionist
    saw her): those items leave the list; the caller closes what they pointed to."""
    items = await WorklistRepository(session).open_items_for(mother_id, audiences)
    for item in items:
        item.acknowledged_at, item.acknowledged_by, item.acknowledged_note = now, by, note
    if items:
        await session.flush()
        await _wake(session, {i.audience for i in items})
    return items


async def close_about(
    session: AsyncSession,
    *,
    report_id: uuid.UUID | None = None,
    alert_id: uuid.UUID | None = None,
    kinds: Sequence[str],
    by: str,
    note: str,
    now: datetime,
    audiences: Sequence[str] = AUDIENCES,
) -> int:
    """What was resolved elsewhere (a report attached, an alert closed) leaves the lists."""
    items = [
        i
        for i in await WorklistRepository(session).open_items_about(
            report_id=report_id, alert_id=alert_id, kinds=kinds
        )
        if i.audience in audiences
    ]
    for item in items:
        item.acknowledged_at, item.acknowledged_by, item.acknowledged_note = now, by, note
    if items:
        await session.flush()
        await _wake(session, {i.audience for i in items})
    return len(items)
