from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from app.auth.dependencies import AuditDep, Idempotent
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.routing import SessionDep, make_router
from app.measurements import domain, service
from app.measurements.dependencies import (
    ListedMother,
    MeasuredMother,
    MeasurementCorrector,
    MeasurementTaker,
    VisibleMeasurement,
)
from app.measurements.domain import Entered, MeasurementKind
from app.measurements.models import Measurement
from app.measurements.schemas import (
    CorrectionCreate,
    MeasurementList,
    MeasurementPublic,
    MeasurementsCreate,
    Timeline,
    TimelineEntry,
    UnmappedResult,
)
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherRepository
from app.queues.station_access import MeasuringStation

router = make_router(
    prefix="/v1", tags=["measurements"], responses=problem_responses(401, 403, 422)
)


def view(m: Measurement) -> MeasurementPublic:
    return MeasurementPublic(
        id=m.id,
        mother_id=m.mother_id,
        pregnancy_id=m.pregnancy_id,
        kind=m.kind,
        value=m.value,
        value2=m.value2,
        result=m.result,
        unit=m.unit,
        entered=m.entered,
        measured_at=m.measured_at,
        ga_days=m.ga_days,
        gestational_age=service.gestational_age(m.ga_days),
        source=m.source,
        reported_by_mother=m.reported_by_mother,
        visit_id=m.visit_id,
        recorded_by_name=m.recorded_by_name,
        recorded_by_role=m.recorded_by_role,
        recorded_at=m.recorded_at,
        station_code=m.station_code,
        corrects_id=m.corrects_id,
        superseded_at=m.superseded_at,
        superseded_by_name=m.superseded_by_name,
        correction_reason=m.correction_reason,
        current=m.superseded_at is None,
    )


async def _pregnancy(session: SessionDep, mother: Mother) -> Pregnancy:
    pregnancy = await MotherRepository(session).active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    return pregnancy


