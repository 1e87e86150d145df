"""Migration 0023 on both databases: a blood pressure stored to 0.1 mmHg before today (21.3/13.3
kPa as 159.8/99.8) is whole mmHg after it (160/100), as new readings are, so the severe line
reads it; an implausible pair that rounding would make equal is left alone."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import downgrade, upgrade
from app.measurements.models import Measurement
from app.mothers.models import Pregnancy
from tests.helpers.measurements import reading_row, seed_pregnancy


async def _add_pressures(url: str, pregnancy: Pregnancy) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    rows = []
    for minutes, (s, d) in enumerate([(159.8, 99.8), (140.0, 90.0), (100.4, 99.6), (121.5, 80.2)]):
        row = reading_row(pregnancy, "blood_pressure", s, 100 + minutes)
        row |= {"value2": d, "unit": "mmHg", "entered": {"value": s, "value2": d}}
        rows.append(row)
    try:
        async with engine.begin() as conn:
            await conn.execute(Measurement.__table__.insert(), rows)
    finally:
        await engine.dispose()


async def _pressures(url: str) -> list[tuple[float, float]]:
    engine = create_async_engine(url, poolclass=NullPool)
    t = Measurement.__table__.c
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(t.value, t.value2).where(t.kind == "blood_pressure").order_by(t.measured_at)
            )
            return [(float(a), float(b)) for a, b in result.all()]
    finally:
        await engine.dispose()


def test_0023_rounds_earlier_blood_pressures_to_whole_mmhg(empty_database: str) -> None:
    upgrade(empty_database, "0021")
    pregnancy = asyncio.run(seed_pregnancy(empty_database))  # her heights as 0022 leaves them
    upgrade(empty_database, "0022")
    asyncio.run(_add_pressures(empty_database, pregnancy))
    upgrade(empty_database, "0023")
    assert asyncio.run(_pressures(empty_database)) == [
        (160.0, 100.0),
        (140.0, 90.0),
        (100.4, 99.6),  # rounding would make them equal: left for a person to look at
        (122.0, 80.0),
    ]
    downgrade(empty_database, "0022")
    upgrade(empty_database, "0023")
