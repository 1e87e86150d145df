"""Checked-in visits made directly in the database, for the simulator and concurrency tests.

These rows are what enrolment, booking and check-in would have written; they skip the butler
choice and the care plan (the scenario names the exams). The queue code that runs on them is
the real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.mothers.domain import PREGNANCY_DAYS, DatingMethod, RiskGrade, check_digit
from app.mothers.models import Mother, Pregnancy, PregnancyStatus
from app.queues.domain import Catalogue
from app.visits.domain import VisitStatus
from app.visits.models import ClinicSession, ExamOrder, Visit


def checksum_id(first17: str) -> str:
    """A national id with a valid ISO 7064 MOD 11-2 check digit."""
    return first17 + check_digit(first17)


async def clinic_session(
    session: AsyncSession, day: date, opens: time, closes: time, *, now: datetime
) -> ClinicSession:
    row = ClinicSession(
        name="simulated",
        session_date=day,
        starts_at=opens,
        ends_at=closes,
        per_hour=60,
        is_open=True,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def checked_in_visit(
    session: AsyncSession,
    *,
    number: int,
    clinic: ClinicSession,
    exams: Sequence[str],
    catalogue: Catalogue,
    gestational_week: int,
    scheduled_at: datetime,
    arrived_at: datetime,
    walk_in: bool,
    risk: RiskGrade = RiskGrade.GREEN,
) -> Visit:
    day = clinic.session_date
    mother = Mother(
        mrn=f"SIM{number:06d}",
        name=f"Mother {number:04d}",
        national_id=checksum_id(f"110105199501{number // 1000 % 28 + 1:02d}{number % 1000:03d}"),
        phone=f"139{number:08d}",
        date_of_birth=date(1995, 1, 1),
        language="zh-CN",
        created_at=arrived_at,
        updated_at=arrived_at,
    )
    session.add(mother)
    await session.flush()
    ga_days = gestational_week * 7 + 1
    pregnancy = Pregnancy(
        mother_id=mother.id,
        status=PregnancyStatus.ACTIVE,
        lmp_date=None,
        edd_date=day + timedelta(days=PREGNANCY_DAYS - ga_days),
        dating_method=DatingMethod.REPORTED,
        gravida=1,
        para=0,
        risk_grade=risk,
        care_plan_code="cn-2018",
        created_at=arrived_at,
    )
    session.add(pregnancy)
    await session.flush()
    visit = Visit(
        mother_id=mother.id,
        pregnancy_id=pregnancy.id,
        session_id=clinic.id,
        visit_date=day,
        scheduled_at=scheduled_at,
        slot_start=clinic.starts_at,
        window_code=None,
        status=VisitStatus.CHECKED_IN,
        walk_in=walk_in,
        arrived_at=arrived_at,
        created_at=arrived_at,
        updated_at=arrived_at,
    )
    session.add(visit)
    await session.flush()
    for code in dict.fromkeys(exams):
        rule = catalogue.rules[code]
        session.add(
            ExamOrder(
                order_number=f"SIM-{number:05d}-{uuid.uuid4().hex[:8]}",
                visit_id=visit.id,
                pregnancy_id=pregnancy.id,
                exam_code=code,
                exam_name=rule.name,
                fasting=rule.fasting,
                source="care_plan",
                ordered_by_name="simulator",
                created_at=arrived_at,
            )
        )
    await session.flush()
    return visit
