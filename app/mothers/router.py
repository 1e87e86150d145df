from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from app.assignments.dependencies import PolicyDep
from app.assignments.repository import AssignmentRepository
from app.assignments.service import accompanying_today, assign_primary, decision_view
from app.auth.dependencies import (
    AuditDep,
    ClinicStaff,
    ClinicStaffButlerOrNutritionist,
    ClinicStaffOrButler,
    DeskStaff,
    DoctorOnly,
    Idempotent,
)
from app.auth.models import Role
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound, links, problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.pagination import PageDep, page_info, paginate
from app.core.principal import Principal
from app.core.routing import make_router
from app.core.settings import Settings
from app.measurements import service as measurements
from app.measurements.domain import Entered, MeasurementKind, MeasurementSource, limits
from app.measurements.service import NewReading
from app.mothers import dating, domain, grading, search_keys, service
from app.mothers.dependencies import ButlerRepoDep, MotherRepoDep, ReadableMother, readable_mother
from app.mothers.domain import RiskGrade
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherFilter, MotherRepository
from app.mothers.schemas import (
    DatingChangePublic,
    DatingHistory,
    MotherCreate,
    MotherPage,
    MotherRecord,
    MotherUpdate,
    RiskAssessmentCreate,
    RiskAssessmentResult,
    RiskGradeChangePublic,
    RiskHistory,
)
from app.mothers.service import Notes

router = make_router(prefix="/v1/mothers", tags=["mothers"], responses=problem_responses(401, 422))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MotherRecord,
    summary="Enrol a mother with her current pregnancy",
    dependencies=[Idempotent],
    responses={
        **problem_responses(403, 409),
        **links(
            201,
            ReadMother=("read_mother_v1_mothers__mother_id__get", "mother_id", "/id"),
            HerCarePlan=("care_plan_v1_mothers__mother_id__care_plan_get", "mother_id", "/id"),
        ),
    },
)
async def enrol_mother(
    body: MotherCreate,
    principal: DeskStaff,
    repo: MotherRepoDep,
    butlers: ButlerRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    policy: PolicyDep,
    response: Response,
) -> MotherRecord:
    today = local_today(clock, settings.tz)
    notes = Notes()
    mother, pregnancy = await service.enrol_mother(
        repo,
        butlers,
        data=body,
        actor=principal,
        today=today,
        now=clock.now(),
        care_plan_code=settings.care_plan_guideline,
        dating_rules=dating.dating_rules(settings.dating_rules_file),
        risk_rules=grading.risk_rules(settings.risk_rules_file),
        notes=notes,
    )
    decision = await assign_primary(
        AssignmentRepository(repo.session),
        mother=mother,
        pregnancy=pregnancy,
        requested=body.primary_butler_id,
        reason="enrolment",
        actor=principal,
        now=clock.now(),
        policy=policy,
    )
    await _record_baseline(repo, body, mother, pregnancy, principal, clock.now(), settings)
    audit.record(
        "mother.create", "mother", mother.id, detail={"butler_id": str(decision.butler_id)}
    )
    response.headers["Location"] = f"/v1/mothers/{mother.id}"
    response.headers["ETag"] = etag_for(mother.version)
    record = service.record_view(mother, pregnancy, role=principal.role, today=today)
    record.assignment = decision_view(decision)
    record.dating_decision, record.risk_notes = notes.dating, notes.risk
    return record


async def _record_baseline(
    repo: MotherRepository,
    body: MotherCreate,
    mother: Mother,
    pregnancy: Pregnancy,
    actor: Principal,
    now: datetime,
    settings: Settings,
) -> None:
    """Her height and pre-pregnancy weight, given at enrolment, become her first readings."""
    given = [
        (MeasurementKind.HEIGHT, body.height_cm, "cm", "height_cm"),
        (
            MeasurementKind.PRE_PREGNANCY_WEIGHT,
            body.pre_pregnancy_weight_kg,
            "kg",
            "pre_pregnancy_weight_kg",
        ),
    ]
    readings = [
        NewReading(Entered(kind, value, None, unit), None, field, whole=True)
        for kind, value, unit, field in given
        if value is not None
    ]
    if readings:
        await measurements.record(
            repo.session,
            mother=mother,
            pregnancy=pregnancy,
            readings=readings,
            actor=actor,
            now=now,
            tz=settings.tz,
            limits=limits(settings.measurement_limits_file),
            source=MeasurementSource.ENROLMENT,
        )


