"""Enrolment and record keeping for mothers. Services flush; the request commits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.exc import IntegrityError

from app.assignments.repository import AssignmentRepository
from app.assignments.service import flag_if_rules_break
from app.butlers.repository import ButlerRepository
from app.core.errors import Conflict, FieldError, ValidationFailed
from app.core.principal import Principal
from app.feed.changes import touch_mother
from app.mothers import domain
from app.mothers.domain import DatingMethod, RiskGrade
from app.mothers.models import (
    DatingChange,
    Mother,
    Pregnancy,
    PregnancyStatus,
    RiskGradeChange,
)
from app.mothers.repository import MotherRepository
from app.mothers.schemas import (
    GestationalAge,
    MotherCreate,
    MotherRecord,
    MotherSummary,
    MotherUpdate,
    PregnancyPublic,
)

# Who sees full identifiers on the single record (SPEC.md "Data protection").
REVEAL_NATIONAL_ID = frozenset({"admin", "front_desk", "doctor"})
REVEAL_PHONE = frozenset({"admin", "front_desk", "doctor", "butler"})


def _invalid(field: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {detail}",
        errors=[
            FieldError(
                field=field, location="body", pointer="#/" + field.replace(".", "/"), detail=detail
            )
        ],
    )


def _check_birth_date(national_id: str, date_of_birth: date | None, today: date) -> date:
    born = domain.parse_national_id(national_id).birth_date
    if date_of_birth is not None and date_of_birth != born:
        raise _invalid("date_of_birth", "does not agree with the birth date in the national id")
    try:
        domain.check_mother_age(born, today=today)
    except ValueError as exc:
        raise _invalid("national_id", str(exc)) from exc
    return born


def _dating(
    *,
    lmp: date | None,
    edd: date | None,
    method: DatingMethod | None,
    today: date,
) -> domain.Dating:
    try:
        return domain.date_pregnancy(lmp=lmp, edd=edd, method=method, today=today)
    except ValueError as exc:
        field = "pregnancy.lmp_date" if "LMP" in str(exc) else "pregnancy.edd_date"
        raise _invalid(field, str(exc)) from exc


async def enrol_mother(
    repo: MotherRepository,
    butlers: ButlerRepository,
    *,
    data: MotherCreate,
    actor: Principal,
    today: date,
    now: datetime,
    care_plan_code: str,
) -> tuple[Mother, Pregnancy]:
    born = _check_birth_date(data.national_id, data.date_of_birth, today)
    dating = _dating(
        lmp=data.pregnancy.lmp_date,
        edd=data.pregnancy.edd_date,
        method=data.pregnancy.dating_method,
        today=today,
    )
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
    pregnancy = Pregnancy(
        mother_id=mother.id,
        status=PregnancyStatus.ACTIVE,
        lmp_date=dating.lmp_date,
        edd_date=dating.edd_date,
        dating_method=dating.method,
        gravida=data.pregnancy.gravida,
        para=data.pregnancy.para,
        risk_grade=data.pregnancy.risk_grade,
        care_plan_code=care_plan_code,
        created_at=now,
    )
    repo.session.add(pregnancy)
    await repo.session.flush()
    repo.session.add(
        DatingChange(
            pregnancy_id=pregnancy.id,
            lmp_date=dating.lmp_date,
            edd_date=dating.edd_date,
            dating_method=dating.method,
            previous_edd_date=None,
            reason="dating at enrolment",
            changed_by_id=actor.id,
            changed_by_name=actor.name,
            changed_at=now,
        )
    )
    repo.session.add(
        RiskGradeChange(
            pregnancy_id=pregnancy.id,
            from_grade=None,
            to_grade=pregnancy.risk_grade,
            reason=data.pregnancy.risk_reason,
            changed_by_id=actor.id,
            changed_by_name=actor.name,
            changed_at=now,
        )
    )
    await repo.session.flush()
    return mother, pregnancy


async def update_mother(
    repo: MotherRepository,
    butlers: ButlerRepository,
    *,
    mother: Mother,
    data: MotherUpdate,
    actor: Principal,
    today: date,
    now: datetime,
) -> tuple[Mother, Pregnancy | None, list[str]]:
    """Apply a partial update; returns what changed (field names only, for the audit trail)."""
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
    for field in ("name", "phone", "language"):
        value = getattr(data, field)
        if field in sent and value is not None:
            put(mother, field, value, field)

    pregnancy = await repo.active_pregnancy(mother.id)
    if (data.pregnancy is not None or data.risk_grade is not None) and pregnancy is None:
        raise Conflict("She has no active pregnancy episode to change.")
    if pregnancy is not None and data.pregnancy is not None:
        p = data.pregnancy
        psent = p.model_fields_set
        if psent & {"lmp_date", "edd_date", "dating_method"}:
            lmp = p.lmp_date if "lmp_date" in psent else pregnancy.lmp_date
            edd = p.edd_date if "edd_date" in psent else None
            method = p.dating_method if "dating_method" in psent else None
            if edd is None and method is None and pregnancy.dating_method is not DatingMethod.LMP:
                # Re-dating by LMP must not silently overwrite an ultrasound-dated EDD.
                edd, method = pregnancy.edd_date, pregnancy.dating_method
            dating = _dating(lmp=lmp, edd=edd, method=method, today=today)
            before = (pregnancy.lmp_date, pregnancy.edd_date, pregnancy.dating_method)
            put(pregnancy, "lmp_date", dating.lmp_date, "pregnancy.lmp_date")
            put(pregnancy, "edd_date", dating.edd_date, "pregnancy.edd_date")
            put(pregnancy, "dating_method", dating.method, "pregnancy.dating_method")
            if (dating.lmp_date, dating.edd_date, dating.method) != before:
                repo.session.add(
                    DatingChange(
                        pregnancy_id=pregnancy.id,
                        lmp_date=dating.lmp_date,
                        edd_date=dating.edd_date,
                        dating_method=dating.method,
                        previous_edd_date=before[1],
                        reason=p.dating_reason or f"re-dated ({dating.method.value})",
                        changed_by_id=actor.id,
                        changed_by_name=actor.name,
                        changed_at=now,
                    )
                )
        gravida = p.gravida if p.gravida is not None else pregnancy.gravida
        para = p.para if p.para is not None else pregnancy.para
        if para >= gravida:
            raise _invalid("pregnancy.para", "para must be lower than gravida")
        put(pregnancy, "gravida", gravida, "pregnancy.gravida")
        put(pregnancy, "para", para, "pregnancy.para")
    if (
        pregnancy is not None
        and data.risk_grade is not None
        and data.risk_grade != pregnancy.risk_grade
    ):
        repo.session.add(
            RiskGradeChange(
                pregnancy_id=pregnancy.id,
                from_grade=pregnancy.risk_grade,
                to_grade=data.risk_grade,
                reason=data.risk_reason or "",
                changed_by_id=actor.id,
                changed_by_name=actor.name,
                changed_at=now,
            )
        )
        pregnancy.risk_grade = data.risk_grade
        changed.append("risk_grade")
        assignments = AssignmentRepository(repo.session)
        current = await assignments.active_primary(mother.id)
        await flag_if_rules_break(
            current,
            await butlers.get(current.butler_id) if current else None,
            grade=data.risk_grade,
            now=now,
            session=repo.session,
        )

    if changed:
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
    try:
        await repo.session.flush()
    except IntegrityError as exc:
        raise Conflict("The change collides with another record (national id).") from exc
    return mother, pregnancy, changed


# Views -----------------------------------------------------------------------------------


def gestational_age(pregnancy: Pregnancy, today: date) -> GestationalAge:
    days = domain.gestational_age_days(pregnancy.edd_date, today)
    return GestationalAge(
        days=days, display=domain.format_gestational_age(days), trimester=domain.trimester(days)
    )


def pregnancy_view(pregnancy: Pregnancy, today: date) -> PregnancyPublic:
    return PregnancyPublic(
        id=pregnancy.id,
        lmp_date=pregnancy.lmp_date,
        edd_date=pregnancy.edd_date,
        dating_method=pregnancy.dating_method,
        gestational_age=gestational_age(pregnancy, today),
        gravida=pregnancy.gravida,
        para=pregnancy.para,
        risk_grade=pregnancy.risk_grade,
        infection_control=RiskGrade(pregnancy.risk_grade).needs_infection_control,
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
        else domain.mask_national_id(mother.national_id),
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


def summary_view(mother: Mother, pregnancy: Pregnancy | None, *, today: date) -> MotherSummary:
    return MotherSummary(
        id=mother.id,
        mrn=mother.mrn,
        name=mother.name,
        national_id=domain.mask_national_id(mother.national_id),
        phone=domain.mask_phone(mother.phone),
        risk_grade=pregnancy.risk_grade if pregnancy else None,
        edd_date=pregnancy.edd_date if pregnancy else None,
        gestational_age=(
            domain.format_gestational_age(domain.gestational_age_days(pregnancy.edd_date, today))
            if pregnancy
            else None
        ),
        primary_butler_id=mother.primary_butler_id,
    )