@router.post(
    "/mothers/{mother_id}/measurements",
    status_code=status.HTTP_201_CREATED,
    response_model=MeasurementList,
    summary="Record her readings (weight, blood pressure, pulse, fundal height, FHR, urine "
    "protein, NST); a butler's are marked reported by the mother",
    description="Units are converted (斤/jin, g, lb to kg; kPa to mmHg; m to cm) and checked "
    "against plausible ranges: a reading outside them is a 422 naming the field "
    "(readings.N.value ...), and nothing is stored. Each reading goes to the clinical rules. "
    "Her height and pre-pregnancy weight are one value each in a pregnancy: recorded by the "
    "desk at enrolment, a doctor or the nutritionist (not a butler or a station, 403); a "
    "second one is a 409 listing every one already recorded (errors: readings.N, each with "
    "the correction route of the one recorded). Every bad reading is in one 422. A station "
    "account records them only when its station takes readings (vitals, NST): else 403.",
    dependencies=[MeasuringStation, Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def record_measurements(
    body: MeasurementsCreate,
    actor: MeasurementTaker,
    mother: MeasuredMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MeasurementList:
    pregnancy = await _pregnancy(session, mother)
    rows = await service.record(
        session,
        mother=mother,
        pregnancy=pregnancy,
        readings=[
            service.NewReading(
                Entered(r.kind, r.value, r.value2, r.unit, r.result),
                r.measured_at,
                f"readings.{i}",
            )
            for i, r in enumerate(body.readings)
        ],
        actor=actor,
        now=clock.now(),
        tz=settings.tz,
        limits=domain.limits(settings.measurement_limits_file),
        reported_by_mother=body.reported_by_mother,
    )
    audit.record(
        "mother.measurements.create",
        "mother",
        mother.id,
        detail={"kinds": sorted({r.kind.value for r in rows}), "count": len(rows)},
    )
    return MeasurementList(items=[view(r) for r in rows])


@router.get(
    "/mothers/{mother_id}/measurements",
    response_model=MeasurementList,
    summary="Her readings in this pregnancy, oldest first (corrected ones on request)",
    description="For the doctors, the nutritionist, the stations, her own butler, the admin "
    "and the front desk (which shows her weight and blood-pressure charts). Her lab values "
    "are on the timeline, which the desk does not read.",
    responses=problem_responses(404),
)
async def list_measurements(
    mother: ListedMother,
    session: SessionDep,
    audit: AuditDep,
    kind: Annotated[list[MeasurementKind] | None, Query()] = None,
    include_corrected: Annotated[
        bool, Query(description="Also the readings a correction replaced (kept, marked).")
    ] = False,
) -> MeasurementList:
    pregnancy = await _pregnancy(session, mother)
    rows = await service.readings(
        session, pregnancy=pregnancy, kinds=kind, include_superseded=include_corrected
    )
    audit.record("mother.measurements.read", "mother", mother.id)
    return MeasurementList(items=[view(r) for r in rows])


@router.post(
    "/measurements/{measurement_id}/corrections",
    status_code=status.HTTP_201_CREATED,
    response_model=MeasurementPublic,
    summary="Correct a reading: a new reading replaces it; the earlier one is kept, marked "
    "with who corrected it, when and why",
    description="A doctor or the nutritionist corrects any reading; a station account the "
    "readings taken at its own station (`station_code`; not one of no recorded station); a "
    "butler what a butler entered for her; the front desk only her height and pre-pregnancy "
    "weight as entered at enrolment (not one a clinician recorded or corrected "
    "since): anything else is a 403.",
    dependencies=[Idempotent],
    responses=problem_responses(404, 409),
)
async def correct_measurement(
    body: CorrectionCreate,
    actor: MeasurementCorrector,
    target: VisibleMeasurement,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MeasurementPublic:
    original, mother = target
    pregnancy = await MotherRepository(session).pregnancy(original.pregnancy_id)
    assert pregnancy is not None
    row = await service.correct(
        session,
        original=original,
        pregnancy=pregnancy,
        entered=Entered(original.kind, body.value, body.value2, body.unit, body.result),
        measured_at=body.measured_at,
        reason=body.reason,
        actor=actor,
        now=clock.now(),
        tz=settings.tz,
        limits=domain.limits(settings.measurement_limits_file),
    )
    audit.record(
        "measurement.correct",
        "measurement",
        original.id,
        mother_id=mother.id,
        detail={"mother_id": str(mother.id), "replaced_by": str(row.id)},
    )
    return view(row)


@router.get(
    "/mothers/{mother_id}/timeline",
    response_model=Timeline,
    summary="Her measurements and lab results (haemoglobin g/L, glucose and the OGTT's "
    "fasting, 1 h and 2 h values in mmol/L) in this pregnancy, by time, each with its GA",
    description="For the doctors, the nutritionist, the stations, her own butler and the "
    "admin; not the front desk (lab values are not the desk's: it reads her readings at "
    "/measurements for her charts).",
    responses=problem_responses(404),
)
async def timeline(
    mother: MeasuredMother,
    session: SessionDep,
    audit: AuditDep,
    settings: SettingsDep,
) -> Timeline:
    pregnancy = await _pregnancy(session, mother)
    items = await service.timeline(session, mother=mother, pregnancy=pregnancy, tz=settings.tz)
    unmapped = await service.unmapped_lab_results(
        session, mother=mother, pregnancy=pregnancy, tz=settings.tz
    )
    audit.record("mother.timeline.read", "mother", mother.id)
    return Timeline(
        mother_id=mother.id,
        pregnancy_id=pregnancy.id,
        unmapped_results=len(unmapped),
        unmapped=[UnmappedResult(report_id=u.report_id, code=u.code) for u in unmapped],
        items=[
            TimelineEntry(
                type="lab" if i.type == "lab" else "measurement",
                kind=i.kind,
                at=i.at,
                ga_days=i.ga_days,
                gestational_age=service.gestational_age(i.ga_days),
                value=i.value,
                value2=i.value2,
                result=i.result,
                unit=i.unit,
                reported_by_mother=i.reported_by_mother,
                measurement_id=i.measurement_id,
                report_id=i.report_id,
                code=i.code,
                flag=i.flag,
                entered=i.entered,
            )
            for i in items
        ],
    )
