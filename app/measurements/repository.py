"""Every query of her measurements (the clinical rules, the plans and the charts read here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import UTCDateTime
from app.measurements.domain import MeasurementKind, installed_lab_codes
from app.measurements.models import Measurement
from app.reports.domain import READY
from app.reports.models import LabObservation, LabReport

# OBX-11 / Observation.status of a final value (HL7 table 0085: F final, C corrected, U made
# final without resending; FHIR final, corrected, amended). Empty: the report's status holds.
FINAL_RESULT_STATUSES = ("f", "c", "u", "final", "corrected", "amended", "appended")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What her BMI and weight gain are computed from (None: not recorded)."""

    height_cm: float | None
    pre_pregnancy_weight_kg: float | None


@dataclass(frozen=True, slots=True)
class LabResult:
    report_id: uuid.UUID
    code: str
    display: str | None
    numeric: float | None
    comparator: str | None
    unit: str | None
    flag: str | None
    at: datetime  # when it was taken (effective), else issued, else received


class MeasurementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, measurement: Measurement) -> None:
        self.session.add(measurement)

    async def get(self, measurement_id: uuid.UUID) -> Measurement | None:
        return await self.session.get(Measurement, measurement_id)

    async def get_for_update(self, measurement_id: uuid.UUID) -> Measurement | None:
        """The row locked (PostgreSQL), so two corrections of it cannot both pass the check."""
        stmt = select(Measurement).where(Measurement.id == measurement_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def current(
        self, pregnancy_id: uuid.UUID, kinds: Sequence[MeasurementKind]
    ) -> list[Measurement]:
        """Her readings of these kinds that no correction replaced, oldest first."""
        stmt = (
            select(Measurement)
            .where(
                Measurement.pregnancy_id == pregnancy_id,
                Measurement.kind.in_(list(kinds)),
                Measurement.superseded_at.is_(None),
            )
            .order_by(Measurement.measured_at, Measurement.recorded_at, Measurement.id)
        )
        return list(await self.session.scalars(stmt))

    async def of_pregnancy(
        self,
        pregnancy_id: uuid.UUID,
        *,
        kinds: Sequence[MeasurementKind] | None = None,
        include_superseded: bool = False,
    ) -> list[Measurement]:
        """Her readings in this pregnancy, oldest first; corrected ones too if asked."""
        stmt = select(Measurement).where(Measurement.pregnancy_id == pregnancy_id)
        if kinds:
            stmt = stmt.where(Measurement.kind.in_(list(kinds)))
        if not include_superseded:
            stmt = stmt.where(Measurement.superseded_at.is_(None))
        stmt = stmt.order_by(Measurement.measured_at, Measurement.recorded_at, Measurement.id)
        return list(await self.session.scalars(stmt))

    async def baseline(self, pregnancy_id: uuid.UUID) -> Baseline:
        """Her height and pre-pregnancy weight: the latest current reading of each."""
        rows = await self.current(
            pregnancy_id, [MeasurementKind.HEIGHT, MeasurementKind.PRE_PREGNANCY_WEIGHT]
        )
        height = weight = None
        for row in rows:  # oldest first: the last one wins
            if row.kind is MeasurementKind.HEIGHT:
                height = row.value
            else:
                weight = row.value
        return Baseline(height_cm=height, pre_pregnancy_weight_kg=weight)

    async def lab_results(self, mother_id: uuid.UUID, *, unmapped: bool = False) -> list[LabResult]:
        """Her final results whose codes the timeline's map lists, from reports matched to her;
        with ``unmapped``, her final numeric results whose codes it does not list instead."""
        codes = list(installed_lab_codes().codes)
        listed = func.lower(func.trim(LabObservation.code)).in_(codes)
        at = func.coalesce(
            LabReport.effective_at, LabReport.issued_at, LabReport.received_at, type_=UTCDateTime()
        )
        stmt = (
            select(LabObservation, LabReport.id, at)
            .join(LabReport, LabReport.id == LabObservation.report_id)
            .where(
                LabReport.mother_id == mother_id,
                LabReport.status.in_(list(READY)),
                ~listed if unmapped else listed,
                *([LabObservation.numeric.is_not(None)] if unmapped else []),
                or_(
                    LabObservation.status.is_(None),
                    func.trim(LabObservation.status) == "",
                    func.lower(func.trim(LabObservation.status)).in_(FINAL_RESULT_STATUSES),
                ),
            )
            .order_by(at, LabObservation.seq)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            LabResult(
                report_id=report_id,
                code=obs.code,
                display=obs.display,
                numeric=obs.numeric,
                comparator=obs.comparator,
                unit=obs.unit or obs.unit_code,
                flag=obs.flag,
                at=when,
            )
            for obs, report_id, when in rows
        ]
