"""The assignment policy and repository for a request, and who may see which mother."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Depends

from app.assignments.domain import parse_weights
from app.assignments.repository import AssignmentRepository
from app.assignments.service import Policy
from app.auth.models import Role
from app.core.deps import SettingsDep
from app.core.principal import Principal
from app.core.routing import SessionDep


async def get_policy(settings: SettingsDep) -> Policy:
    return Policy(
        weights=parse_weights(settings.caseload_weights),
        visit_minutes=settings.visit_minutes,
        tz=settings.tz,
    )


async def get_assignment_repository(session: SessionDep) -> AssignmentRepository:
    return AssignmentRepository(session)


PolicyDep = Annotated[Policy, Depends(get_policy)]
AssignmentRepoDep = Annotated[AssignmentRepository, Depends(get_assignment_repository)]


async def may_see_mother(
    repo: AssignmentRepository, principal: Principal, mother_id: uuid.UUID, today: date
) -> bool:
    """Staff see every mother; a butler only those assigned to her (primary, or cover today)."""
    if principal.role != Role.BUTLER:
        return True
    if principal.butler_id is None:
        return False
    return await repo.can_see(principal.butler_id, mother_id, today)
