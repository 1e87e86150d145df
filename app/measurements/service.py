"""Recording her measurements and correcting them; her timeline with the lab's results.

Every stored (or corrected) reading is handed to the clinical rules
(``clinical.service.on_measurement``) in the same transaction: the rules decide what it means,
this package only keeps what was measured, converted and checked."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.clinical import service as clinical
from app.core.errors import Conflict, FieldError, Forbidden, ValidationFailed, invalid_field
from app.core.principal import Principal
from app.measurements import domain
from app.measurements.domain import (
    BASELINE_KINDS,
    Entered,
    LabKind,
    Limits,
    MeasurementKind,
    MeasurementSource,
    ReadingError,
)
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from app.mothers.domain import format_gestational_age, gestational_age_days
from app.mothers.models import Mother, Pregnancy

logger = logging.getLogger("app.measurements")

# A clock a few minutes fast on a station's tablet is not a reading from the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_GA_DAYS = 320  # the column's CHECK; beyond 44 weeks the dating or the time is wrong

SOURCE_OF_ROLE = {
    Role.DOCTOR.value: MeasurementSource.DOCTOR,
    Role.NUTRITIONIST.value: MeasurementSource.NUTRITIONIST,
    Role.STATION.value: MeasurementSource.STATION,
    Role.BUTLER.value: MeasurementSource.BUTLER,
}

# What a station records when it finishes an exam of these types (``queues`` finish).
STATION_KINDS: dict[str, frozenset[MeasurementKind]] = {
    "vitals": frozenset(
        {MeasurementKind.WEIGHT, MeasurementKind.BLOOD_PRESSURE, MeasurementKind.PULSE}
    ),
    "nst": frozenset({MeasurementKind.NST, MeasurementKind.FETAL_HEART_RATE}),
}


@dataclass(frozen=True, slots=True)
class NewReading:
    """A reading to store; ``field`` is where it sits in the request (for a 422)."""

    entered: Entered
    measured_at: datetime | None
    field: str
    whole: bool = False  # ``field`` is the value itself (enrolment's height_cm), not a reading


# Who records her height and pre-pregnancy weight: the desk at enrolment (source enrolment),
# a doctor or the nutritionist. Not her butler (hearsay about a value BMI and every weight-gain
# band rest on) and not a station (its vitals step takes weight, blood pressure and pulse).
BASELINE_ROLES = frozenset(
    {Role.ADMIN.value, Role.DOCTOR.value, Role.NUTRITIONIST.value, Role.FRONT_DESK.value}
)
BASELINE_NAMES = {
    MeasurementKind.HEIGHT: "height",
    MeasurementKind.PRE_PREGNANCY_WEIGHT: "pre-pregnancy weight",
}


def source_of(actor: Principal) -> MeasurementSource:
    source = SOURCE_OF_ROLE.get(actor.role)
    if source is None:
        raise Forbidden("Your role does not record measurements.")
    return source


def _field_error(field: str, exc: ReadingError) -> Exception:
    return invalid_field(f"{field}.{exc.field}", exc.detail)


def _ga_days(
    kind: MeasurementKind, pregnancy: Pregnancy, measured_at: datetime, tz: ZoneInfo, field: str
) -> int | None:
    if kind in BASELINE_KINDS:
        return None
    ga = gestational_age_days(pregnancy.edd_date, measured_at.astimezone(tz).date())
    if ga < 0 or ga > MAX_GA_DAYS:
        raise invalid_field(
            f"{field}.measured_at",
            f"{measured_at.astimezone(tz).date().isoformat()} is outside this pregnancy "
            f"(gestational age {ga} days by its EDD)",
        )
    return ga


def _when(measured_at: datetime | None, now: datetime, field: str) -> datetime:
    if measured_at is None:
        return now
    if measured_at.tzinfo is None:
        raise invalid_field(f"{field}.measured_at", "give the time with its UTC offset")
    if measured_at > now + FUTURE_TOLERANCE:
        raise invalid_field(f"{field}.measured_at", "is in the future")
    return measured_at


def _row(
    *,
    mother_id: uuid.UUID,
    pregnancy: Pregnancy,
    reading: NewReading,
    limits: Limits,
    actor: Principal,
    source: MeasurementSource,
    reported_by_mother: bool,
    visit_id: uuid.UUID | None,
    now: datetime,
    tz: ZoneInfo,
) -> Measurement:
    try:
        normal = domain.normalise(reading.entered, limits)
    except ReadingError as exc:
        if reading.whole:
            raise invalid_field(reading.field, exc.detail) from None
        raise _field_error(reading.field, exc) from None
    measured_at = _when(reading.measured_at, now, reading.field)
    return Measurement(
        mother_id=mother_id,
        pregnancy_id=pregnancy.id,
        kind=normal.kind,
        value=normal.value,
        value2=normal.value2,
        result=normal.result,
        unit=normal.unit,
        entered=reading.entered.as_json(),
        measured_at=measured_at,
        ga_days=_ga_days(normal.kind, pregnancy, measured_at, tz, reading.field),
        source=source,
        # Her butler was not there: what she enters is what the mother told her.
        reported_by_mother=reported_by_mother or source is MeasurementSource.BUTLER,
        visit_id=visit_id,
        recorded_by_id=actor.id,
        recorded_by_name=actor.name,
        recorded_by_role=actor.role,
        recorded_at=now,
        station_code=actor.station_code if actor.role == Role.STATION.value else None,
    )


async def record(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    readings: Sequence[NewReading],
    actor: Principal,
    now: datetime,
    tz: ZoneInfo,
    limits: Limits,
    source: MeasurementSource | None = None,
    reported_by_mother: bool = False,
    visit_id: uuid.UUID | None = None,
) -> list[Measurement]:
    """Store her readings (all or none: one implausible reading refuses the request) and hand
    each to the clinical rules."""
    if pregnancy.mother_id != mother.id:
        raise Conflict("That pregnancy is not hers.")
    source = source or source_of(actor)
    repo = MeasurementRepository(session)
    await _one_baseline(repo, pregnancy, readings, actor)
    rows: list[Measurement] = []
    errors: list[FieldError] = []
    for r in readings:  # every bad reading in one answer, not one per call
        try:
            rows.append(
                _row(
                    mother_id=mother.id,
                    pregnancy=pregnancy,
                    reading=r,
                    limits=limits,
                    actor=actor,
                    source=source,
                    reported_by_mother=reported_by_mother,
                    visit_id=visit_id,
                    now=now,
                    tz=tz,
                )
            )
        except ValidationFailed as exc:
            errors.extend(exc.errors or [])
    if errors:
        raise _all_of(errors)
    for row in rows:
        repo.add(row)
    await session.flush()
    for row in rows:
        await clinical.on_measurement(session, measurement_id=row.id, now=now)
    return rows


def _all_of(errors: Sequence[FieldError]) -> ValidationFailed:
    if len(errors) == 1:
        return invalid_field(errors[0].field, errors[0].detail)
    return ValidationFailed(
        "; ".join(f"{e.field}: {e.detail}" for e in errors), errors=list(errors)
    )


async def _one_baseline(
    repo: MeasurementRepository,
    pregnancy: Pregnancy,
    readings: Sequence[NewReading],
    actor: Principal,
) -> None:
    """Her height and pre-pregnancy weight are one value each in a pregnancy: a second one is
    a 409 naming the correction route (a new value silently winning would move her BMI group
    and every weight-gain band without anyone saying the first was wrong). Only the desk at
    enrolment, a doctor or the nutritionist records them (403 for anyone else). The partial
    unique index ``uq_measurements_one_current_baseline`` (migration 0022) holds it too."""
    wanted = [r for r in readings if r.entered.kind in BASELINE_KINDS]
    if not wanted:
        return
    if actor.role not in BASELINE_ROLES:
        name = BASELINE_NAMES[wanted[0].entered.kind]
        raise Forbidden(
            f"A {actor.role} does not record her {name}: the desk at enrolment, a doctor or "
            "the nutritionist does."
        )
    seen: set[MeasurementKind] = set()
    for r in wanted:
        if r.entered.kind in seen:
            raise invalid_field(
                f"{r.field}.kind" if not r.whole else r.field,
                f"her {BASELINE_NAMES[r.entered.kind]} is one value: give it once",
            )
        seen.add(r.entered.kind)
    existing = {row.kind: row for row in await repo.current(pregnancy.id, sorted(seen))}
    conflicts = [(r, existing[r.entered.kind]) for r in wanted if r.entered.kind in existing]
    if not conflicts:
        return
    # Every one already recorded, each named by where it sits in the request (readings.N, or
    # enrolment's height_cm), in one answer: a height, then a weight on the next call, is two
    # round trips for one mistake.
    details = [
        (
            r.field,
            f"her {BASELINE_NAMES[row.kind]} is already recorded ({row.value:g} {row.unit}):"
            f" correct it at POST /v1/measurements/{row.id}/corrections",
        )
        for r, row in conflicts
    ]
    raise Conflict(
        "; ".join(f"{field}: {detail}" for field, detail in details) + ".",
        errors=[
            FieldError(
                field=field, location="body", pointer="#/" + field.replace(".", "/"), detail=detail
            )
            for field, detail in details
        ],
        extra={
            "measurement_id": str(conflicts[0][1].id),
            "measurement_ids": [str(row.id) for _, row in conflicts],
        },
    )


class WrongStationReading(Forbidden):
    slug = "wrong-station"
    title = "This account works at another station"


def _may_correct(actor: Principal, original: Measurement) -> None:
    """A clinician corrects any reading; a station account its own station's readings; a butler only
    what was reported by the mother through a butler (never a clinical reading). Her height
    and pre-pregnancy weight a doctor or the nutritionist corrects, and the front desk the
    ones it typed at enrolment (source enrolment, its own corrections of them included): not
    one a clinician has recorded or corrected since (a measured value is not the desk's to
    overwrite), and no other kind of reading."""
    role = actor.role
    if role in (Role.DOCTOR.value, Role.NUTRITIONIST.value):
        return
    if role == Role.FRONT_DESK.value:
        if original.kind in BASELINE_KINDS and original.source is MeasurementSource.ENROLMENT:
            return
        if original.kind in BASELINE_KINDS:
            raise Forbidden(
                f"The front desk corrects the {BASELINE_NAMES[original.kind]} entered at "
                f"enrolment; this one was recorded by {original.source.value}: a doctor or "
                "the nutritionist corrects it."
            )
        raise Forbidden(
            "The front desk corrects only her height and pre-pregnancy weight entered at enrolment."
        )
    if original.kind in BASELINE_KINDS:
        raise Forbidden(
            f"A {role} does not correct her {BASELINE_NAMES[original.kind]}: a doctor, the "
            "nutritionist or (for what it entered at enrolment) the front desk does."
        )
    if role == Role.STATION.value and original.source is MeasurementSource.STATION:
        # Its own station's readings only; one of no recorded station (before 0028) is a
        # clinician's to correct: which room took it is not known.
        if original.station_code is not None and original.station_code == actor.station_code:
            return
        raise WrongStationReading(
            f"This account is bound to station {actor.station_code}; the reading was taken "
            + (
                f"at {original.station_code}."
                if original.station_code
                else "at no recorded station: a doctor or the nutritionist corrects it."
            ),
            extra={"station_code": actor.station_code, "station": original.station_code},
        )
    if role == Role.BUTLER.value and original.source is MeasurementSource.BUTLER:
        return
    raise Forbidden(f"A {role} may not correct a reading recorded by {original.source.value}.")


async def correct(
    session: AsyncSession,
    *,
    original: Measurement,
    pregnancy: Pregnancy,
    entered: Entered,
    measured_at: datetime | None,
    reason: str,
    actor: Principal,
    now: datetime,
    tz: ZoneInfo,
    limits: Limits,
) -> Measurement:
    """A new reading replaces ``original``, which stays, marked superseded with who and why."""
    _may_correct(actor, original)
    if original.superseded_at is not None:
        raise Conflict("This reading was already corrected; correct the reading that replaced it.")
    if not reason.strip():
        raise invalid_field("reason", "say why it is corrected")
    if entered.kind is not original.kind:
        raise invalid_field("kind", "a correction keeps the kind of the reading")
    row = _row(
        mother_id=original.mother_id,
        pregnancy=pregnancy,
        reading=NewReading(entered, measured_at or original.measured_at, "body"),
        limits=limits,
        actor=actor,
        source=source_of(actor) if actor.role in SOURCE_OF_ROLE else original.source,
        reported_by_mother=original.reported_by_mother,
        visit_id=original.visit_id,
        now=now,
        tz=tz,
    )
    row.corrects_id = original.id
    row.correction_reason = reason.strip()
    original.superseded_at = now
    original.superseded_by_name = actor.name
    original.correction_reason = reason.strip()
    await session.flush()  # the old row first: the partial unique index and the FK hold
    MeasurementRepository(session).add(row)
    await session.flush()
    await clinical.on_measurement(session, measurement_id=row.id, now=now)
    return row


async def readings(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    kinds: Sequence[MeasurementKind] | None = None,
    include_superseded: bool = False,
) -> list[Measurement]:
    return await MeasurementRepository(session).of_pregnancy(
        pregnancy.id, kinds=kinds, include_superseded=include_superseded
    )


def gestational_age(ga_days: int | None) -> str | None:
    return format_gestational_age(ga_days) if ga_days is not None else None


# The timeline ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineItem:
    type: str  # measurement | lab
    kind: MeasurementKind | LabKind
    at: datetime
    ga_days: int | None
    value: float | None
    unit: str
    value2: float | None = None
    result: str | None = None
    reported_by_mother: bool = False
    measurement_id: uuid.UUID | None = None
    report_id: uuid.UUID | None = None
    code: str | None = None
    flag: str | None = None
    entered: dict[str, Any] | None = None


async def timeline(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    tz: ZoneInfo,
    kinds: Sequence[MeasurementKind] | None = None,
) -> list[TimelineItem]:
    """Her current readings and her final lab results (haemoglobin, glucose, the OGTT's three
    values) in this pregnancy, in the timeline's units, by time. A lab value in a unit the map
    does not list, or sent as a comparator ("<2.0"), stays in its report: never guessed."""
    repo = MeasurementRepository(session)
    items = [
        TimelineItem(
            type="measurement",
            kind=m.kind,
            at=m.measured_at,
            ga_days=m.ga_days,
            value=m.value,
            value2=m.value2,
            result=m.result,
            unit=m.unit,
            reported_by_mother=m.reported_by_mother,
            measurement_id=m.id,
        )
        for m in await repo.of_pregnancy(pregnancy.id, kinds=kinds)
    ]
    if kinds is None:
        table = domain.installed_lab_codes()
        for result in await repo.lab_results(mother.id):
            kind = domain.lab_kind(result.code, result.display, table)
            if kind is None or result.numeric is None or result.comparator not in (None, "="):
                continue
            value = domain.lab_value(kind, result.numeric, result.unit, table)
            if value is None:
                continue
            ga = gestational_age_days(pregnancy.edd_date, result.at.astimezone(tz).date())
            if ga < 0 or ga > MAX_GA_DAYS:
                continue  # another pregnancy's (or a wrongly dated) result
            items.append(
                TimelineItem(
                    type="lab",
                    kind=kind,
                    at=result.at,
                    ga_days=ga,
                    value=value,
                    unit=domain.lab_unit(kind, table),
                    report_id=result.report_id,
                    code=result.code,
                    flag=result.flag,
                    entered={"value": result.numeric, "unit": result.unit},
                )
            )
    items.sort(key=lambda i: i.at)
    return items


@dataclass(frozen=True, slots=True)
class Unmapped:
    report_id: uuid.UUID
    code: str


async def unmapped_lab_results(
    session: AsyncSession, *, mother: Mother, pregnancy: Pregnancy, tz: ZoneInfo
) -> list[Unmapped]:
    """Her final numeric results in this pregnancy that the code map does not list but that
    look like a timeline analyte under a local code (``domain.looks_unmapped``): not guessed
    onto her timeline, but counted and logged (report ids and codes only: no value, no name)
    so that the integration engineers add the code to LAB_CODES_FILE."""
    table = domain.installed_lab_codes()
    found = []
    for result in await MeasurementRepository(session).lab_results(mother.id, unmapped=True):
        if not domain.looks_unmapped(result.code, result.display, result.unit, table):
            continue
        ga = gestational_age_days(pregnancy.edd_date, result.at.astimezone(tz).date())
        if 0 <= ga <= MAX_GA_DAYS:
            found.append(Unmapped(result.report_id, result.code.strip()))
    if found:
        logger.warning(
            "lab results not on the map",
            extra={
                "mother_id": str(mother.id),
                "count": len(found),
                "reports": sorted({str(u.report_id) for u in found}),
                "codes": sorted({u.code for u in found}),
            },
        )
    return found
