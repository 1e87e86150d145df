from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from app.audit.repository import AuditFilter, AuditRepository
from app.audit.schemas import AuditEventPublic, AuditPage
from app.auth.dependencies import AdminOnly
from app.core.errors import problem_responses
from app.core.pagination import PageDep, paginate
from app.core.routing import SessionDep, make_router
from app.core.types import Instant

router = make_router(
    prefix="/v1/audit-events", tags=["audit"], responses=problem_responses(401, 403, 422)
)


@router.get("", response_model=AuditPage, summary="Query the audit trail (admins only)")
async def list_audit_events(
    _admin: AdminOnly,
    session: SessionDep,
    page: PageDep,
    resource_type: Annotated[str | None, Query(max_length=40)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    mother_id: Annotated[
        uuid.UUID | None,
        Query(description="Every row that concerns her, whatever it is keyed by."),
    ] = None,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|denied)$")] = None,
    occurred_from: Annotated[Instant | None, Query()] = None,
    occurred_to: Annotated[Instant | None, Query()] = None,
) -> AuditPage:
    events = await AuditRepository(session).search(
        AuditFilter(
            resource_type=resource_type or None,
            resource_id=resource_id or None,
            mother_id=mother_id,
            actor_id=actor_id,
            action=action or None,
            outcome=outcome,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
        ),
        after=page.after,
        limit=page.limit + 1,
    )
    events, info = paginate(events, page, key=lambda r: r.id)
    return AuditPage(
        items=[AuditEventPublic.model_validate(e) for e in events],
        page=info,
    )
