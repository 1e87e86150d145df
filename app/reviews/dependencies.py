"""Loading a report or a mother for a review route: existence, then who may see it (object
level). The nutritionist reads reviews: she acts on the doctors' "see the nutritionist"
follow-ups, and reads what the doctor advised before she assesses her."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from app.assignments.dependencies import may_see_mother
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import AuditDep, ClinicStaffButlerOrNutritionist
from app.auth.models import Role
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.core.routing import SessionDep
from app.mothers.models import Mother
from app.mothers.repository import MotherRepository
from app.reports.models import LabReport
from app.reports.repository import ReportRepository


async def visible_report(
    report_id: uuid.UUID,
    request: Request,
    principal: ClinicStaffButlerOrNutritionist,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LabReport:
    """The report, or 404 when it does not exist or is not this caller's to see (a butler sees
    only her mothers' reports; a report not yet attached to a mother, no butler's)."""
    report = await ReportRepository(session).report(
        report_id, for_update=request.method not in ("GET", "HEAD")
    )
    if report is None:
        raise NotFound("No report with that id is visible to you.")
    if principal.role == Role.BUTLER:
        today = local_today(clock, settings.tz)
        allowed = report.mother_id is not None and await may_see_mother(
            AssignmentRepository(session), principal, report.mother_id, today
        )
        if not allowed:
            audit.record_denied(
                "report.reviews",
                "report",
                report.id,
                reason="not assigned",
                mother_id=report.mother_id,
            )
            raise NotFound("No report with that id is visible to you.")
    return report


VisibleReport = Annotated[LabReport, Depends(visible_report)]


async def reviewed_mother(
    mother_id: uuid.UUID,
    principal: ClinicStaffButlerOrNutritionist,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """The mother whose reviews are read, or 404 when she does not exist or is not this
    caller's to see (a butler: only her mothers, while assigned)."""
    mother = await MotherRepository(session).get(mother_id)
    if mother is None:
        raise NotFound("No mother with that id is visible to you.")
    today = local_today(clock, settings.tz)
    if not await may_see_mother(AssignmentRepository(session), principal, mother.id, today):
        audit.record_denied("mother.reviews", "mother", mother.id, reason="not assigned")
        raise NotFound("No mother with that id is visible to you.")
    return mother


ReviewedMother = Annotated[Mother, Depends(reviewed_mother)]
