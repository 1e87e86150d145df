from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.audit.schemas import AuditEventPublic, AuditPage
from app.auth.dependencies import AdminPrincipal
from app.core.errors import problem_responses
from app.core.pagination import PageDep, page_info
from app.core.routing import SessionDep, make_router

router = make_router(
    prefix="/v1/audit-events", tags=["audit"], responses=problem_responses(401, 403, 422)
)


@router.get("", response_model=AuditPage, summary="Query the audit trail (admins only)")
async def list_audit_events(
    _admin: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    resource_type: Annotated[str | None, Query(max_length=40)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|denied)$")] = None,
    occurred_from: Annotated[AwareDatetime | None, Query()] = None,
    occurred_to: Annotated[AwareDatetime | None, Query()] = None,
) -> AuditPage:
    stmt = select(AuditEvent).order_by(AuditEvent.id).limit(page.limit + 1)
    if page.after is not None:
        stmt = stmt.where(AuditEvent.id > page.after)
    if resource_type:
        stmt = stmt.where(AuditEvent.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEvent.resource_id == resource_id)
    if actor_id:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if occurred_from:
        stmt = stmt.where(AuditEvent.occurred_at >= occurred_from)
    if occurred_to:
        stmt = stmt.where(AuditEvent.occurred_at < occurred_to)
    events = list(await session.scalars(stmt))
    has_more = len(events) > page.limit
    events = events[: page.limit]
    return AuditPage(
        items=[AuditEventPublic.model_validate(e) for e in events],
        page=page_info([e.id for e in events], page, has_more=has_more),
    )
