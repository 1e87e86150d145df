"""Care-plan use cases over the database: what a visit is expected to order."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.careplan import domain as plan
from app.careplan.domain import Guideline
from app.mothers.domain import RiskGrade, gestational_age_days
from app.mothers.models import Pregnancy
from app.visits.models import Visit


async def exams_expected(
    session: AsyncSession, *, visit: Visit, guideline: Guideline, on: date
) -> list[str]:
    """The exam codes the care plan will order for this visit if she comes on ``on``."""
    pregnancy = await session.get(Pregnancy, visit.pregnancy_id)
    assert pregnancy is not None
    window = next(
        (
            w
            for w in plan.windows_for(guideline, RiskGrade(pregnancy.risk_grade))
            if w.code == visit.window_code
        ),
        None,
    )
    return plan.exams_due(guideline, window, gestational_age_days(pregnancy.edd_date, on))
