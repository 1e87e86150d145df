from __future__ import annotations

from datetime import date

from fastapi import status

from app.auth.dependencies import (
    AuditDep,
    ClinicStaffOrButler,
    DoctorOnly,
    Idempotent,
)
from app.careplan import domain as plan
from app.careplan import service
from app.careplan.domain import Guideline
from app.careplan.registry import load_guidelines
from app.careplan.schemas import (
    CarePlanPublic,
    ChoiceCreate,
    ChoiceOption,
    ChoicePublic,
    ChoiceRecorded,
    DeclineCreate,
    DeclineRecorded,
    GuidelineList,
    GuidelineSummary,
    IndicationCreate,
    IndicationPublic,
    IndicationRecorded,
    NextVisit,
    OutsideResultCreate,
    OutsideResultRecorded,
    PlannedExamPublic,
    PlannedWindowPublic,
    PlanVisit,
)
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import Conflict, NotFound, problem_responses
from app.core.routing import SessionDep, make_router
from app.core.settings import Settings
from app.mothers.dependencies import MotherRepoDep, ReadableMother
from app.mothers.domain import RiskGrade, format_gestational_age, gestational_age_days
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherRepository
from app.visits.domain import ACTIVE
from app.visits.repository import VisitRepository

router = make_router(prefix="/v1", tags=["care plan"], responses=problem_responses(401, 422))


@router.get(
    "/care-plan-guidelines",
    response_model=GuidelineList,
    summary="The guideline tables installed (built-in and the hospital's own)",
    responses=problem_responses(403),
)
async def list_guidelines(_who: ClinicStaffOrButler, settings: SettingsDep) -> GuidelineList:
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


async def _pregnancy_and_table(
    mothers: MotherRepository, mother: Mother, settings: Settings
) -> tuple[Pregnancy, Guideline]:
    pregnancy = await mothers.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    guideline = load_guidelines(settings.care_plan_dir).get(pregnancy.care_plan_code)
    if guideline is None:
        raise Conflict(f"The care-plan table {pregnancy.care_plan_code!r} is not installed.")
    return pregnancy, guideline


def _exam_view(e: plan.PlannedExam) -> PlannedExamPublic:
    return PlannedExamPublic.model_validate(e, from_attributes=True)


def _enrolled_on(pregnancy: Pregnancy, settings: Settings) -> date:
    return pregnancy.created_at.astimezone(settings.tz).date()


@router.get(
    "/mothers/{mother_id}/care-plan",
    response_model=CarePlanPublic,
    summary="Her care plan as dated today: each exam's state, windows, choices, next visit",
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
    pregnancy, guideline = await _pregnancy_and_table(mothers, mother, settings)
    visits_repo = VisitRepository(session)
    visits = await visits_repo.visits_of_pregnancy(pregnancy.id)
    today = local_today(clock, settings.tz)
    facts = await service.situation(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        today=today,
        enrolled_on=_enrolled_on(pregnancy, settings),
        region_flags=settings.care_plan_region_flags,
    )
    generated = plan.generate_plan(
        guideline,
        edd=pregnancy.edd_date,
        risk_grade=RiskGrade(pregnancy.risk_grade),
        today=today,
        enrolled_on=facts.situation.enrolled_on,
        visits=[
            plan.VisitRef(
                visit_id=str(v.id),
                window_code=v.window_code,
                status=v.status.value,
                visit_date=v.visit_date,
            )
            for v in visits
        ],
        situation=facts.situation,
    )
    audit.record("mother.care_plan.read", "mother", mother.id)
    chosen = {c.choice_code: c for c in facts.choices}

    def brief(v: object) -> PlanVisit:
        return PlanVisit.model_validate(v, from_attributes=True)

    return CarePlanPublic(
        mother_id=mother.id,
        pregnancy_id=pregnancy.id,
        guideline_code=generated.guideline_code,
        guideline_version=generated.guideline_version,
        edd_date=generated.edd,
        gestational_age=format_gestational_age(gestational_age_days(pregnancy.edd_date, today)),
        booking_panel=[_exam_view(e) for e in generated.booking_panel],
        indicated=[_exam_view(e) for e in generated.indicated],
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
                exams=[_exam_view(e) for e in w.exams],
                visit_ids=w.visit_ids,
            )
            for w in generated.windows
        ],
        choices=[
            ChoicePublic(
                code=c.code,
                label=c.label,
                options=[
                    ChoiceOption(
                        code=o,
                        name=guideline.exams[o].name,
                        consent_required=guideline.exams[o].consent,
                    )
                    for o in c.options
                ],
                chosen=made.option_code if (made := chosen.get(c.code)) else None,
                consent_recorded=made.consent_recorded if made else None,
                decided_by=made.recorded_by_name if made else None,
                decided_at=made.recorded_at if made else None,
                note=made.note if made else None,
            )
            for c in guideline.choices.values()
        ],
        indications=[
            IndicationPublic(code=code, label=guideline.indications[code].label, reason=why)
            for code, why in facts.flag_reasons.items()
        ],
        next_visit=NextVisit.model_validate(generated.next_visit, from_attributes=True)
        if generated.next_visit
        else None,
        past_visits=[brief(v) for v in visits if v.visit_date < today or v.status not in ACTIVE],
        upcoming_visits=[brief(v) for v in visits if v.visit_date >= today and v.status in ACTIVE],
    )


