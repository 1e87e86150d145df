"""The clinical rules in force, her weight gain against her band, what fired and her flags,
and a doctor's decision on what a rule suggested."""

from __future__ import annotations

import uuid

from app.auth.dependencies import (
    AnyStaff,
    AuditDep,
    Clinician,
    ClinicStaffButlerOrNutritionist,
    DoctorOnly,
    Idempotent,
)
from app.clinical import gwg, service
from app.clinical.dependencies import ClinicalMother
from app.clinical.repository import ClinicalRepository
from app.clinical.schemas import (
    ClinicalRulesPublic,
    DecisionCreate,
    FiringList,
    FiringPublic,
    FlagList,
    FlagPublic,
    GainPointPublic,
    GwgGroupPublic,
    GwgTablePublic,
    RulePublic,
    WeightGainPublic,
)
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.routing import SessionDep, make_router
from app.mothers.dependencies import MotherRepoDep
from app.mothers.domain import format_gestational_age
from app.mothers.models import Mother, Pregnancy

router = make_router(
    prefix="/v1", tags=["clinical rules"], responses=problem_responses(401, 403, 422)
)


@router.get(
    "/clinical-rules",
    response_model=ClinicalRulesPublic,
    summary="The clinical rules and weight-gain tables in force, each with its source and year",
)
async def clinical_rules(_who: AnyStaff, settings: SettingsDep) -> ClinicalRulesPublic:
    rules = service.rules_in_force(settings)
    in_force = service.gwg_table_in_force(settings)
    tables = gwg.tables(settings.gwg_tables_file)
    return ClinicalRulesPublic(
        version=rules.version,
        rules=[
            RulePublic(
                id=r.id,
                kind=r.kind,
                title=r.title,
                source=r.source,
                year=r.year,
                state=r.state,
                flags=list(r.flags),
                effects=list(r.effects),
                risk_grade=r.risk_grade,
                params=dict(r.params),
            )
            for r in rules.rules.values()
        ],
        weight_gain_tables=[
            GwgTablePublic(
                code=t.code,
                name=f"{t.name_zh} ({t.name_en})",
                source=t.source,
                year=t.year,
                in_force=t.code == in_force.code,
                groups=[
                    GwgGroupPublic(
                        code=g.code,
                        label=f"{g.label_zh} {g.label_en}",
                        bmi_range=g.bmi_range,
                        total_kg=(g.total.low_kg, g.total.high_kg),
                        first_trimester_kg=(g.first_trimester.low_kg, g.first_trimester.high_kg),
                        weekly_kg=(g.weekly.low_kg, g.weekly.high_kg),
                        weekly_mean_kg=g.weekly_mean_kg,
                    )
                    for g in t.groups
                ],
                multiples_note=t.multiples_note,
            )
            for t in tables.tables.values()
        ],
        band_derivation=(gwg.__doc__ or "").strip(),
    )


async def _pregnancy(mothers: MotherRepoDep, mother: Mother) -> Pregnancy:
    pregnancy = await mothers.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    return pregnancy


@router.get(
    "/mothers/{mother_id}/weight-gain",
    response_model=WeightGainPublic,
    summary="Her weight gain: each reading's gain, the band for that day and its status",
    responses=problem_responses(404),
)
async def weight_gain(
    _who: ClinicStaffButlerOrNutritionist,
    mother: ClinicalMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    settings: SettingsDep,
) -> WeightGainPublic:
    pregnancy = await _pregnancy(mothers, mother)
    wg = await service.weight_gain(session, pregnancy, settings)
    audit.record("mother.weight_gain.read", "mother", mother.id)
    return WeightGainPublic(
        table=wg.table_code,
        table_name=wg.table_name,
        height_cm=wg.height_cm,
        pre_pregnancy_weight_kg=wg.pre_pregnancy_weight_kg,
        bmi=None if wg.bmi is None else round(wg.bmi, 2),
        group=wg.group_code,
        group_label=wg.group_label,
        total_target_kg=(wg.targets.total.low_kg, wg.targets.total.high_kg) if wg.targets else None,
        weekly_target_kg=(
            (wg.targets.weekly.low_kg, wg.targets.weekly.high_kg) if wg.targets else None
        ),
        readings=[
            GainPointPublic(
                measurement_id=p.measurement_id,
                measured_at=p.measured_at,
                ga_days=p.ga_days,
                ga=format_gestational_age(p.ga_days),
                weight_kg=p.weight_kg,
                gain_kg=p.gain_kg,
                low_kg=p.low_kg,
                high_kg=p.high_kg,
                status=p.status.value,
            )
            for p in wg.readings
        ]
        + [
            GainPointPublic(
                measurement_id=p.measurement_id,
                measured_at=p.measured_at,
                ga_days=p.ga_days,
                ga=format_gestational_age(p.ga_days),
                weight_kg=p.weight_kg,
                gain_kg=p.gain_kg,
                low_kg=None,
                high_kg=None,
                status=None,
            )
            for p in wg.unbanded
        ],
        gain_kg=wg.gain_kg if wg.readings else (wg.unbanded[-1].gain_kg if wg.unbanded else None),
        status=wg.status,
        not_covered=wg.not_covered,
    )


@router.get(
    "/mothers/{mother_id}/rule-firings",
    response_model=FiringList,
    summary="Every firing of a rule for her: the rule, its inputs, why, and who decided",
    responses=problem_responses(404),
)
async def rule_firings(
    _who: Clinician, mother: ClinicalMother, session: SessionDep, audit: AuditDep
) -> FiringList:
    rows = await ClinicalRepository(session).firings_of_mother(mother.id)
    audit.record("mother.rule_firings.read", "mother", mother.id)
    return FiringList(items=[FiringPublic.model_validate(r) for r in rows])


@router.get(
    "/mothers/{mother_id}/flags",
    response_model=FlagList,
    summary="Her pregnancy's flags (gdm, anaemia with grade …); ?all=true includes cleared ones",
    responses=problem_responses(404),
)
async def flags(
    _who: Clinician,
    mother: ClinicalMother,
    mothers: MotherRepoDep,
    session: SessionDep,
    audit: AuditDep,
    all: bool = False,
) -> FlagList:
    pregnancy = await _pregnancy(mothers, mother)
    repo = ClinicalRepository(session)
    rows = (
        await repo.flags_of_pregnancies([pregnancy.id])
        if all
        else await repo.open_flags(pregnancy.id)
    )
    audit.record("mother.flags.read", "mother", mother.id)
    return FlagList(items=[FlagPublic.model_validate(r) for r in rows])


@router.post(
    "/rule-firings/{firing_id}/decision",
    response_model=FiringPublic,
    summary="A doctor confirms or dismisses what a rule suggested (a risk grade is applied)",
    dependencies=[Idempotent],
    responses=problem_responses(404, 409),
)
async def decide(
    firing_id: uuid.UUID,
    body: DecisionCreate,
    principal: DoctorOnly,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> FiringPublic:
    firing = await service.decide(
        session,
        firing_id=firing_id,
        confirm=body.decision == "confirmed",
        note=body.note,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
    )
    audit.record(
        "rule_firing.decision", "mother", firing.mother_id, detail={"decision": body.decision}
    )
    return FiringPublic.model_validate(firing)
