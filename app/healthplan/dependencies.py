"""Loading the mother of a plan request: role check first, then existence and visibility.

The mothers' own ``ReadableMother`` admits the clinic staff and the butler; a plan is also the
nutritionist's, so these load her for the nutritionist too (the butler reads only what is due,
through ``ReadableMother``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from app.assignments.dependencies import may_see_mother
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import AuditDep, Clinician, ClinicStaffOrNutritionist
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.core.principal import Principal
from app.core.routing import SessionDep
from app.healthplan.domain import PlanTables, plan_tables
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherRepository

NOT_VISIBLE = "No mother with that id is visible to you."


async def _load(
    mother_id: uuid.UUID,
    request: Request,
    principal: Principal,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    repo = MotherRepository(session)
    mother = await repo.get(mother_id, for_update=request.method not in ("GET", "HEAD"))
    if mother is None:
        raise NotFound(NOT_VISIBLE)
    today = local_today(clock, settings.tz)
    if not await may_see_mother(AssignmentRepository(session), principal, mother.id, today):
        audit.record_denied(
            f"mother.{request.method.lower()}", "mother", mother.id, reason="not assigned"
        )
        raise NotFound(NOT_VISIBLE)
    return mother


async def mother_for_reader(
    mother_id: uuid.UUID,
    request: Request,
    principal: ClinicStaffOrNutritionist,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """Her plan is read by the clinic staff and the nutritionist."""
    return await _load(mother_id, request, principal, session, audit, clock, settings)


async def mother_for_clinician(
    mother_id: uuid.UUID,
    request: Request,
    principal: Clinician,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """Her plan is made, changed and signed by a doctor or the nutritionist."""
    return await _load(mother_id, request, principal, session, audit, clock, settings)


PlanReaderMother = Annotated[Mother, Depends(mother_for_reader)]
PlanClinicianMother = Annotated[Mother, Depends(mother_for_clinician)]


async def active_pregnancy(session: SessionDep, mother: Mother) -> Pregnancy:
    pregnancy = await MotherRepository(session).active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    return pregnancy


async def get_plan_tables(settings: SettingsDep) -> PlanTables:
    return plan_tables(
        settings.health_plan_nutrition_file, settings.health_plan_fetal_monitoring_file
    )


PlanTablesDep = Annotated[PlanTables, Depends(get_plan_tables)]
