"""Care-plan use cases: her situation from the database, what a visit orders, what clinicians
record (choices, declines, results from elsewhere, indications), the late-pregnancy actions.

Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.careplan import domain as plan
from app.careplan.domain import Guideline, RecordKind
from app.careplan.models import CareIndication, ExamDecline, OutsideResult, ScreeningChoice
from app.careplan.repository import CarePlanRepository, OrderRow
from app.core.errors import Conflict, invalid_field
from app.core.principal import Principal
from app.mothers.domain import PREGNANCY_DAYS, RiskGrade, gestational_age_days
from app.mothers.models import Pregnancy
from app.visits.domain import ACTIVE, VisitStatus
from app.visits.models import ExamOrderStatus, Visit
from app.worklist import service as worklist


def _record_of(row: OrderRow, exam: plan.ExamType | None, edd: date) -> plan.ExamRecord | None:
    """What one exam order says about its exam: ordered, done, resulted or nothing (lapsed)."""
    ga = gestational_age_days(edd, row.visit_date)
    if row.resulted:
        return plan.ExamRecord(row.exam_code, RecordKind.RESULTED, ga)
    if row.order_status == ExamOrderStatus.DONE:
        lab = exam.lab if exam is not None else False
        return plan.ExamRecord(row.exam_code, RecordKind.DONE if lab else RecordKind.RESULTED, ga)
    if row.order_status == ExamOrderStatus.ORDERED and VisitStatus(row.visit_status) in ACTIVE:
        return plan.ExamRecord(row.exam_code, RecordKind.ORDERED, ga)
    return None  # cancelled, or left undone on a visit that is over: due again


@dataclass(frozen=True, slots=True)
class Facts:
    """Her situation, and what stands behind its flags (for the plan's explanation)."""

    situation: plan.Situation
    flag_reasons: dict[str, str]
    choices: list[ScreeningChoice]


async def situation(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    today: date,
    enrolled_on: date,
    region_flags: Iterable[str] = (),
    arriving: bool = False,
) -> Facts:
    """Everything the plan needs, read from the database. ``arriving``: she checks in today."""
    repo = CarePlanRepository(session)
    edd = pregnancy.edd_date
    records = [
        rec
        for row in await repo.orders(pregnancy.id)
        if (rec := _record_of(row, guideline.exams.get(row.exam_code), edd)) is not None
    ]
    records += [
        plan.ExamRecord(
            d.exam_code,
            RecordKind.DECLINED,
            gestational_age_days(edd, d.recorded_at.date()),
            item_key=d.item_key,
            detail=f"{d.reason} (recorded by {d.recorded_by_name})",
        )
        for d in await repo.declines(pregnancy.id)
    ]
    records += [
        plan.ExamRecord(
            o.exam_code,
            RecordKind.OUTSIDE,
            gestational_age_days(edd, o.result_date),
            detail=f"{o.source}, {o.result_date.isoformat()}",
        )
        for o in await repo.outside_results(pregnancy.id)
    ]
    reasons: dict[str, str] = {}
    for flag in region_flags:
        if flag in guideline.indications:
            reasons[flag] = "the hospital's province setting"
    for row in await repo.indications(pregnancy.id):  # oldest first: the last row decides
        if row.present:
            reasons[row.code] = f"{row.reason} (recorded by {row.recorded_by_name})"
        else:
            reasons.pop(row.code, None)
    codes = {c for ind in guideline.indications.values() for c in ind.codes}
    observed = [
        plan.Observed(obs.code, obs.numeric, obs.unit, obs.value)
        for obs, _report in await repo.observations(pregnancy.mother_id, codes)
    ]
    for code, value in plan.flags_from_results(guideline, observed).items():
        reasons.setdefault(code, f"her result {value}")
    first = await repo.first_arrival(pregnancy.id)
    if first is None and arriving:
        first = today
    choices = await repo.current_choices(pregnancy.id)
    return Facts(
        situation=plan.Situation(
            edd=edd,
            risk_grade=RiskGrade(pregnancy.risk_grade),
            today=today,
            enrolled_on=enrolled_on,
            first_visit_day=gestational_age_days(edd, first) if first else None,
            flags=frozenset(reasons),
            records=tuple(records),
            choices={
                c.choice_code: plan.ChoiceMade(c.choice_code, c.option_code, c.consent_recorded)
                for c in choices
            },
        ),
        flag_reasons=reasons,
        choices=choices,
    )


async def exams_to_order(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    today: date,
    enrolled_on: date,
    region_flags: Iterable[str] = (),
) -> list[str]:
    """The exam codes to order at her visit today (she is checking in)."""
    facts = await situation(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        today=today,
        enrolled_on=enrolled_on,
        region_flags=region_flags,
        arriving=True,
    )
    return plan.exams_to_order(guideline, facts.situation)


async def exams_expected(
    session: AsyncSession,
    *,
    visit: Visit,
    guideline: Guideline,
    on: date,
    region_flags: Iterable[str] = (),
) -> list[str]:
    """The exam codes the care plan will order for this visit if she comes on ``on``."""
    pregnancy = await session.get(Pregnancy, visit.pregnancy_id)
    assert pregnancy is not None
    return await exams_to_order(
        session,
        pregnancy=pregnancy,
        guideline=guideline,
        today=on,
        enrolled_on=min(on, pregnancy.created_at.date()),
        region_flags=region_flags,
    )


# What clinicians record ----------------------------------------------------------------


def _recorded(actor: Principal, now: datetime) -> dict[str, object]:
    return {
        "recorded_by_id": actor.id,
        "recorded_by_name": actor.name,
        "recorded_by_role": actor.role,
        "recorded_at": now,
    }


async def record_choice(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    choice_code: str,
    option: str | None,
    consent: bool,
    note: str,
    actor: Principal,
    now: datetime,
) -> ScreeningChoice:
    """Her choice (or her refusal of every option); a new choice supersedes the last one."""
    choice = guideline.choices.get(choice_code)
    if choice is None:
        known = ", ".join(guideline.choices) or "none"
        raise invalid_field(
            "choice", f"the {guideline.code} plan has no choice {choice_code!r} ({known})"
        )
    if option is not None and option not in choice.options:
        raise invalid_field(
            "option", f"{choice.label}: the options are {', '.join(choice.options)}"
        )
    if option is not None and guideline.exams[option].consent and not consent:
        raise invalid_field(
            "consent",
            f"{guideline.exams[option].name} needs her informed consent: record it (consent: true)",
        )
    repo = CarePlanRepository(session)
    current = await repo.current_choice(pregnancy.id, choice_code)
    if current is not None:
        if current.option_code == option and current.consent_recorded == consent:
            return current  # the same choice again changes nothing
        current.superseded_at = now
        await session.flush()
    row = ScreeningChoice(
        pregnancy_id=pregnancy.id,
        choice_code=choice_code,
        option_code=option,
        consent_recorded=consent,
        note=note,
        superseded_at=None,
        **_recorded(actor, now),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # another clinician recorded a choice at the same moment
        raise Conflict(
            "Another choice was recorded at the same moment; read the plan again."
        ) from exc
    return row


async def record_decline(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    exam_code: str,
    item_key: str | None,
    reason: str,
    actor: Principal,
    now: datetime,
    today: date,
    enrolled_on: date,
) -> ExamDecline:
    """She declines an exam of her plan: the open item it names (or the exam's open one)."""
    exam = guideline.exams.get(exam_code)
    if exam is None:
        raise invalid_field("exam_code", f"the {guideline.code} table has no exam {exam_code!r}")
    facts = await situation(
        session, pregnancy=pregnancy, guideline=guideline, today=today, enrolled_on=enrolled_on
    )
    open_items = [
        st.item
        for st in plan.item_states(guideline, facts.situation)
        if st.item.exam.code == exam_code and st.state not in plan.CLOSED_STATES
    ]
    if item_key is not None:
        open_items = [i for i in open_items if i.key == item_key]
    if not open_items:
        raise Conflict(f"Her plan has no open {exam.name} to decline.")
    row = ExamDecline(
        pregnancy_id=pregnancy.id,
        exam_code=exam_code,
        item_key=open_items[0].key,
        reason=reason,
        **_recorded(actor, now),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Her decline of {exam.name} is already recorded.") from exc
    return row


async def record_outside_result(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    exam_code: str,
    result_date: date,
    source: str,
    summary: str,
    actor: Principal,
    now: datetime,
    today: date,
) -> OutsideResult:
    """A result from another hospital, in this pregnancy: it stands in for the exam."""
    if exam_code not in guideline.exams:
        raise invalid_field("exam_code", f"the {guideline.code} table has no exam {exam_code!r}")
    start = pregnancy.edd_date - timedelta(days=PREGNANCY_DAYS)
    if result_date > today:
        raise invalid_field("result_date", "is in the future")
    if result_date < start:
        raise invalid_field(
            "result_date",
            f"is before this pregnancy began ({start.isoformat()}, LMP-equivalent): "
            "a result from before it does not stand in for this pregnancy's test",
        )
    row = OutsideResult(
        pregnancy_id=pregnancy.id,
        exam_code=exam_code,
        result_date=result_date,
        source=source,
        summary=summary,
        **_recorded(actor, now),
    )
    session.add(row)
    await session.flush()
    return row


async def record_indication(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    code: str,
    present: bool,
    reason: str,
    actor: Principal,
    now: datetime,
) -> CareIndication:
    if code not in guideline.indications:
        known = ", ".join(guideline.indications) or "none"
        raise invalid_field(
            "code", f"the {guideline.code} plan has no indication {code!r} ({known})"
        )
    row = CareIndication(
        pregnancy_id=pregnancy.id,
        code=code,
        present=present,
        reason=reason,
        **_recorded(actor, now),
    )
    session.add(row)
    await session.flush()
    return row


# Late pregnancy ------------------------------------------------------------------------

LATE_KINDS = {
    plan.LateAction.INDUCTION_DECISION: "careplan.induction_decision",
    plan.LateAction.POST_TERM: "careplan.post_term",
}


async def raise_late_actions(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    guideline: Guideline,
    today: date,
    now: datetime,
) -> list[str]:
    """At 41+0 the doctor decides admission for induction; from 42+0 it is an alert."""
    ga = gestational_age_days(pregnancy.edd_date, today)
    raised = []
    repo = CarePlanRepository(session)
    for action in plan.late_actions(guideline, ga):
        if await repo.action_raised(pregnancy, LATE_KINDS[action]):
            continue  # once per pregnancy: the doctor's decision stands
        if action is plan.LateAction.INDUCTION_DECISION:
            await worklist.add(
                session,
                audiences=[worklist.DOCTOR],
                kind=LATE_KINDS[action],
                priority=worklist.TODAY,
                title=(
                    f"41+0 reached ({pregnancy.edd_date.isoformat()} + 7 days): decide admission "
                    "for induction (CSOG 2014 induction guideline; CSOG 2018)"
                ),
                now=now,
                mother_id=pregnancy.mother_id,
            )
        else:
            await worklist.add(
                session,
                audiences=[worklist.DOCTOR, worklist.FRONT_DESK],
                kind=LATE_KINDS[action],
                priority=worklist.CRITICAL,
                title=(
                    "42+0 reached and she is still an outpatient: post-term pregnancy, admit "
                    "(CSOG 2014 induction guideline)"
                ),
                now=now,
                mother_id=pregnancy.mother_id,
            )
        raised.append(LATE_KINDS[action])
    return raised


async def sweep_late_pregnancies(
    session: AsyncSession, *, guidelines: dict[str, Guideline], today: date, now: datetime
) -> int:
    """The daily rule: every active pregnancy at 41+0 or later gets its doctor's action."""
    repo = CarePlanRepository(session)
    earliest = min(
        (g.induction_from for g in guidelines.values() if g.induction_from is not None),
        default=None,
    )
    if earliest is None:
        return 0
    raised = 0
    cutoff = today - timedelta(days=earliest - PREGNANCY_DAYS)
    for pregnancy in await repo.late_pregnancies(cutoff):
        guideline = guidelines.get(pregnancy.care_plan_code)
        if guideline is None:
            continue
        raised += len(
            await raise_late_actions(
                session, pregnancy=pregnancy, guideline=guideline, today=today, now=now
            )
        )
    await session.flush()
    return raised
