"""Loading a mother for a request: role check, then existence and visibility (object level)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from app.assignments.dependencies import may_see_mother
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import (
    AuditDep,
    ClinicStaffOrButler,
)
from app.butlers.repository import ButlerRepository
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.core.routing import SessionDep
from app.mothers.models import Mother
from app.mothers.repository import MotherRepository


async def get_mother_repository(session: SessionDep) -> MotherRepository:
    return MotherRepository(session)


async def get_butler_repository(session: SessionDep) -> ButlerRepository:
    return ButlerRepository(session)


MotherRepoDep = Annotated[MotherRepository, Depends(get_mother_repository)]
ButlerRepoDep = Annotated[ButlerRepository, Depends(get_butler_repository)]


async def readable_mother(
    mother_id: uuid.UUID,
    request: Request,
    principal: ClinicStaffOrButler,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """Load the mother, or 404 when she does not exist or is not this caller's to see."""
    mother = await repo.get(mother_id, for_update=request.method not in ("GET", "HEAD"))
    if mother is None:
        raise NotFound("No mother with that id is visible to you.")
    today = local_today(clock, settings.tz)
    if not await may_see_mother(AssignmentRepository(repo.session), principal, mother.id, today):
        audit.record_denied(
            f"mother.{request.method.lower()}", "mother", mother.id, reason="not assigned"
        )
        raise NotFound("No mother with that id is visible to you.")
    return mother


ReadableMother = Annotated[Mother, Depends(readable_mother)]
