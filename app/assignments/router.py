from __future__ import annotations

import uuid

from fastapi import status

from app.assignments import service
from app.assignments.dependencies import AssignmentRepoDep, PolicyDep
from app.assignments.domain import Move
from app.assignments.models import AssignmentRole
from app.assignments.schemas import (
    AccompanyingToday,
    CareAssignmentPublic,
    CareTeam,
    Caseload,
    CaseloadList,
    ExclusionPublic,
    FlaggedList,
    LeaveCreate,
    LeaveList,
    LeavePublic,
    MyMother,
    MyMothers,
    PlannedMove,
    PrimaryChange,
    PrimaryChangeResult,
    ReleaseRequest,
    ReleaseResult,
)
from app.auth.dependencies import (
    AuditDep,
    ButlerOnly,
    DeskStaff,
    Idempotent,
)
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.routing import make_router
from app.mothers.dependencies import MotherRepoDep, ReadableMother
from app.mothers.domain import format_gestational_age, gestational_age_days
from app.mothers.models import Mother

router = make_router(prefix="/v1", tags=["assignments"], responses=problem_responses(401, 422))


async def _care_team(
    repo: AssignmentRepoDep, mother: Mother, today_visit: AccompanyingToday | None
) -> CareTeam:
    history = await repo.history(mother.id)
    primary = next(
        (a for a in history if a.role is AssignmentRole.PRIMARY and a.ends_at is None), None
    )
    return CareTeam(
        mother_id=mother.id,
        primary=CareAssignmentPublic.model_validate(primary) if primary else None,
        accompanying_today=today_visit,
        history=[CareAssignmentPublic.model_validate(a) for a in history],
    )


