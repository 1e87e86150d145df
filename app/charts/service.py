"""The data of her charts, read from her measurements and the weight-gain engine.

The renderer draws what these return and nothing else, and a chart's ETag is the fingerprint of
that data: a new reading, a correction or another table gives another ETag, and nothing else
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from app.charts.domain import (
    HYPERTENSION,
    SEVERE,
    BandPoint,
    GainStatus,
    Label,
    PressureChart,
    PressureLine,
    PressureReading,
    WeightChart,
    WeightReading,
)
from app.clinical import gwg
from app.clinical import service as clinical
from app.clinical.rules import Rules
from app.core.settings import Settings
from app.measurements.domain import MeasurementKind
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


def _not_covered(table: gwg.GwgTable, reason: str) -> Label:
    """B's engine says why (twins: WS/T 801 covers singletons only); the chart gives no band."""
    return Label(f"双胎妊娠：{SHORT_NAMES.get(table.code, table.name_zh)} 不适用，不给范围", reason)


async def weight_chart(
    session: AsyncSession, pregnancy: Pregnancy, settings: Settings
) -> WeightChart:
    """Her weight readings against the band of her BMI group (pre-pregnancy weight + gain), as
    the clinical rules see them (`clinical.service.weight_gain`: the table in force, twins)."""
    gain = await clinical.weight_gain(session, pregnancy)
    table = clinical.gwg_table_in_force(settings)
    rows = [
        r
        for r in await MeasurementRepository(session).current(
            pregnancy.id, [MeasurementKind.WEIGHT]
        )
        if r.ga_days is not None
    ]
    group = next((g for g in table.groups if g.code == gain.group_code), None)
    if group is None or gain.pre_pregnancy_weight_kg is None:
        # No band: her readings without a status, and why.
        missing = gain.height_cm is None or gain.pre_pregnancy_weight_kg is None
        return WeightChart(
            readings=tuple(
                WeightReading(r.ga_days or 0, r.value, None, r.reported_by_mother) for r in rows
            ),
            table=table_label(table),
            pre_pregnancy_weight_kg=gain.pre_pregnancy_weight_kg,
            note=NO_BASELINE if missing else _not_covered(table, gain.not_covered or ""),
        )
    reported = {r.id: r.reported_by_mother for r in rows}
    return WeightChart(
        readings=tuple(
            WeightReading(
                p.ga_days,
                p.weight_kg,
                GainStatus(p.status.value),
                reported.get(p.measurement_id, False),
            )
            for p in gain.readings
        ),
        band=_band(table, group, gain.pre_pregnancy_weight_kg),
        table=table_label(table),
        group=Label(group.label_zh, f"{group.label_en}, {group.bmi_range}"),
        pre_pregnancy_weight_kg=gain.pre_pregnancy_weight_kg,
        bmi=None if gain.bmi is None else round(gain.bmi, 1),
    )


def _band(table: gwg.GwgTable, group: gwg.BmiGroup, pre_kg: float) -> tuple[BandPoint, ...]:
    points = []
    for day in band_days(table.first_trimester_last_day, table.term_day):
        b = gwg.band(table, group, day)
        points.append(BandPoint(day, round(pre_kg + b.low_kg, 2), round(pre_kg + b.high_kg, 2)))
    return tuple(points)


def pressure_lines(rules: Rules) -> tuple[tuple[PressureLine, ...], int | None]:
    """The lines of the installed blood-pressure rules (the hypertension rule's two readings,
    the severe rule's one) and the day the first applies from; the built-in lines if a
    hospital's rules have neither."""
    lines: list[PressureLine] = []
    from_day: int | None = None
    for kind, base in (("bp_repeat", HYPERTENSION), ("bp_single", SEVERE)):
        for rule in rules.of_kind(kind):
            p = rule.params
            lines.append(
                replace(
                    base,
                    systolic=float(p["systolic_at_or_above"]),
                    diastolic=float(p["diastolic_at_or_above"]),
                )
            )
            if kind == "bp_repeat" and p.get("from_ga_days") is not None:
                from_day = int(p["from_ga_days"])
    if not lines:
        return (HYPERTENSION, SEVERE), 140
    return tuple(lines), from_day


async def pressure_chart(
    session: AsyncSession, pregnancy: Pregnancy, settings: Settings
) -> PressureChart:
    """Her blood pressure readings over the pregnancy, against the lines of the rules in force
    (140/90 and 160/110 as built in)."""
    rows = await MeasurementRepository(session).current(
        pregnancy.id, [MeasurementKind.BLOOD_PRESSURE]
    )
    lines, from_day = pressure_lines(clinical.rules_in_force(settings))
    return PressureChart(readings=_pressures(rows), lines=lines, rules_from_ga_days=from_day)


def _pressures(rows: Sequence[Measurement]) -> tuple[PressureReading, ...]:
    return tuple(
        PressureReading(r.ga_days, r.value, r.value2, r.reported_by_mother)
        for r in rows
        if r.ga_days is not None and r.value2 is not None
    )