@router.get(
    "",
    response_model=MotherPage,
    summary="Search mothers (identifiers masked); a butler sees only her own mothers",
    responses=problem_responses(403),
)
async def list_mothers(
    principal: ClinicStaffOrButler,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="The search box: her name (李小, as characters), its pinyin or initials "
            "as typed (lixiao, lxh; case ignored), her MRN (case and spaces ignored, whole or "
            "its start), her phone's last four digits or whole mobile, her national id (for the "
            "roles that read it whole; a butler's search does not match it). Best "
            "matches first: an identifier typed whole, then her name, then an MRN's start.",
        ),
    ] = None,
    mrn: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Part of the name.")
    ] = None,
    phone: Annotated[str | None, Query(max_length=20, description="Full mobile number.")] = None,
    risk_grade: Annotated[list[RiskGrade] | None, Query()] = None,
    edd_from: Annotated[date | None, Query()] = None,
    edd_to: Annotated[date | None, Query()] = None,
    primary_butler_id: Annotated[uuid.UUID | None, Query()] = None,
) -> MotherPage:
    today = local_today(clock, settings.tz)
    visible_to: uuid.UUID | None = None
    if principal.role == Role.BUTLER:  # only her own mothers, whatever the filters say
        if principal.butler_id is None:
            return MotherPage(items=[], page=page_info([], page, has_more=False))
        visible_to = principal.butler_id
    query = search_keys.parse_query(q) if q is not None else None
    if query is not None and principal.role not in service.REVEAL_NATIONAL_ID:
        # A role that reads her id masked may not confirm a guess at it by searching: her
        # date of birth and the last four leave only the region to guess (issue 18).
        query = dataclasses.replace(query, national_id=None)
    try:
        normalized_phone = domain.normalize_mobile(phone) if phone else None
    except ValueError:
        normalized_phone = phone
    rows = await repo.search(
        MotherFilter(
            mrn=mrn,
            name=name,
            phone=normalized_phone,
            risk_grades=tuple(risk_grade or ()),
            edd_from=edd_from,
            edd_to=edd_to,
            primary_butler_id=primary_butler_id,
            visible_to_butler=visible_to,
            visible_on=today,
            query=query,
        ),
        after=page.after,
        limit=page.limit + 1,
    )
    rows, info = paginate(rows, page, key=lambda r: r[0].id)
    audit.record_many("mother.list", "mother", [m.id for m, _ in rows])
    return MotherPage(
        items=[service.summary_view(m, p, today=today, role=principal.role) for m, p in rows],
        page=info,
    )


