"""A visit's status changes: each checked against the status machine (``domain``) and written
down with who made it and when. The one place a visit's status moves, whoever moves it (the
desk, the end-of-day sweep, or the queues when her first exam begins)."""

from __future__ import annotations

from datetime import datetime

from app.core.errors import Conflict
from app.core.principal import Principal
from app.visits.domain import IllegalTransitionError, VisitStatus, check_transition
from app.visits.models import Visit, VisitStatusChange
from app.visits.repository import VisitRepository


class IllegalTransition(Conflict):
    slug = "illegal-visit-transition"
    title = "The visit cannot change to that state"


def record_status(
    repo: VisitRepository,
    visit: Visit,
    *,
    to: VisitStatus,
    actor: Principal,
    now: datetime,
    reason: str | None = None,
    from_: VisitStatus | None = None,
) -> None:
    repo.session.add(
        VisitStatusChange(
            visit_id=visit.id,
            from_status=from_,
            to_status=to,
            reason=reason,
            changed_at=now,
            actor_id=actor.id,
            actor_name=actor.name,
        )
    )


def move_status(
    repo: VisitRepository,
    visit: Visit,
    to: VisitStatus,
    *,
    actor: Principal,
    now: datetime,
    reason: str | None = None,
) -> None:
    current = VisitStatus(visit.status)
    try:
        check_transition(current, to)
    except IllegalTransitionError as exc:
        raise IllegalTransition(
            str(exc).capitalize() + ".",
            extra={"current_status": current.value, "requested_status": to.value},
        ) from exc
    visit.status = to
    visit.version += 1
    visit.updated_at = now
    record_status(repo, visit, from_=current, to=to, actor=actor, now=now, reason=reason)


def first_exam_began(
    repo: VisitRepository, visit: Visit, *, actor: Principal, now: datetime
) -> None:
    """Her first exam began: a checked-in visit is in progress from now (later ones: nothing)."""
    if visit.status == VisitStatus.CHECKED_IN:
        move_status(repo, visit, VisitStatus.IN_PROGRESS, actor=actor, now=now)
        visit.started_at = now
