from __future__ import annotations

from typing import Annotated

from fastapi import Body, Response, status

from app.auth.dependencies import AuditDep, Clinician, Idempotent
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.routing import SessionDep, make_router
from app.healthplan import service
from app.healthplan.dependencies import (
    PlanClinicianMother,
    PlanReaderMother,
    PlanTablesDep,
    active_pregnancy,
)
from app.healthplan.domain import ItemChange
from app.healthplan.models import HealthPlanVersion, NutritionAssessment
from app.healthplan.schemas import (
    AssessmentCreate,
    AssessmentList,
    AssessmentPublic,
    AssessmentRecorded,
    DueItemPublic,
    DueList,
    PlanChange,
    PlanGenerate,
    PlanPublic,
    VersionList,
    VersionPublic,
    VersionSummary,
)
from app.mothers.dependencies import ReadableMother
from app.mothers.domain import format_gestational_age, gestational_age_days
from app.queues.policy import QueuePolicy

router = make_router(
    prefix="/v1", tags=["health plans"], responses=problem_responses(401, 403, 422)
)


def _version(v: HealthPlanVersion) -> VersionPublic:
    return VersionPublic(
        version=v.version,
        kind=v.kind,
        sections=v.sections,
        inputs=v.inputs,
        change_note=v.change_note,
        created_by_name=v.created_by_name,
        created_by_role=v.created_by_role,
        created_at=v.created_at,
        signed=v.signed_at is not None,
        signed_by_name=v.signed_by_name,
        signed_by_role=v.signed_by_role,
        signed_at=v.signed_at,
    )


def _plan_public(view: service.PlanView, response: Response) -> PlanPublic:
    response.headers["ETag"] = etag_for(view.plan.latest_version)
    return PlanPublic(
        plan_id=view.plan.id,
        mother_id=view.plan.mother_id,
        pregnancy_id=view.plan.pregnancy_id,
        latest_version=view.plan.latest_version,
        signed_version=view.plan.signed_version,
        stale=view.stale,
        stale_reasons=list(view.stale_reasons),
        latest=_version(view.latest),
    )


@router.post(
    "/mothers/{mother_id}/health-plan",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    summary="Generate a new draft of her plan from the tables and her data (sends ETag)",
    description="The first plan needs no If-Match. When she has a plan, regenerating it needs "
    "If-Match with the plan's ETag (428 without, 412 when another version came since) and "
    "makes a new version refreshed from the tables that keeps what a clinician added, "
    "changed or removed and the nutrition assessment's record (`inputs.kept_items`).",
    dependencies=[Idempotent],
    responses=problem_responses(404, 409, 412, 428),
)
async def generate_plan(
    body: Annotated[PlanGenerate, Body(default_factory=PlanGenerate)],  # no body: the defaults
    actor: Clinician,
    mother: PlanClinicianMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    tables: PlanTablesDep,
    response: Response,
    if_match: IfMatch = None,
) -> PlanPublic:
    pregnancy = await active_pregnancy(session, mother)
    current = await service.current_version(session, pregnancy)
    if current is not None:
        check_if_match(if_match, version=current)
    await service.generate(
        session,
        mother=mother,
        pregnancy=pregnancy,
        tables=tables,
        actor=actor,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        note=body.note,
        expected_version=current,
    )
    audit.record("mother.health_plan.generate", "mother", mother.id)
    return _plan_public(await service.plan_view(session, pregnancy), response)


@router.get(
    "/mothers/{mother_id}/health-plan",
    response_model=PlanPublic,
    summary="Her plan: the newest version and which one is in force (sends ETag)",
    description="`stale` says her data changed since the version in force was made (a flag "
    "raised, regraded or gone, a new risk grade), with the reasons; the first read that finds "
    "them asks a doctor and the nutritionist to review the plan (one worklist item, closed "
    "when a new version is signed).",
    responses=problem_responses(404),
)
async def read_plan(
    mother: PlanReaderMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
) -> PlanPublic:
    pregnancy = await active_pregnancy(session, mother)
    view = await service.plan_view(session, pregnancy)
    await service.ask_for_review_if_stale(session, mother=mother, view=view, now=clock.now())
    audit.record("mother.health_plan.read", "mother", mother.id)
    return _plan_public(view, response)


