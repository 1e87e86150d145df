"""Loading what a measurement request is about, with object-level access: a butler only her
own mothers, a station account only a mother at its station today (an unseen mother or
reading is a 404, as if it did not exist)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from app.assignments.dependencies import may_read_her_data, refusal_reason
from app.assignments.repository import AssignmentRepository
from app.auth.dependencies import AuditDep, require_roles
from app.auth.models import Role
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound
from app.core.principal import Principal
from app.core.routing import SessionDep
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from app.mothers.models import Mother
from app.mothers.repository import MotherRepository

# Who takes readings: the clinicians, the vitals/NST stations, and her butler on her behalf.
MeasurementTaker = Annotated[
    Principal,
    Depends(require_roles(Role.DOCTOR, Role.NUTRITIONIST, Role.STATION, Role.BUTLER)),
]
# Who reads them: the same, and the admin.
MeasurementReader = Annotated[
    Principal,
    Depends(require_roles(Role.ADMIN, Role.DOCTOR, Role.NUTRITIONIST, Role.STATION, Role.BUTLER)),
]
# Who lists her readings (GET /measurements): the readers and the front desk, which shows her
# weight and blood-pressure charts (and so reads those values already). Her timeline, which
# joins her lab results, is not the desk's: lab values stay with the clinicians, the stations
# that record vitals, and her own butler (the safer, narrower reading).
MeasurementLister = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.NUTRITIONIST, Role.STATION, Role.BUTLER
        )
    ),
]
# Who corrects a reading (POST /measurements/{id}/corrections): the takers, and the front
# desk for the height and pre-pregnancy weight it entered at enrolment (service._may_correct
# keeps it to those): the 409 for a second baseline sends the desk there.
MeasurementCorrector = Annotated[
    Principal,
    Depends(
        require_roles(Role.FRONT_DESK, Role.DOCTOR, Role.NUTRITIONIST, Role.STATION, Role.BUTLER)
    ),
]
NOT_VISIBLE = "No mother with that id is visible to you."


async def _visible(
    request: Request,
    principal: Principal,
    mothers: MotherRepository,
    mother_id: uuid.UUID,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    resource: tuple[str, uuid.UUID],
) -> Mother:
    mother = await mothers.get(mother_id, for_update=request.method not in ("GET", "HEAD"))
    if mother is None:
        raise NotFound(NOT_VISIBLE)
    today = local_today(clock, settings.tz)
    # A station reads and records her data only while she is at its station today (what it
    # corrects is further kept to its own station's readings by the checks of those routes).
    if not await may_read_her_data(
        AssignmentRepository(mothers.session), principal, mother.id, today
    ):
        audit.record_denied(
            f"{resource[0]}.{request.method.lower()}",
            resource[0],
            resource[1],
            reason=refusal_reason(principal),
            mother_id=mother.id,
        )
        raise NotFound(NOT_VISIBLE if resource[0] == "mother" else "No such measurement.")
    return mother


async def _mother_for(
    mother_id: uuid.UUID,
    request: Request,
    principal: Principal,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    return await _visible(
        request,
        principal,
        MotherRepository(session),
        mother_id,
        audit,
        clock,
        settings,
        ("mother", mother_id),
    )


async def measured_mother(
    mother_id: uuid.UUID,
    request: Request,
    principal: MeasurementReader,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """The mother of the path, when this caller may see her readings."""
    return await _mother_for(mother_id, request, principal, session, audit, clock, settings)


MeasuredMother = Annotated[Mother, Depends(measured_mother)]


async def listed_mother(
    mother_id: uuid.UUID,
    request: Request,
    principal: MeasurementLister,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """The mother of the path, when this caller may list her readings (the desk too)."""
    return await _mother_for(mother_id, request, principal, session, audit, clock, settings)


ListedMother = Annotated[Mother, Depends(listed_mother)]


async def visible_measurement(
    measurement_id: uuid.UUID,
    request: Request,
    principal: MeasurementCorrector,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> tuple[Measurement, Mother]:
    """A reading (locked for the correction) and its mother, when this caller may see her."""
    row = await MeasurementRepository(session).get_for_update(measurement_id)
    if row is None:
        raise NotFound("No such measurement.")
    mother = await _visible(
        request,
        principal,
        MotherRepository(session),
        row.mother_id,
        audit,
        clock,
        settings,
        ("measurement", measurement_id),
    )
    return row, mother


VisibleMeasurement = Annotated[tuple[Measurement, Mother], Depends(visible_measurement)]