# What her plan records is a clinical record: a doctor hears it and signs it (DoctorOnly below).
@router.post(
    "/mothers/{mother_id}/care-plan/choices",
    status_code=status.HTTP_201_CREATED,
    response_model=ChoiceRecorded,
    summary="Record her choice (prenatal screening: serum, NIPT, diagnosis or none) and consent",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def record_choice(
    body: ChoiceCreate,
    doctor: DoctorOnly,
    mother: ReadableMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ChoiceRecorded:
    pregnancy, guideline = await _pregnancy_and_table(mothers, mother, settings)
    row = await service.record_choice(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        choice_code=body.choice,
        option=body.option,
        consent=body.consent,
        note=body.note,
        actor=doctor,
        now=clock.now(),
    )
    audit.record("mother.care_plan.choice", "mother", mother.id)
    return ChoiceRecorded.model_validate(row)


@router.post(
    "/mothers/{mother_id}/care-plan/declines",
    status_code=status.HTTP_201_CREATED,
    response_model=DeclineRecorded,
    summary="Record that she declines an exam of her plan: not ordered, and its window can close",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def record_decline(
    body: DeclineCreate,
    doctor: DoctorOnly,
    mother: ReadableMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DeclineRecorded:
    pregnancy, guideline = await _pregnancy_and_table(mothers, mother, settings)
    row = await service.record_decline(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        exam_code=body.exam_code,
        item_key=body.item_key,
        reason=body.reason,
        actor=doctor,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        enrolled_on=_enrolled_on(pregnancy, settings),
    )
    audit.record("mother.care_plan.decline", "mother", mother.id)
    return DeclineRecorded.model_validate(row)


@router.post(
    "/mothers/{mother_id}/care-plan/outside-results",
    status_code=status.HTTP_201_CREATED,
    response_model=OutsideResultRecorded,
    summary="Record a result from another hospital in this pregnancy, with its source and date",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def record_outside_result(
    body: OutsideResultCreate,
    doctor: DoctorOnly,
    mother: ReadableMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> OutsideResultRecorded:
    pregnancy, guideline = await _pregnancy_and_table(mothers, mother, settings)
    row = await service.record_outside_result(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        exam_code=body.exam_code,
        result_date=body.result_date,
        source=body.source,
        summary=body.summary,
        actor=doctor,
        now=clock.now(),
        today=local_today(clock, settings.tz),
    )
    audit.record("mother.care_plan.outside_result", "mother", mother.id)
    return OutsideResultRecorded.model_validate(row)


@router.post(
    "/mothers/{mother_id}/care-plan/indications",
    status_code=status.HTTP_201_CREATED,
    response_model=IndicationRecorded,
    summary="Record that an indication holds or no longer does (twins, itching…)",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 409),
)
async def record_indication(
    body: IndicationCreate,
    doctor: DoctorOnly,
    mother: ReadableMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> IndicationRecorded:
    pregnancy, guideline = await _pregnancy_and_table(mothers, mother, settings)
    row = await service.record_indication(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        code=body.code,
        present=body.present,
        reason=body.reason,
        actor=doctor,
        now=clock.now(),
    )
    audit.record("mother.care_plan.indication", "mother", mother.id)
    return IndicationRecorded.model_validate(row)
