"""Shared by the capacity tests: the ultrasound's rooms and hours, learned minutes, and
mothers whose visits need known exams."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.queues.models import ExamType, Station
from tests.helpers.api import Api
from tests.helpers.factories import BOOKING_PANEL, record_elsewhere
from tests.helpers.mothers import mother_with_butler

# A first visit at 30+4 on TUESDAY: her booking panel, the OGTT and an obstetric scan.
FIRST_VISIT_LMP = "2026-05-01"
FIRST_VISIT_EXAMS = [
    "vitals",
    "consultation",
    "cbc",
    "urine",
    "abo_rh",
    "liver_kidney",
    "hbsag",
    "syphilis",
    "hiv",
    "ogtt",
    "us_obstetric",
]
# A later visit at 32+1 (her panel and OGTT recorded elsewhere): nothing fasting.
LATER_VISIT_LMP = "2026-04-20"
LATER_VISIT_EXAMS = ["vitals", "consultation", "us_obstetric", "cbc", "urine"]


async def set_stations(
    factory: async_sessionmaker[AsyncSession],
    *,
    us_rooms: int,
    us_hours: tuple[time, time] = (time(7, 30), time(17, 30)),
    learned: dict[str, float] | None = None,
) -> None:
    """The ultrasound station's rooms and hours, and learned service minutes."""
    async with factory() as session:
        await session.execute(
            update(Station)
            .where(Station.code == "US")
            .values(servers=us_rooms, opens_at=us_hours[0], closes_at=us_hours[1])
        )
        for code, minutes in (learned or {}).items():
            await session.execute(
                update(ExamType)
                .where(ExamType.code == code)
                .values(learned_service_minutes=minutes, learned_samples=10)
            )
        await session.commit()


async def capacity_mother(
    api: Api, n: int, *, lmp: str = FIRST_VISIT_LMP, later: bool = False
) -> Any:
    mother = await mother_with_butler(
        api,
        serial=f"{200 + n}",
        phone=f"13800002{n:03d}",
        pregnancy={"lmp_date": lmp, "gravida": 1, "para": 0, "risk_grade": "green"},
    )
    if later:
        await record_elsewhere(api.client, api.auth("doctor"), mother["id"], BOOKING_PANEL)
        await record_elsewhere(
            api.client, api.auth("doctor"), mother["id"], ["ogtt"], on="2026-10-01"
        )
    return mother