@router.post(
    "/mothers/{mother_id}/health-plan/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    summary="Change items of her plan: a new version on the one you read (If-Match), with a note",
    dependencies=[Idempotent],
    responses=problem_responses(404, 409, 412, 428),
)
async def change_plan(
    body: PlanChange,
    actor: Clinician,
    mother: PlanClinicianMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> PlanPublic:
    pregnancy = await active_pregnancy(session, mother)
    view = await service.plan_view(session, pregnancy)
    check_if_match(if_match, version=view.plan.latest_version)
    await service.change_items(
        session,
        mother=mother,
        pregnancy=pregnancy,
        base_version=view.plan.latest_version,
        changes=[
            ItemChange(
                section=c.section,
                code=c.code,
                remove=c.remove,
                fields=c.set.model_dump(exclude_unset=True, mode="json") if c.set else {},
            )
            for c in body.changes
        ],
        note=body.note,
        actor=actor,
        now=clock.now(),
    )
    audit.record("mother.health_plan.change", "mother", mother.id)
    return _plan_public(await service.plan_view(session, pregnancy), response)


@router.post(
    "/mothers/{mother_id}/health-plan/versions/{n}/sign",
    response_model=PlanPublic,
    summary="Sign the newest version (If-Match: its ETag): it comes into force, never to change",
    responses=problem_responses(404, 409, 412, 428),
)
async def sign_plan(
    n: int,
    actor: Clinician,
    mother: PlanClinicianMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> PlanPublic:
    pregnancy = await active_pregnancy(session, mother)
    if not if_match:
        check_if_match(if_match, version=n)  # 428: say which copy you signed
    current = await service.current_version(session, pregnancy)
    if current == n:  # an older version is the service's 409 (a newer one exists), not a 412
        check_if_match(if_match, version=current)
    await service.sign(
        session,
        mother=mother,
        pregnancy=pregnancy,
        number=n,
        actor=actor,
        now=clock.now(),
        today=local_today(clock, settings.tz),
    )
    audit.record("mother.health_plan.sign", "mother", mother.id, detail={"version": n})
    return _plan_public(await service.plan_view(session, pregnancy), response)


@router.get(
    "/mothers/{mother_id}/health-plan/versions",
    response_model=VersionList,
    summary="Every version of her plan, newest first, with who made and signed each",
    responses=problem_responses(404),
)
async def list_versions(
    mother: PlanReaderMother, session: SessionDep, audit: AuditDep
) -> VersionList:
    pregnancy = await active_pregnancy(session, mother)
    rows = await service.versions(session, pregnancy)
    audit.record("mother.health_plan.versions", "mother", mother.id)
    return VersionList(
        items=[
            VersionSummary(
                version=v.version,
                kind=v.kind,
                change_note=v.change_note,
                created_by_name=v.created_by_name,
                created_at=v.created_at,
                signed_by_name=v.signed_by_name,
                signed_at=v.signed_at,
            )
            for v in rows
        ]
    )


@router.get(
    "/mothers/{mother_id}/health-plan/versions/{n}",
    response_model=VersionPublic,
    summary="One version of her plan as it was made (and signed)",
    responses=problem_responses(404),
)
async def read_version(
    n: int, mother: PlanReaderMother, session: SessionDep, audit: AuditDep
) -> VersionPublic:
    pregnancy = await active_pregnancy(session, mother)
    row = await service.version(session, pregnancy, n)
    audit.record("mother.health_plan.version", "mother", mother.id, detail={"version": n})
    return _version(row)


@router.get(
    "/mothers/{mother_id}/health-plan/due",
    response_model=DueList,
    summary="The signed plan's items due for her now (her butler's view)",
    description="`under_review: true` when the plan in force is stale (her data changed since "
    "it was made): a clinician reviews it, and an item a flag put there is left out while "
    "that flag no longer stands, until a new version is signed. Titles name no diagnosis.",
    responses=problem_responses(404),
)
async def items_due(
    mother: ReadableMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DueList:
    pregnancy = await active_pregnancy(session, mother)
    today = local_today(clock, settings.tz)
    due = await service.due_items(session, pregnancy=pregnancy, today=today)
    if due.view is not None:  # a stale plan read by her butler asks for its review too (once)
        await service.ask_for_review_if_stale(
            session, mother=mother, view=due.view, now=clock.now()
        )
    signed = due.signed
    audit.record("mother.health_plan.due", "mother", mother.id)
    return DueList(
        mother_id=mother.id,
        signed_version=signed.version if signed else None,
        signed_by_name=signed.signed_by_name if signed else None,
        gestational_age=format_gestational_age(gestational_age_days(pregnancy.edd_date, today)),
        under_review=due.under_review,
        under_review_note=service.UNDER_REVIEW if due.under_review else None,
        items=[
            DueItemPublic(
                section=d.section,
                code=str(d.item["code"]),
                title=str(d.item["title"]),
                detail=str(d.item.get("detail") or ""),
                why=d.why,
                due_date=d.item.get("due_date"),
                ga_from=d.item.get("ga_from"),
                ga_to=d.item.get("ga_to"),
            )
            for d in due.items
        ],
    )


def _assessment(row: NutritionAssessment) -> AssessmentPublic:
    return AssessmentPublic.model_validate(row)


@router.post(
    "/mothers/{mother_id}/nutrition-assessments",
    status_code=status.HTTP_201_CREATED,
    response_model=AssessmentRecorded,
    summary="Record her nutrition assessment: the plan's nutrition section, her butler's tasks",
    dependencies=[Idempotent],
    responses=problem_responses(404, 409),
)
async def record_assessment(
    body: AssessmentCreate,
    actor: Clinician,
    mother: PlanClinicianMother,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    tables: PlanTablesDep,
) -> AssessmentRecorded:
    pregnancy = await active_pregnancy(session, mother)
    done = await service.assess(
        session,
        mother=mother,
        pregnancy=pregnancy,
        tables=tables,
        diet=body.diet,
        activity=body.activity,
        supplements=body.supplements,
        note=body.note,
        follow_ups=[service.FollowUp(f.title, f.due_in_days) for f in body.follow_ups],
        visit_id=body.visit_id,
        sign_now=body.sign,
        actor=actor,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        tz=settings.tz,
        queue_policy=QueuePolicy.from_settings(settings),
    )
    audit.record(
        "mother.nutrition_assessment",
        "mother",
        mother.id,
        detail={"assessment_id": str(done.assessment.id)},
    )
    return AssessmentRecorded(
        **_assessment(done.assessment).model_dump(),
        plan_version=done.version.version,
        plan_signed=done.version.signed_at is not None,
        task_ids=[t.id for t in done.tasks],
        finished_queue_entry_id=done.finished_entry_id,
    )


@router.get(
    "/mothers/{mother_id}/nutrition-assessments",
    response_model=AssessmentList,
    summary="Her nutrition assessments, newest first",
    responses=problem_responses(404),
)
async def list_assessments(
    mother: PlanReaderMother, session: SessionDep, audit: AuditDep
) -> AssessmentList:
    pregnancy = await active_pregnancy(session, mother)
    rows = await service.assessments(session, pregnancy)
    audit.record("mother.nutrition_assessments.read", "mother", mother.id)
    return AssessmentList(items=[_assessment(r) for r in rows])
