"""The data of her charts, read from her measurements and the weight-gain engine.

The renderer draws what these return and nothing else, and a chart's ETag is the fingerprint of
that data: a new reading, a correction or another table gives another ETag, and nothing else
does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.charts.domain import (
    BandPoint,
    GainStatus,
    Label,
    PressureChart,
    PressureReading,
    WeightChart,
    WeightReading,
)
from app.clinical import gwg
from app.measurements.domain import MeasurementKind, bmi
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from app.mothers.models import Pregnancy

# The band is drawn through these days: every week, and both sides of the end of the first
# trimester (13+6 / 14+0), where the band turns from the first-trimester range to the weekly.
TERM_DAYS = 280


def band_days(first_trimester_last_day: int, term_day: int = TERM_DAYS) -> list[int]:
    return sorted(
        {*range(0, term_day + 1, 7), first_trimester_last_day, first_trimester_last_day + 1}
    )


# The short names a chart has room for; a hospital's own table is named by its title and year.
SHORT_NAMES = {"wst-801-2022": "WS/T 801—2022", "iom-2009": "IOM 2009"}


def table_label(table: gwg.GwgTable) -> Label:
    return Label("", SHORT_NAMES.get(table.code) or f"{table.name_en} ({table.year})")


NO_BASELINE = Label(
    "缺少孕前体重或身高，无法给出范围", "No pre-pregnancy weight or height: no expected range"
)


async def weight_chart(
    session: AsyncSession, pregnancy: Pregnancy, *, table_code: str | None = None
) -> WeightChart:
    """Her weight readings against the band of her BMI group (pre-pregnancy weight + gain)."""
    repo = MeasurementRepository(session)
    rows = [
        r
        for r in await repo.current(pregnancy.id, [MeasurementKind.WEIGHT])
        if r.ga_days is not None
    ]
    baseline = await repo.baseline(pregnancy.id)
    table = gwg.table(table_code)
    if baseline.height_cm is None or baseline.pre_pregnancy_weight_kg is None:
        return WeightChart(
            readings=tuple(
                WeightReading(r.ga_days or 0, r.value, None, r.reported_by_mother) for r in rows
            ),
            pre_pregnancy_weight_kg=baseline.pre_pregnancy_weight_kg,
            note=NO_BASELINE,
        )
    pre = baseline.pre_pregnancy_weight_kg
    her_bmi = bmi(baseline.height_cm, pre)
    group = gwg.group(table, her_bmi)
    readings = []
    for r in rows:
        ga = r.ga_days or 0
        status = gwg.status(r.value - pre, gwg.band(table, group, ga))
        readings.append(WeightReading(ga, r.value, GainStatus(status.value), r.reported_by_mother))
    return WeightChart(
        readings=tuple(readings),
        band=_band(table, group, pre),
        table=table_label(table),
        group=Label(group.label_zh, f"{group.label_en}, {group.bmi_range}"),
        pre_pregnancy_weight_kg=pre,
        bmi=round(her_bmi, 1),
    )


def _band(table: gwg.GwgTable, group: gwg.BmiGroup, pre_kg: float) -> tuple[BandPoint, ...]:
    points = []
    for day in band_days(table.first_trimester_last_day, table.term_day):
        b = gwg.band(table, group, day)
        points.append(BandPoint(day, round(pre_kg + b.low_kg, 2), round(pre_kg + b.high_kg, 2)))
    return tuple(points)


async def pressure_chart(session: AsyncSession, pregnancy: Pregnancy) -> PressureChart:
    """Her blood pressure readings over the pregnancy, against the 140/90 and 160/110 lines."""
    rows = await MeasurementRepository(session).current(
        pregnancy.id, [MeasurementKind.BLOOD_PRESSURE]
    )
    return PressureChart(readings=_pressures(rows))


def _pressures(rows: Sequence[Measurement]) -> tuple[PressureReading, ...]:
    return tuple(
        PressureReading(r.ga_days, r.value, r.value2, r.reported_by_mother)
        for r in rows
        if r.ga_days is not None and r.value2 is not None
    )