async def _record_reader_mother(
    mother_id: uuid.UUID,
    request: Request,
    principal: ClinicStaffButlerOrNutritionist,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Mother:
    """Her record is read by the nutritionist too (she sees her at the NUT station and acts on
    referrals): with her national id and phone masked, as the record's view masks them for
    every role outside REVEAL_NATIONAL_ID / REVEAL_PHONE."""
    return await readable_mother(mother_id, request, principal, repo, audit, clock, settings)


@router.get(
    "/{mother_id}",
    response_model=MotherRecord,
    summary="Read a mother's record (sends ETag)",
    responses=problem_responses(403, 404),
)
async def read_mother(
    mother: Annotated[Mother, Depends(_record_reader_mother)],
    principal: ClinicStaffButlerOrNutritionist,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
) -> MotherRecord:
    pregnancy = await repo.active_pregnancy(mother.id)
    audit.record("mother.read", "mother", mother.id)
    response.headers["ETag"] = etag_for(mother.version)
    today = local_today(clock, settings.tz)
    record = service.record_view(mother, pregnancy, role=principal.role, today=today)
    record.accompanying_today = await accompanying_today(repo.session, mother, today)
    return record


@router.patch(
    "/{mother_id}",
    response_model=MotherRecord,
    summary="Change a mother's record or pregnancy (If-Match required)",
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_mother(
    body: MotherUpdate,
    principal: ClinicStaff,
    mother: ReadableMother,
    repo: MotherRepoDep,
    butlers: ButlerRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> MotherRecord:
    check_if_match(if_match, version=mother.version)
    today = local_today(clock, settings.tz)
    notes = Notes()
    mother, pregnancy, changed = await service.update_mother(
        repo,
        butlers,
        mother=mother,
        data=body,
        actor=principal,
        today=today,
        now=clock.now(),
        dating_rules=dating.dating_rules(settings.dating_rules_file),
        risk_rules=grading.risk_rules(settings.risk_rules_file),
        notes=notes,
    )
    audit.record("mother.update", "mother", mother.id, detail={"fields": changed})
    response.headers["ETag"] = etag_for(mother.version)
    record = service.record_view(mother, pregnancy, role=principal.role, today=today)
    record.dating_decision, record.risk_notes = notes.dating, notes.risk
    return record


@router.post(
    "/{mother_id}/risk-assessments",
    status_code=status.HTTP_201_CREATED,
    response_model=RiskAssessmentResult,
    summary="A doctor confirms or changes her risk grade (NHFPC 2017), closing the visit's "
    "re-assessment prompt (If-Match required)",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404, 412, 428),
)
async def assess_risk(
    body: RiskAssessmentCreate,
    principal: DoctorOnly,
    mother: ReadableMother,
    repo: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> RiskAssessmentResult:
    check_if_match(if_match, version=mother.version)
    today = local_today(clock, settings.tz)
    rules = grading.risk_rules(settings.risk_rules_file)
    pregnancy, change, closed = await service.assess_risk(
        repo, mother=mother, data=body, actor=principal, today=today, now=clock.now(), rules=rules
    )
    audit.record("mother.risk_assessment", "mother", mother.id, detail={"changed": change.changed})
    response.headers["ETag"] = etag_for(mother.version)
    return RiskAssessmentResult(
        pregnancy=service.pregnancy_view(
            pregnancy,
            today,
            dating_rules=dating.dating_rules(settings.dating_rules_file),
            risk_rules=rules,
        ),
        decisions=[RiskGradeChangePublic.model_validate(r) for r in change.rows],
        tasks=change.tasks,
        prompts_closed=closed,
    )


@router.get(
    "/{mother_id}/risk-history",
    response_model=RiskHistory,
    summary="Risk-grade history of her current pregnancy: who changed it, when and why",
    responses=problem_responses(403, 404),
)
async def risk_history(mother: ReadableMother, repo: MotherRepoDep, audit: AuditDep) -> RiskHistory:
    pregnancy = await repo.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    audit.record("mother.risk_history.read", "mother", mother.id)
    changes = await repo.risk_history(pregnancy.id)
    return RiskHistory(
        pregnancy_id=pregnancy.id,
        changes=[RiskGradeChangePublic.model_validate(c) for c in changes],
    )


@router.get(
    "/{mother_id}/dating-history",
    response_model=DatingHistory,
    summary="How her pregnancy was dated and re-dated (LMP, ultrasound), with reasons",
    responses=problem_responses(403, 404),
)
async def dating_history(
    mother: ReadableMother, repo: MotherRepoDep, audit: AuditDep
) -> DatingHistory:
    pregnancy = await repo.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    audit.record("mother.dating_history.read", "mother", mother.id)
    changes = await repo.dating_history(pregnancy.id)
    return DatingHistory(
        pregnancy_id=pregnancy.id,
        changes=[DatingChangePublic.model_validate(c) for c in changes],
    )
