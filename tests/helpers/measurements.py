"""Rows written straight into a database at an old revision, for the measurements' migration
tests: a mother with her active pregnancy, and readings of hers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.measurements.models import Measurement
from app.mothers.models import Mother, Pregnancy

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def reading_row(pregnancy: Pregnancy, kind: str, value: float, minutes: int) -> dict[str, object]:
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


async def seed_pregnancy(url: str) -> Pregnancy:
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
                reading_row(pregnancy, "height", 160, 0),
                reading_row(pregnancy, "height", 162, 30),  # the later one won
                reading_row(pregnancy, "height", 161, 10),
                reading_row(pregnancy, "pre_pregnancy_weight", 55, 0),  # alone: untouched
            ]
            await conn.execute(Measurement.__table__.insert(), rows)
    finally:
        await engine.dispose()
    return pregnancy
