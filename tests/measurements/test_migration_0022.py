"""Migration 0022 on both databases: a pregnancy that already had two current heights (a
second POST silently won before) keeps the later one as her baseline, the earlier one marked
superseded by the migration with its reason, so the one-current-value index can be built."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import downgrade, upgrade
from app.measurements.models import Measurement
from app.mothers.models import Mother, Pregnancy

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def _reading(pregnancy: Pregnancy, kind: str, value: float, minutes: int) -> dict[str, object]:
    at = T0 + timedelta(minutes=minutes)
    return {
        "id": uuid.uuid4(),
        "mother_id": pregnancy.mother_id,
        "pregnancy_id": pregnancy.id,
        "kind": kind,
        "value": value,
        "unit": "cm" if kind == "height" else "kg",
        "entered": {"value": value},
        "measured_at": at,
        "source": "doctor",
        "reported_by_mother": False,
        "recorded_by_name": "doctor",
        "recorded_by_role": "doctor",
        "recorded_at": at,
    }


async def _seed(url: str) -> Pregnancy:
    engine = create_async_engine(url, poolclass=NullPool)
    mother_id, pregnancy_id = uuid.uuid4(), uuid.uuid4()
    pregnancy = Pregnancy(id=pregnancy_id, mother_id=mother_id)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                Mother.__table__.insert().values(
                    id=mother_id,
                    mrn="M1",
                    name="N",
                    national_id="110105199503070021",
                    phone="13800138000",
                    date_of_birth=date(1995, 3, 7),
                    language="zh-CN",
                    created_at=T0,
                    updated_at=T0,
                    version=1,
                )
            )
            await conn.execute(
                Pregnancy.__table__.insert().values(
                    id=pregnancy_id,
                    mother_id=mother_id,
                    status="active",
                    edd_date=date(2027, 3, 8),
                    dating_method="lmp",
                    gravida=1,
                    para=0,
                    risk_grade="green",
                    purple=False,
                    care_plan_code="cn-2018",
                    created_at=T0,
                )
            )
            rows = [
                _reading(pregnancy, "height", 160, 0),
                _reading(pregnancy, "height", 162, 30),  # the later one won
                _reading(pregnancy, "height", 161, 10),
                _reading(pregnancy, "pre_pregnancy_weight", 55, 0),  # alone: untouched
            ]
            await conn.execute(Measurement.__table__.insert(), rows)
    finally:
        await engine.dispose()
    return pregnancy


async def _heights(url: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    t = Measurement.__table__.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    t.kind, t.value, t.superseded_at, t.superseded_by_name, t.correction_reason
                ).order_by(t.kind, t.value)
            )
            return [tuple(r) for r in rows.all()]
    finally:
        await engine.dispose()


def test_0022_keeps_the_later_height_and_marks_the_earlier_ones(empty_database: str) -> None:
    upgrade(empty_database, "0021")
    asyncio.run(_seed(empty_database))
    upgrade(empty_database, "0022")
    rows = asyncio.run(_heights(empty_database))
    current = [(kind, value) for kind, value, at, *_ in rows if at is None]
    assert current == [("height", 162), ("pre_pregnancy_weight", 55)]
    marked = [r for r in rows if r[2] is not None]
    assert [r[1] for r in marked] == [160, 161]
    for _, _, at, by, reason in marked:
        assert by == "migration 0022"
        assert "0022" in reason
        assert at is not None
    downgrade(empty_database, "0021")
    upgrade(empty_database, "0022")