@router.get(
    "/mothers/{mother_id}/care-team",
    response_model=CareTeam,
    summary="Her primary butler, who accompanies her today, and every period of care",
    responses=problem_responses(403, 404),
)
async def care_team(
    mother: ReadableMother,
    repo: AssignmentRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> CareTeam:
    audit.record("mother.care_team.read", "mother", mother.id)
    today = local_today(clock, settings.tz)
    return await _care_team(
        repo, mother, await service.accompanying_today(repo.session, mother, today)
    )


@router.post(
    "/mothers/{mother_id}/primary-butler",
    response_model=PrimaryChangeResult,
    summary="Reassign her primary butler (chosen, with a check, or by the rules), with a reason",
    responses=problem_responses(403, 404, 409),
)
async def change_primary(
    body: PrimaryChange,
    principal: DeskStaff,
    mother: ReadableMother,
    mothers: MotherRepoDep,
    repo: AssignmentRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    policy: PolicyDep,
) -> PrimaryChangeResult:
    pregnancy = await mothers.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    now = clock.now()
    decision = await service.assign_primary(
        repo,
        mother=mother,
        pregnancy=pregnancy,
        requested=body.butler_id,
        reason=body.reason,
        actor=principal,
        now=now,
        policy=policy,
    )
    mother.version += 1
    mother.updated_at = now
    today = local_today(clock, settings.tz)
    await service.rearrange_escorts(
        repo,
        mother=mother,
        pregnancy=pregnancy,
        from_day=today,
        actor=principal,
        now=now,
        policy=policy,
    )
    audit.record(
        "mother.primary_butler", "mother", mother.id, detail={"butler_id": str(decision.butler_id)}
    )
    team = await _care_team(
        repo, mother, await service.accompanying_today(repo.session, mother, today)
    )
    return PrimaryChangeResult(decision=service.decision_view(decision), care_team=team)


def _planned(move: Move, mrn: str) -> PlannedMove:
    return PlannedMove(
        mother_id=move.mother_id,
        mrn=mrn,
        moved=move.moved,
        to=service.decision_view(move.decision) if move.decision else None,
        excluded=[
            ExclusionPublic(butler_id=e.butler_id, name=e.name, rule=e.rule.value, detail=e.detail)
            for e in move.exclusions
        ],
    )


@router.post(
    "/butlers/{butler_id}/release",
    response_model=ReleaseResult,
    summary="A butler leaves or goes on long leave: move her mothers to others (dry run first)",
    responses=problem_responses(403, 404),
)
async def release_butler(
    butler_id: uuid.UUID,
    body: ReleaseRequest,
    principal: DeskStaff,
    repo: AssignmentRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    policy: PolicyDep,
) -> ReleaseResult:
    now = clock.now()
    moves, by_id = await service.release_butler(
        repo,
        butler_id=butler_id,
        reason=body.reason,
        dry_run=body.dry_run,
        actor=principal,
        now=now,
        policy=policy,
    )
    if not body.dry_run:
        today = local_today(clock, settings.tz)
        for move in moves:
            if move.moved:
                mother = by_id[move.mother_id]
                pregnancy = await mothers.active_pregnancy(mother.id)
                assert pregnancy is not None
                await service.rearrange_escorts(
                    repo,
                    mother=mother,
                    pregnancy=pregnancy,
                    from_day=today,
                    actor=principal,
                    now=now,
                    policy=policy,
                )
                audit.record(
                    "mother.primary_butler",
                    "mother",
                    mother.id,
                    detail={"released_from": str(butler_id)},
                )
    # What the answer shows of each mother (her MRN, where she would go) is a read of her
    # record: every one of a dry run, and those a real run could not move (the moved ones
    # have their write above).
    audit.record_many(
        "mother.release_plan",
        "mother",
        [m.mother_id for m in moves if body.dry_run or not m.moved],
        detail={"butler_id": str(butler_id), "dry_run": body.dry_run},
    )
    moved = sum(m.moved for m in moves)
    return ReleaseResult(
        butler_id=butler_id,
        dry_run=body.dry_run,
        moved=moved,
        stuck=len(moves) - moved,
        moves=[_planned(m, by_id[m.mother_id].mrn) for m in moves],
    )


@router.post(
    "/butlers/{butler_id}/leaves",
    status_code=status.HTTP_201_CREATED,
    response_model=LeavePublic,
    summary="Record a period of leave: she is off duty for visits then",
    dependencies=[Idempotent],
    responses=problem_responses(403, 404),
)
async def add_leave(
    butler_id: uuid.UUID,
    body: LeaveCreate,
    _admin: DeskStaff,
    repo: AssignmentRepoDep,
    audit: AuditDep,
    clock: ClockDep,
) -> LeavePublic:
    if not any(b.id == butler_id for b in await repo.butlers()):
        raise NotFound("No butler with that id.")
    leave = await service.add_leave(
        repo,
        butler_id=butler_id,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        reason=body.reason,
        now=clock.now(),
    )
    audit.record("butler.leave", "butler", butler_id)
    return LeavePublic.model_validate(leave)


@router.get(
    "/butlers/{butler_id}/leaves",
    response_model=LeaveList,
    summary="A butler's recorded leave",
    responses=problem_responses(403),
)
async def list_leaves(butler_id: uuid.UUID, _who: DeskStaff, repo: AssignmentRepoDep) -> LeaveList:
    return LeaveList(items=[LeavePublic.model_validate(x) for x in await repo.leaves(butler_id)])


@router.get(
    "/caseloads",
    response_model=CaseloadList,
    summary="Caseload per butler: mothers by risk grade, weighted load, capacity, today's visits",
    responses=problem_responses(403),
)
async def caseloads(
    _who: DeskStaff,
    repo: AssignmentRepoDep,
    clock: ClockDep,
    settings: SettingsDep,
    policy: PolicyDep,
) -> CaseloadList:
    loads = await repo.loads(policy.weights)
    grades = await repo.grade_counts()
    today = await repo.visits_today(local_today(clock, settings.tz))
    return CaseloadList(
        items=[
            Caseload(
                butler_id=b.id,
                name=b.display_name,
                active=b.is_active,
                capacity=b.max_caseload,
                load=loads.get(b.id, 0),
                mothers_by_grade=grades.get(b.id, {}),
                visits_today=today.get(b.id, 0),
            )
            for b in await repo.butlers()
        ]
    )


@router.get(
    "/assignments/flagged",
    response_model=FlaggedList,
    summary="Mothers whose primary butler no longer fits the rules (e.g. after a risk change)",
    responses=problem_responses(403),
)
async def flagged(_who: DeskStaff, repo: AssignmentRepoDep, audit: AuditDep) -> FlaggedList:
    rows = await repo.flagged()
    audit.record_many("mother.flagged", "mother", list(dict.fromkeys(a.mother_id for a in rows)))
    return FlaggedList(items=[CareAssignmentPublic.model_validate(a) for a in rows])


@router.get(
    "/me/mothers",
    tags=["butler app"],
    response_model=MyMothers,
    summary="The calling butler's mothers: her own, and today's covers, with the next visit",
    responses=problem_responses(403),
)
async def my_mothers(
    principal: ButlerOnly,
    repo: AssignmentRepoDep,
    mothers: MotherRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> MyMothers:
    if principal.butler_id is None:
        return MyMothers(items=[])
    today = local_today(clock, settings.tz)
    assignments = await repo.my_assignments(principal.butler_id, today)
    ids = list(dict.fromkeys(a.mother_id for a in assignments))
    next_visits = await repo.next_visits(ids, today)
    open_reports = await repo.open_reports(ids)
    items = []
    for assignment in assignments:
        mother = await mothers.get(assignment.mother_id)
        if mother is None:
            continue
        pregnancy = await mothers.active_pregnancy(mother.id)
        visit = next_visits.get(mother.id)
        items.append(
            MyMother(
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                role=assignment.role,
                risk_grade=pregnancy.risk_grade.value if pregnancy else None,
                gestational_age=format_gestational_age(
                    gestational_age_days(pregnancy.edd_date, today)
                )
                if pregnancy
                else None,
                next_visit_id=visit.id if visit else None,
                next_visit_at=visit.scheduled_at if visit else None,
                open_reports=open_reports.get(mother.id, 0),
                flagged_reason=assignment.flagged_reason,
            )
        )
    audit.record_many("mother.list", "mother", ids)
    return MyMothers(items=items)
