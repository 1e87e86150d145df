"""Whose clinical findings a caller may read: object-level checked like any other record."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.assignments.dependencies import may_see_mother
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import AuditDep, ClinicStaffButlerOrNutritionist
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.mothers.dependencies import MotherRepoDep
from app.mothers.models import Mother

NOT_VISIBLE = "No mother with that id is visible to you."


async def clinical_mother(
    mother_id: uuid.UUID,
    principal: ClinicStaffButlerOrNutritionist,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """The mother, or 404 (she does not exist, or is not this butler's): the nutritionist,
    who manages her weight and diet, reads her findings as the doctors do."""
    mother = await repo.get(mother_id)
    if mother is None:
        raise NotFound(NOT_VISIBLE)
    today = local_today(clock, settings.tz)
    if not await may_see_mother(AssignmentRepository(repo.session), principal, mother.id, today):
        audit.record_denied("mother.clinical", "mother", mother.id, reason="not assigned")
        raise NotFound(NOT_VISIBLE)
    return mother


ClinicalMother = Annotated[Mother, Depends(clinical_mother)]
