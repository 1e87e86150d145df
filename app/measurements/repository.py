"""Every query of her measurements (the clinical rules, the plans and the charts read here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.measurements.domain import MeasurementKind
from app.measurements.models import Measurement


@dataclass(frozen=True, slots=True)
class Baseline:
    """What her BMI and weight gain are computed from (None: not recorded)."""

    height_cm: float | None
    pre_pregnancy_weight_kg: float | None


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
