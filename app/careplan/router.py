from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import AuditDep, require_roles
from app.auth.models import Role
from app.careplan import domain as plan
from app.careplan.registry import load_guidelines
from app.careplan.schemas import (
    CarePlanPublic,
    GuidelineList,
    GuidelineSummary,
    PlannedExamPublic,
    PlannedWindowPublic,
    PlanVisit,
)
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import Conflict, NotFound, problem_responses
from app.core.principal import Principal
from app.core.routing import SessionDep, make_router
from app.mothers.dependencies import MotherRepoDep, ReadableMother
from app.mothers.domain import RiskGrade, format_gestational_age, gestational_age_days
from app.visits.domain import ACTIVE
from app.visits.repository import VisitRepository

router = make_router(prefix="/v1", tags=["care plan"], responses=problem_responses(401, 422))

Staff = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.BUTLER))
]


@router.get(
    "/care-plan-guidelines",
    response_model=GuidelineList,
    summary="The guideline tables installed (built-in and the hospital's own)",
    responses=problem_responses(403),
)
async def list_guidelines(_who: Staff, settings: SettingsDep) -> GuidelineList:
    tables = load_guidelines(settings.care_plan_dir)
    return GuidelineList(
        items=[
            GuidelineSummary(
                code=g.code,
                version=g.version,
                title=g.title,
                windows=len(g.windows),
                exams=len(g.exams),
            )
            for g in tables.values()
        ]
    )


@router.get(
    "/mothers/{mother_id}/care-plan",
    response_model=CarePlanPublic,
    summary="Her care plan as dated today: windows, recommended exams, past and upcoming visits",
    responses=problem_responses(403, 404, 409),
)
async def care_plan(
    mother: ReadableMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> CarePlanPublic:
    pregnancy = await mothers.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    guideline = load_guidelines(settings.care_plan_dir).get(pregnancy.care_plan_code)
    if guideline is None:
        raise Conflict(f"The care-plan table {pregnancy.care_plan_code!r} is not installed.")
    visits_repo = VisitRepository(session)
    visits = await visits_repo.visits_of_pregnancy(pregnancy.id)
    done = await visits_repo.done_exam_codes([v.id for v in visits])
    today = local_today(clock, settings.tz)
    generated = plan.generate_plan(
        guideline,
        edd=pregnancy.edd_date,
        risk_grade=RiskGrade(pregnancy.risk_grade),
        today=today,
        enrolled_on=pregnancy.created_at.astimezone(settings.tz).date(),
        visits=[
            plan.VisitRef(
                visit_id=str(v.id),
                window_code=v.window_code,
                status=v.status.value,
                visit_date=v.visit_date,
                done_exams=frozenset(done[v.id]),
            )
            for v in visits
        ],
    )
    audit.record("mother.care_plan.read", "mother", mother.id)

    def brief(v: object) -> PlanVisit:
        return PlanVisit.model_validate(v, from_attributes=True)

    return CarePlanPublic(
        mother_id=mother.id,
        pregnancy_id=pregnancy.id,
        guideline_code=generated.guideline_code,
        guideline_version=generated.guideline_version,
        edd_date=generated.edd,
        gestational_age=format_gestational_age(gestational_age_days(pregnancy.edd_date, today)),
        windows=[
            PlannedWindowPublic(
                code=w.code,
                label=w.label,
                ga_from=w.ga_from,
                ga_to=w.ga_to,
                start_date=w.start_date,
                end_date=w.end_date,
                risk_extra=w.risk_extra,
                status=w.status,
                exams=[PlannedExamPublic.model_validate(e, from_attributes=True) for e in w.exams],
                visit_ids=w.visit_ids,
            )
            for w in generated.windows
        ],
        past_visits=[brief(v) for v in visits if v.visit_date < today or v.status not in ACTIVE],
        upcoming_visits=[brief(v) for v in visits if v.visit_date >= today and v.status in ACTIVE],
    )
