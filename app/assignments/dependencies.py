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


async def may_read_her_data(
    repo: AssignmentRepository, principal: Principal, mother_id: uuid.UUID, today: date
) -> bool:
    """Her readings, lab results and charts: as may_see_mother, and a station account only
    while she is at its station today (a station works at its own station only: her visit of
    today checked in or in progress, with a place or an exam there; not once it is over).
    The routes answer 404 otherwise, as for another butler's mother. Her visits keep their
    own station check (queues.station_access.check_visit_station, a 403)."""
    if principal.role == Role.STATION:
        if principal.station_code is None:
            return False
        return await repo.at_station_today(principal.station_code, mother_id, today)
    return await may_see_mother(repo, principal, mother_id, today)


def refusal_reason(principal: Principal) -> str:
    """Why may_see_mother said no, for the audit row."""
    return "not at the account's station" if principal.role == Role.STATION else "not assigned"
