"""Enrolment and record keeping for mothers. Services flush; the request commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError

from app.auth.models import Role
from app.butlers.repository import ButlerRepository
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed, invalid_field
from app.core.principal import Principal
from app.core.settings import get_settings
from app.feed.changes import touch_mother
from app.mothers import dating, domain, grading, risk
from app.mothers.dating import (
    DatingOutcome,
    DatingResult,
    DatingRules,
    DatingState,
    Ivf,
    RedatingRefused,
    Scan,
    ScanMeasurement,
)
from app.mothers.domain import Risk, RiskDecision, RiskGrade
from app.mothers.grading import RiskRules
from app.mothers.models import DatingChange, Mother, Pregnancy, PregnancyStatus
from app.mothers.repository import MotherRepository
from app.mothers.schemas import (
    DatingDecisionPublic,
    DatingPublic,
    GestationalAge,
    IvfIn,
    IvfPublic,
    MotherCreate,
    MotherRecord,
    MotherSummary,
    MotherUpdate,
    PregnancyPublic,
    RiskAssessmentCreate,
    ScanPublic,
    UltrasoundIn,
)
from app.worklist import service as worklist

# Who sees full identifiers on the single record (SPEC.md "Data protection").
REVEAL_NATIONAL_ID = frozenset({Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR})
REVEAL_PHONE = frozenset({Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.BUTLER})
DATING_REASON_LIMIT = 1000
DATING_REVIEW = "dating.review"  # a doctor decides on a scan the rules did not act on


class RedatingNeedsOverride(Conflict):
    slug = "redating-needs-override"
    title = "The re-dating rules keep the dating in force; only a doctor's override changes it"


@dataclass(slots=True)
class Notes:
    """What the rules decided on a write, for the answer (not stored apart from history)."""

    dating: DatingDecisionPublic | None = None
    risk: list[str] = field(default_factory=list)


def dating_rules_in_force() -> DatingRules:
    """The re-dating table the clinic runs: DATING_RULES_FILE, or the built-in ACOG 700."""
    return dating.dating_rules(get_settings().dating_rules_file)


def _check_birth_date(national_id: str, date_of_birth: date | None, today: date) -> date:
    born = domain.parse_national_id(national_id).birth_date
    if date_of_birth is not None and date_of_birth != born:
        raise invalid_field(
            "date_of_birth", "does not agree with the birth date in the national id"
        )
    try:
        domain.check_mother_age(born, today=today)
    except ValueError as exc:
        raise invalid_field("national_id", str(exc)) from exc
    return born


def _dating_problem(exc: ValueError) -> ValidationFailed:
    text = str(exc)
    if "scan" in text or "CRL" in text or "measurement" in text or "crl" in text:
        where = "pregnancy.ultrasound"
    elif "IVF" in text or "transfer" in text or "embryo" in text:
        where = "pregnancy.ivf"
    elif "LMP" in text and "EDD" not in text:
        where = "pregnancy.lmp_date"
    else:
        where = "pregnancy.edd_date"
    return invalid_field(where, text)


def _scan(data: UltrasoundIn | None) -> Scan | None:
    if data is None:
        return None
    try:
        ga = dating.parse_ga(data.ga)
    except ValueError as exc:
        raise invalid_field("pregnancy.ultrasound.ga", str(exc)) from exc
    return Scan(data.scan_date, data.measurement, ga, data.value_mm)


def _ivf(data: IvfIn | None) -> Ivf | None:
    return Ivf(data.transfer_date, data.embryo_age_days) if data is not None else None


def _state(pregnancy: Pregnancy) -> DatingState:
    scan = None
    if pregnancy.dating_scan_date is not None:
        assert pregnancy.dating_scan_ga_days is not None
        assert pregnancy.dating_scan_measurement is not None
        scan = Scan(
            pregnancy.dating_scan_date,
            ScanMeasurement(pregnancy.dating_scan_measurement),
            pregnancy.dating_scan_ga_days,
            pregnancy.dating_scan_value_mm,
        )
    ivf = None
    if pregnancy.ivf_transfer_date is not None:
        assert pregnancy.ivf_embryo_age_days is not None
        ivf = Ivf(pregnancy.ivf_transfer_date, pregnancy.ivf_embryo_age_days)
    return DatingState(
        pregnancy.lmp_date,
        pregnancy.edd_date,
        domain.DatingMethod(pregnancy.dating_method),
        scan,
        ivf,
    )


def _store_state(pregnancy: Pregnancy, state: DatingState) -> None:
    pregnancy.lmp_date = state.lmp_date
    pregnancy.edd_date = state.edd_date
    pregnancy.dating_method = state.method
    scan = state.scan
    pregnancy.dating_scan_date = scan.scan_date if scan else None
    pregnancy.dating_scan_measurement = scan.measurement if scan else None
    pregnancy.dating_scan_value_mm = scan.value_mm if scan else None
    pregnancy.dating_scan_ga_days = scan.ga_days if scan else None
    pregnancy.ivf_transfer_date = state.ivf.transfer_date if state.ivf else None
    pregnancy.ivf_embryo_age_days = state.ivf.embryo_age_days if state.ivf else None


def _dating_row(
    pregnancy: Pregnancy,
    result: DatingResult,
    *,
    previous_edd: date | None,
    note: str | None,
    actor: Principal,
    now: datetime,
) -> DatingChange:
    judged = result.judgement
    scan = judged.scan if judged else result.state.scan
    ivf = result.state.ivf if result.state.method is domain.DatingMethod.IVF else None
    reason = f"{note}. {result.reason}" if note else result.reason
    return DatingChange(
        pregnancy_id=pregnancy.id,
        lmp_date=result.state.lmp_date,
        edd_date=result.state.edd_date,
        dating_method=result.state.method,
        previous_edd_date=previous_edd,
        outcome=result.outcome,
        scan_date=scan.scan_date if scan else None,
        scan_measurement=scan.measurement if scan else None,
        scan_value_mm=scan.value_mm if scan else None,
        scan_ga_days=scan.ga_days if scan else None,
        dated_ga_days=judged.dated_ga_days if judged else None,
        difference_days=judged.difference_days if judged else None,
        threshold_days=judged.threshold_days if judged else None,
        ivf_transfer_date=ivf.transfer_date if ivf else None,
        ivf_embryo_age_days=ivf.embryo_age_days if ivf else None,
        reason=reason[:DATING_REASON_LIMIT],
        changed_by_id=actor.id,
        changed_by_name=actor.name,
        changed_by_role=actor.role,
        changed_at=now,
    )


def _decision(result: DatingResult) -> DatingDecisionPublic:
    judged = result.judgement
    return DatingDecisionPublic(
        outcome=result.outcome,
        reason=result.reason,
        scan_ga_days=judged.scan.ga_days if judged else None,
        dated_ga_days=judged.dated_ga_days if judged else None,
        difference_days=judged.difference_days if judged else None,
        threshold_days=judged.threshold_days if judged else None,
    )


def _refused(refused: RedatingRefused) -> RedatingNeedsOverride:
    judged = refused.judgement
    extra: dict[str, object] = {"rule": refused.rule}
    if judged is not None:
        extra |= {
            "scan_ga_days": judged.scan.ga_days,
            "dated_ga_days": judged.dated_ga_days,
            "difference_days": judged.difference_days,
            "threshold_days": judged.threshold_days,
        }
    return RedatingNeedsOverride(
        f"{refused.detail} Send pregnancy.redating_override with the reason (a doctor).",
        extra=extra,
    )


def _actor(principal: Principal) -> risk.Actor:
    return risk.Actor(name=principal.name, role=principal.role, id=principal.id)


async def enrol_mother(
    repo: MotherRepository,
    butlers: ButlerRepository,
    *,
    data: MotherCreate,
    actor: Principal,
    today: date,
    now: datetime,
    care_plan_code: str,
    dating_rules: DatingRules | None = None,
    risk_rules: RiskRules | None = None,
    notes: Notes | None = None,
) -> tuple[Mother, Pregnancy]:
    dating_rules = dating_rules or dating_rules_in_force()
    risk_rules = risk_rules or risk.default_rules()
    notes = notes if notes is not None else Notes()
    born = _check_birth_date(data.national_id, data.date_of_birth, today)
    p = data.pregnancy
    try:
        result = dating.initial_dating(
            dating_rules,
            lmp=p.lmp_date,
            edd=p.edd_date,
            method=p.dating_method,
            scan=_scan(p.ultrasound),
            ivf=_ivf(p.ivf),
            today=today,
        )
    except ValueError as exc:
        raise _dating_problem(exc) from exc
    if await repo.mrn_taken(data.mrn):
        raise Conflict(f"A mother with MRN {data.mrn} is already enrolled.")
    if await repo.national_id_owner(data.national_id) is not None:
        raise Conflict("A mother with this national id is already enrolled under another MRN.")
    mother = Mother(
        mrn=data.mrn,
        name=data.name,
        national_id=data.national_id,
        phone=data.phone,
        date_of_birth=born,
        language=data.language,
        primary_butler_id=None,  # set by the assignment rules right after
        created_at=now,
        updated_at=now,
        version=1,
    )
    repo.session.add(mother)
    try:
        await repo.session.flush()
    except IntegrityError as exc:  # a concurrent enrolment with the same MRN or id won the race
        raise Conflict("A mother with this MRN or national id is already enrolled.") from exc
    wanted = grading.from_legacy(p.risk_grade, None)
    wanted = Risk(wanted.grade, wanted.purple or p.purple)
    pregnancy = Pregnancy(
        mother_id=mother.id,
        status=PregnancyStatus.ACTIVE,
        gravida=p.gravida,
        para=p.para,
        risk_grade=wanted.grade,
        purple=wanted.purple,
        care_plan_code=care_plan_code,
        created_at=now,
    )
    _store_state(pregnancy, result.state)
    repo.session.add(pregnancy)
    await repo.session.flush()
    repo.session.add(
        _dating_row(
            pregnancy, result, previous_edd=None, note="dating at enrolment", actor=actor, now=now
        )
    )
    notes.dating = _decision(result)
    if result.referral is not None:
        await worklist.add(
            repo.session,
            audiences=[worklist.DOCTOR],
            kind=DATING_REVIEW,
            title="Dating: a scan sent at enrolment differs from the LMP past ACOG 700's "
            "threshold; the LMP dating stands until a doctor decides",
            now=now,
            mother_id=mother.id,
        )
    reason = p.risk_reason
    if p.risk_grade is RiskGrade.PURPLE:
        reason += (
            "; 'purple' read as purple beside yellow (NHFPC 2017: purple stands beside a "
            "colour; an unknown colour is not assumed low)"
        )
    change = await risk.set_risk(
        repo.session,
        mother=mother,
        pregnancy=pregnancy,
        risk=wanted,
        decision=RiskDecision.INITIAL,
        reason=reason,
        actor=_actor(actor),
        today=today,
        now=now,
        rules=risk_rules,
        initial=True,
    )
    notes.risk = change.notes
    await repo.session.flush()
    return mother, pregnancy


async def _redate(
    repo: MotherRepository,
    pregnancy: Pregnancy,
    data: MotherUpdate,
    *,
    actor: Principal,
    today: date,
    now: datetime,
    rules: DatingRules,
    notes: Notes,
) -> bool:
    """A dating change by the rules (ACOG 700); True when the dating changed."""
    assert data.pregnancy is not None
    p = data.pregnancy
    psent = p.model_fields_set
    if not psent & {"lmp_date", "edd_date", "dating_method", "ultrasound", "ivf"}:
        return False
    if p.redating_override is not None and actor.role != Role.DOCTOR:
        raise Forbidden("Only a doctor may override the re-dating rules.")
    current = _state(pregnancy)
    try:
        result = dating.redate(
            rules,
            current,
            lmp=p.lmp_date,
            lmp_sent="lmp_date" in psent,
            edd=p.edd_date if "edd_date" in psent else None,
            method=p.dating_method if "dating_method" in psent else None,
            scan=_scan(p.ultrasound),
            ivf=_ivf(p.ivf),
            override_reason=p.redating_override,
            today=today,
        )
    except RedatingRefused as refused:
        raise _refused(refused) from refused
    except ValueError as exc:
        raise _dating_problem(exc) from exc
    if result is None:
        return False
    notes.dating = _decision(result)
    repo.session.add(
        _dating_row(
            pregnancy,
            result,
            previous_edd=current.edd_date,
            note=p.dating_reason,
            actor=actor,
            now=now,
        )
    )
    _store_state(pregnancy, result.state)
    return result.state != current or result.outcome is DatingOutcome.CONFIRMED


async def update_mother(
    repo: MotherRepository,
    butlers: ButlerRepository,
    *,
    mother: Mother,
    data: MotherUpdate,
    actor: Principal,
    today: date,
    now: datetime,
    dating_rules: DatingRules | None = None,
    risk_rules: RiskRules | None = None,
    notes: Notes | None = None,
) -> tuple[Mother, Pregnancy | None, list[str]]:
    """Apply a partial update; returns what changed (field names only, for the audit trail)."""
    dating_rules = dating_rules or dating_rules_in_force()
    risk_rules = risk_rules or risk.default_rules()
    notes = notes if notes is not None else Notes()
    changed: list[str] = []
    sent = data.model_fields_set

    def put(obj: Mother | Pregnancy, field: str, value: object, label: str) -> None:
        if getattr(obj, field) != value:
            setattr(obj, field, value)
            changed.append(label)

    if "national_id" in sent or "date_of_birth" in sent:
        national_id = data.national_id or mother.national_id
        born = _check_birth_date(national_id, data.date_of_birth, today)
        owner = await repo.national_id_owner(national_id)
        if owner is not None and owner != mother.id:
            raise Conflict("Another mother is enrolled with this national id.")
        put(mother, "national_id", national_id, "national_id")
        put(mother, "date_of_birth", born, "date_of_birth")
    for name in ("name", "phone", "language"):
        value = getattr(data, name)
        if name in sent and value is not None:
            put(mother, name, value, name)

    pregnancy = await repo.active_pregnancy(mother.id)
    wants_risk = data.risk_grade is not None or data.purple is not None
    if (data.pregnancy is not None or wants_risk) and pregnancy is None:
        raise Conflict("She has no active pregnancy episode to change.")
    if pregnancy is not None and data.pregnancy is not None:
        p = data.pregnancy
        before = (pregnancy.lmp_date, pregnancy.edd_date, pregnancy.dating_method)
        if await _redate(
            repo,
            pregnancy,
            data,
            actor=actor,
            today=today,
            now=now,
            rules=dating_rules,
            notes=notes,
        ):
            after = (pregnancy.lmp_date, pregnancy.edd_date, pregnancy.dating_method)
            labels = ("pregnancy.lmp_date", "pregnancy.edd_date", "pregnancy.dating_method")
            changed += [label for label, b, a in zip(labels, before, after, strict=True) if b != a]
            if "pregnancy.dating" not in changed:
                changed.append("pregnancy.dating")
        gravida = p.gravida if p.gravida is not None else pregnancy.gravida
        para = p.para if p.para is not None else pregnancy.para
        if para >= gravida:
            raise invalid_field("pregnancy.para", "para must be lower than gravida")
        put(pregnancy, "gravida", gravida, "pregnancy.gravida")
        put(pregnancy, "para", para, "pregnancy.para")
    if pregnancy is not None and wants_risk:
        current = pregnancy.risk
        wanted = grading.from_legacy(data.risk_grade or current.grade, current)
        if data.purple is not None and data.risk_grade is not RiskGrade.PURPLE:
            wanted = Risk(wanted.grade, data.purple)
        if wanted != current:
            change = await risk.set_risk(
                repo.session,
                mother=mother,
                pregnancy=pregnancy,
                risk=wanted,
                decision=RiskDecision.CHANGED,
                reason=data.risk_reason or "",
                actor=_actor(actor),
                today=today,
                now=now,
                rules=risk_rules,
            )
            notes.risk = change.notes
            if change.rows:
                changed.append("risk_grade")
            if actor.role == Role.DOCTOR:
                await risk.close_prompts(
                    repo.session,
                    mother_id=mother.id,
                    by=f"{actor.role}:{actor.name}",
                    note=f"changed to {risk_rules.label(change.after)}: {data.risk_reason}",
                    now=now,
                    rules=risk_rules,
                )

    if changed:
        await _changed(repo, mother, now=now, today=today)
    try:
        await repo.session.flush()
    except IntegrityError as exc:
        raise Conflict("The change collides with another record (national id).") from exc
    return mother, pregnancy, changed


async def _changed(repo: MotherRepository, mother: Mother, *, now: datetime, today: date) -> None:
    mother.version += 1
    mother.updated_at = now
    await touch_mother(
        repo.session,
        mother.id,
        kind="mother.changed",
        now=now,
        today=today,
        ref_type="mother",
        ref_id=mother.id,
    )


async def assess_risk(
    repo: MotherRepository,
    *,
    mother: Mother,
    data: RiskAssessmentCreate,
    actor: Principal,
    today: date,
    now: datetime,
    rules: RiskRules | None = None,
) -> tuple[Pregnancy, risk.RiskChange, int]:
    """A doctor's assessment: confirms or changes her grade, closes the visit's prompts."""
    rules = rules or risk.default_rules()
    pregnancy = await repo.active_pregnancy(mother.id)
    if pregnancy is None:
        raise NotFound("She has no active pregnancy episode.")
    wanted = Risk(data.grade, data.purple)
    confirmed = wanted == pregnancy.risk
    change = await risk.set_risk(
        repo.session,
        mother=mother,
        pregnancy=pregnancy,
        risk=wanted,
        decision=RiskDecision.CONFIRMED if confirmed else RiskDecision.CHANGED,
        reason=data.reason,
        actor=_actor(actor),
        today=today,
        now=now,
        rules=rules,
        factors=list(data.factors),
    )
    verb = "confirmed" if confirmed else "changed to"
    closed = await risk.close_prompts(
        repo.session,
        mother_id=mother.id,
        by=f"{actor.role}:{actor.name}",
        note=f"{verb} {rules.label(change.after)}: {data.reason}",
        now=now,
        rules=rules,
    )
    if change.changed:
        await _changed(repo, mother, now=now, today=today)
    await repo.session.flush()
    return pregnancy, change, closed


# Views -----------------------------------------------------------------------------------


def gestational_age(pregnancy: Pregnancy, today: date) -> GestationalAge:
    days = domain.gestational_age_days(pregnancy.edd_date, today)
    return GestationalAge(
        days=days, display=domain.format_gestational_age(days), trimester=domain.trimester(days)
    )


def dating_view(pregnancy: Pregnancy, today: date, rules: DatingRules) -> DatingPublic:
    state = _state(pregnancy)
    scan = state.scan
    reason = dating.suboptimal_reason(rules, state, today=today)
    return DatingPublic(
        method=state.method,
        scan=ScanPublic(
            scan_date=scan.scan_date,
            measurement=scan.measurement,
            value_mm=scan.value_mm,
            ga_days=scan.ga_days,
            ga=domain.format_gestational_age(scan.ga_days),
        )
        if scan
        else None,
        ivf=IvfPublic(
            transfer_date=state.ivf.transfer_date, embryo_age_days=state.ivf.embryo_age_days
        )
        if state.ivf
        else None,
        established_by=dating.established_by(rules, state),
        suboptimal=reason is not None,
        suboptimal_reason=reason,
    )


def pregnancy_view(
    pregnancy: Pregnancy,
    today: date,
    *,
    dating_rules: DatingRules | None = None,
    risk_rules: RiskRules | None = None,
) -> PregnancyPublic:
    risk_rules = risk_rules or risk.default_rules()
    her_risk = pregnancy.risk
    return PregnancyPublic(
        id=pregnancy.id,
        lmp_date=pregnancy.lmp_date,
        edd_date=pregnancy.edd_date,
        dating_method=pregnancy.dating_method,
        dating=dating_view(pregnancy, today, dating_rules or dating_rules_in_force()),
        gestational_age=gestational_age(pregnancy, today),
        gravida=pregnancy.gravida,
        para=pregnancy.para,
        risk_grade=her_risk.grade,
        purple=her_risk.purple,
        risk_label=risk_rules.label(her_risk),
        managed_case=risk_rules.is_managed_case(her_risk),
        infection_control=her_risk.needs_infection_control,
    )


def record_view(
    mother: Mother, pregnancy: Pregnancy | None, *, role: str, today: date
) -> MotherRecord:
    reveal_id = role in REVEAL_NATIONAL_ID
    reveal_phone = role in REVEAL_PHONE
    return MotherRecord(
        id=mother.id,
        mrn=mother.mrn,
        name=mother.name,
        national_id=mother.national_id
        if reveal_id
        else domain.mask_national_id(mother.national_id, visible=0),
        national_id_masked=not reveal_id,
        phone=mother.phone if reveal_phone else domain.mask_phone(mother.phone),
        phone_masked=not reveal_phone,
        date_of_birth=mother.date_of_birth,
        age=domain.age_on(mother.date_of_birth, today),
        language=mother.language,
        primary_butler_id=mother.primary_butler_id,
        pregnancy=pregnancy_view(pregnancy, today) if pregnancy else None,
        created_at=mother.created_at,
        updated_at=mother.updated_at,
        version=mother.version,
    )


def summary_view(
    mother: Mother, pregnancy: Pregnancy | None, *, today: date, role: str
) -> MotherSummary:
    """A list row: identifiers always masked; to a role not entitled to her national id, no
    character of it (her record shows such a role her date of birth, and region + date + the
    last four are the whole number)."""
    visible = domain.MASK_VISIBLE if role in REVEAL_NATIONAL_ID else 0
    return MotherSummary(
        id=mother.id,
        mrn=mother.mrn,
        name=mother.name,
        national_id=domain.mask_national_id(mother.national_id, visible=visible),
        phone=domain.mask_phone(mother.phone),
        risk_grade=pregnancy.risk_grade if pregnancy else None,
        purple=pregnancy.purple if pregnancy else None,
        edd_date=pregnancy.edd_date if pregnancy else None,
        gestational_age=(
            domain.format_gestational_age(domain.gestational_age_days(pregnancy.edd_date, today))
            if pregnancy
            else None
        ),
        primary_butler_id=mother.primary_butler_id,
    )
