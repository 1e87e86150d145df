"""Whose charts a caller may read: her mother record, object-level checked like any other."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.assignments.dependencies import may_read_her_data, refusal_reason
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import AnyStaff, AuditDep
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.mothers.dependencies import MotherRepoDep
from app.mothers.models import Mother

NOT_VISIBLE = "No mother with that id is visible to you."


async def chart_mother(
    mother_id: uuid.UUID,
    principal: AnyStaff,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """The mother whose chart is asked for, or 404 (she does not exist or is not this
    butler's); the nutritionist, who manages her weight, reads them as the doctors do, and so
    does a station (the vitals station records her weight and blood pressure and reads her
    measurements already: her charts draw those same values). Every staff role, then; a
    butler only her own mothers, a station only a mother at its station today (object
    level)."""
    mother = await repo.get(mother_id)
    if mother is None:
        raise NotFound(NOT_VISIBLE)
    today = local_today(clock, settings.tz)
    if not await may_read_her_data(AssignmentRepository(repo.session), principal, mother.id, today):
        audit.record_denied(
            "mother.chart",
            "mother",
            mother.id,
            reason=refusal_reason(principal),
            mother_id=mother.id,
        )
        raise NotFound(NOT_VISIBLE)
    return mother


ChartMother = Annotated[Mother, Depends(chart_mother)]
