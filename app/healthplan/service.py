"""Health-plan use cases: generate a draft, change items (a new version), sign, read what is due;
and the nutrition assessment. Services flush, never commit.

Every version is kept; a signed version never changes (the database refuses it too). The
version in force is the newest signed one: a draft made after it waits for its signature and
the butler keeps reading the signed one meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.careplan.repository import CarePlanRepository
from app.clinical import service as clinical
from app.core.errors import Conflict, NotFound, invalid_field
from app.core.principal import Principal
from app.feed.changes import touch_mother
from app.feed.models import Task
from app.healthplan import domain
from app.healthplan.domain import Her, ItemChange, PlanTables
from app.healthplan.models import HealthPlan, HealthPlanVersion, NutritionAssessment
from app.healthplan.repository import HealthPlanRepository
from app.mothers.domain import gestational_age_days
from app.mothers.models import Mother, Pregnancy
from app.notifications.outbox import notify_butler
from app.queues import operations
from app.queues.catalogue import load_catalogue
from app.queues.models import EntryState
from app.queues.policy import Ctx, QueuePolicy
from app.worklist import service as worklist
from app.worklist.repository import WorklistRepository

SIGNING_ROLES = frozenset({Role.DOCTOR.value, Role.NUTRITIONIST.value})


class PlanConflict(Conflict):
    slug = "health-plan-conflict"
    title = "The plan has moved on"


# Her data, read ----------------------------------------------------------------------------


async def her_data(
    session: AsyncSession, *, pregnancy: Pregnancy, today: date, gwg_table: str | None = None
) -> Her:
    """Her GA, BMI and weight gain (clinical.weight_gain), open flags, risk grade, twins."""
    twins = await CarePlanRepository(session).twins(pregnancy.id)
    flags = {f.code: f.grade for f in await clinical.open_flags(session, pregnancy.id)}
    wg = await clinical.weight_gain(session, pregnancy)
    table = clinical.gwg_table_in_force()
    group = None
    if wg.group_code is not None and not twins:
        group = next((g for g in table.groups if g.code == wg.group_code), None)
    weight = domain.Weight(
        table=table,
        group=group,
        not_covered=wg.not_covered,
        gain_kg=wg.gain_kg,
        status=wg.status,
    )
    return Her(
        today=today,
        ga_days=gestational_age_days(pregnancy.edd_date, today),
        risk_grade=str(pregnancy.risk_grade),
        bmi=wg.bmi,
        weight=weight,
        flags=flags,
        twins=twins,
    )


# Versions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanView:
    plan: HealthPlan
    latest: HealthPlanVersion
    signed: HealthPlanVersion | None
    stale_reasons: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


async def plan_view(session: AsyncSession, pregnancy: Pregnancy) -> PlanView:
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id)
    if plan is None:
        raise NotFound("She has no health-management plan yet: generate one first.")
    latest = await repo.version(plan.id, plan.latest_version)
    assert latest is not None
    signed = await repo.version(plan.id, plan.signed_version) if plan.signed_version else None
    reasons = await _stale_reasons(session, pregnancy, signed) if signed else []
    return PlanView(plan=plan, latest=latest, signed=signed, stale_reasons=tuple(reasons))


async def current_version(session: AsyncSession, pregnancy: Pregnancy) -> int | None:
    """Her plan's newest version (its ETag), or None before her first plan."""
    plan = await HealthPlanRepository(session).plan_of(pregnancy.id)
    return None if plan is None else plan.latest_version


async def _stale_reasons(
    session: AsyncSession, pregnancy: Pregnancy, signed: HealthPlanVersion
) -> list[str]:
    """What changed in her flags and risk grade since the version in force was made: read on
    every read of the plan (nothing to keep in step), from the rules' own flags."""
    open_now = await clinical.open_flags(session, pregnancy.id)
    after = {
        f.code for f in open_now if signed.signed_at is not None and f.raised_at >= signed.signed_at
    }
    return domain.stale_reasons(
        signed.inputs,
        {f.code: f.grade for f in open_now},
        str(pregnancy.risk_grade),
        after_signing=after,
    )


PLAN_REVIEW = "health_plan.review"
PLAN_REVIEWERS = (worklist.DOCTOR, worklist.NUTRITIONIST)


async def ask_for_review_if_stale(
    session: AsyncSession, *, mother: Mother, view: PlanView, now: datetime
) -> None:
    """A stale plan in force asks a doctor and the nutritionist to review it, once: the item
    is raised on the first read that finds these reasons (the same reasons since signing
    raise nothing again, even once acknowledged; a new reason raises a new item), and the
    signature of a new version closes it. Raised from the plan's side on read, so the rules
    (app/clinical) need no hook into the plan."""
    signed = view.signed
    if not view.stale or signed is None or signed.signed_at is None:
        return
    title = (
        f"Review her health plan (version {signed.version} in force): "
        + "; ".join(view.stale_reasons)
    )[:300]
    # Two reads at once must not both raise it: the second waits for the first's commit.
    await HealthPlanRepository(session).lock(signed.plan_id)
    raised = await WorklistRepository(session).raised_since(
        mother_id=mother.id, kind=PLAN_REVIEW, since=signed.signed_at
    )
    if any(i.title == title for i in raised):
        return
    await worklist.add(
        session,
        audiences=PLAN_REVIEWERS,
        kind=PLAN_REVIEW,
        title=title,
        now=now,
        priority=worklist.TODAY,
        mother_id=mother.id,
    )


async def _new_version(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    kind: str,
    sections: Mapping[str, Any],
    inputs: Mapping[str, Any],
    note: str,
    actor: Principal,
    now: datetime,
    expected_version: int | None = None,
) -> tuple[HealthPlan, HealthPlanVersion]:
    """The next version of her plan (the plan is made with version 1). ``expected_version``:
    the version the caller changed; a newer one means someone else changed it first (412 is
    the router's: here it is a conflict)."""
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id, for_update=True)
    if plan is None:
        plan = HealthPlan(
            pregnancy_id=pregnancy.id,
            mother_id=mother.id,
            latest_version=1,
            signed_version=None,
            created_at=now,
            updated_at=now,
        )
        session.add(plan)
        number = 1
    else:
        if expected_version is not None and plan.latest_version != expected_version:
            raise PlanConflict(
                f"Version {expected_version} is no longer the newest "
                f"(version {plan.latest_version} is): read it and change that.",
                extra={"latest_version": plan.latest_version},
            )
        number = plan.latest_version + 1
    version = HealthPlanVersion(
        version=number,
        kind=kind,
        sections=dict(sections),
        inputs=dict(inputs),
        change_note=note.strip() or kind,
        created_by_id=actor.id,
        created_by_name=actor.name,
        created_by_role=actor.role,
        created_at=now,
    )
    plan.latest_version = number
    plan.updated_at = now
    await session.flush()  # the plan's id
    version.plan_id = plan.id
    session.add(version)
    await session.flush()
    return plan, version


async def generate(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    tables: PlanTables,
    actor: Principal,
    now: datetime,
    today: date,
    note: str = "",
    expected_version: int | None = None,
) -> tuple[HealthPlan, HealthPlanVersion]:
    """A new draft generated from the tables and her data today (every earlier version kept).

    When she has a plan, ``expected_version`` is the version the caller read (the router
    requires If-Match) and the new version is that one refreshed, not replaced: the items a
    clinician added, changed or removed and the nutrition assessment's record are kept
    (``domain.regenerate``), so a regeneration after a new flag never drops a clinician's
    decision. Refusing regeneration outright (409) would also lose nothing, but would leave a
    stale plan to be re-typed by hand; a refreshed draft still waits for a signature."""
    her = await her_data(session, pregnancy=pregnancy, today=today)
    sections = domain.generate(her, tables)
    made_from = domain.inputs(her, tables)
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id, for_update=True)
    if plan is not None:
        if expected_version is None or plan.latest_version != expected_version:
            raise PlanConflict(
                f"Version {expected_version} is no longer the newest "
                f"(version {plan.latest_version} is): read it and regenerate that.",
                extra={"latest_version": plan.latest_version},
            )
        latest = await repo.version(plan.id, plan.latest_version)
        assert latest is not None
        sections, kept = domain.regenerate(latest.sections, sections, latest.version)
        made_from |= {"regenerated_from_version": latest.version, "kept_items": kept}
    return await _new_version(
        session,
        mother=mother,
        pregnancy=pregnancy,
        kind="generated",
        sections=sections,
        inputs=made_from,
        note=note or "generated from the tables and her data",
        actor=actor,
        now=now,
        expected_version=expected_version,
    )


async def change_items(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    base_version: int,
    changes: Sequence[ItemChange],
    note: str,
    actor: Principal,
    now: datetime,
) -> tuple[HealthPlan, HealthPlanVersion]:
    """A clinician's changes as a new (unsigned) version on top of ``base_version``."""
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id, for_update=True)
    if plan is None:
        raise NotFound("She has no health-management plan yet: generate one first.")
    base = await repo.version(plan.id, base_version)
    if base is None:
        raise NotFound(f"Her plan has no version {base_version}.")
    try:
        sections = domain.apply_changes(base.sections, changes, by=f"{actor.name} ({actor.role})")
    except domain.ChangeError as exc:
        raise invalid_field(exc.pointer, str(exc)) from exc
    return await _new_version(
        session,
        mother=mother,
        pregnancy=pregnancy,
        kind="changed",
        sections=sections,
        inputs=base.inputs | {"changed_from_version": base.version},
        note=note,
        actor=actor,
        now=now,
        expected_version=base_version,
    )


async def sign(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    number: int,
    actor: Principal,
    now: datetime,
    today: date,
) -> tuple[HealthPlan, HealthPlanVersion]:
    """A doctor or the nutritionist signs the newest version: it comes into force, unchanged
    from then on; her butler's list changes."""
    if actor.role not in SIGNING_ROLES:  # the route checks too; the record says who decided
        raise Conflict("Only a doctor or the nutritionist signs a plan.")
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id, for_update=True)
    if plan is None:
        raise NotFound("She has no health-management plan yet: generate one first.")
    version = await repo.version(plan.id, number)
    if version is None:
        raise NotFound(f"Her plan has no version {number}.")
    if version.signed_at is not None:
        raise PlanConflict(
            f"Version {number} was signed by {version.signed_by_name} already.",
            extra={"signed_by": version.signed_by_name},
        )
    if number != plan.latest_version:
        raise PlanConflict(
            f"Version {number} is not the newest: a newer version exists (version "
            f"{plan.latest_version}); read it and sign version {plan.latest_version}, "
            "or change it.",
            extra={"latest_version": plan.latest_version},
        )
    version.signed_by_id, version.signed_by_name = actor.id, actor.name
    version.signed_by_role, version.signed_at = actor.role, now
    plan.signed_version = number
    plan.updated_at = now
    await session.flush()
    # A new version in force answers the request to review the old one.
    for item in await WorklistRepository(session).open_items_for(
        mother.id, PLAN_REVIEWERS, [PLAN_REVIEW]
    ):
        await worklist.acknowledge(
            session,
            item,
            by=f"{actor.role}:{actor.name}",
            note=f"version {number} signed",
            now=now,
        )
    await touch_mother(
        session,
        mother.id,
        kind="health_plan.signed",
        now=now,
        today=today,
        ref_type="mother",
        ref_id=mother.id,
    )
    return plan, version


UNDER_REVIEW = (
    "她的健康计划正在由医生复核，新版本签署前部分事项暂停。 "
    "Her plan is being reviewed by her doctor: some items are paused until a new version is "
    "signed. Do only what is listed here."
)


@dataclass(frozen=True, slots=True)
class Due:
    """Her butler's view of the plan in force: what is due, and whether it is under review."""

    signed: HealthPlanVersion | None
    items: list[domain.DueItem]
    view: PlanView | None = None
    held_back: int = 0  # items left out: the flag that put them there no longer stands

    @property
    def under_review(self) -> bool:
        return self.view is not None and self.view.stale


async def due_items(
    session: AsyncSession, *, pregnancy: Pregnancy, today: date, horizon_days: int = 7
) -> Due:
    """What her butler sees: the signed plan's items due now (none before it is signed).

    When the plan in force is stale (a flag raised, regraded or gone since it was made) the
    answer says it is under review, in words for the butler that name no diagnosis; and the
    items a flag put there are left out once that flag no longer stands (iron advice after
    the anaemia flag went with a detached result): acting on a reason that is gone is the
    harm, while a missed day of iron advice costs little before a clinician signs again."""
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id)
    if plan is None or plan.signed_version is None:
        return Due(signed=None, items=[])
    view = await plan_view(session, pregnancy)
    assert view.signed is not None
    standing = {f.code for f in await clinical.open_flags(session, pregnancy.id)}
    ga_days = gestational_age_days(pregnancy.edd_date, today)
    every = domain.items_due(
        view.signed.sections, ga_days=ga_days, today=today, horizon_days=horizon_days
    )
    due = domain.items_due(
        view.signed.sections,
        ga_days=ga_days,
        today=today,
        horizon_days=horizon_days,
        standing_flags=standing,
    )
    return Due(signed=view.signed, items=due, view=view, held_back=len(every) - len(due))


# The nutrition assessment -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowUp:
    title: str
    due_in_days: int


@dataclass(frozen=True, slots=True)
class Assessed:
    assessment: NutritionAssessment
    version: HealthPlanVersion
    tasks: list[Task]
    finished_entry_id: uuid.UUID | None


def _due_at(today: date, days: int, tz: ZoneInfo) -> datetime:
    """A task due at noon, clinic time, ``days`` from today."""
    local = datetime.combine(today + timedelta(days=days), time(12, 0), tzinfo=tz)
    return local.astimezone(UTC)


def _assessment_tasks(
    version: HealthPlanVersion, follow_ups: Sequence[FollowUp], today: date
) -> list[tuple[str, int]]:
    """Her butler's tasks: the clinician's follow-ups, and the plan's dated butler items."""
    out = [(f.title, f.due_in_days) for f in follow_ups]
    for item in version.sections.get("follow_ups", {}).get("items", []):
        if item.get("satisfied"):  # done (the assessment itself): nothing to book
            continue
        if item.get("for_butler") and item.get("due_date"):
            days = (date.fromisoformat(item["due_date"]) - today).days
            out.append((str(item["title"]), max(days, 0)))
        elif item.get("for_butler") and item.get("repeat_days"):
            out.append((f"{item['title']}: check with her", int(item["repeat_days"])))
    return out


async def assess(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    tables: PlanTables,
    diet: str,
    activity: str,
    supplements: Sequence[str],
    note: str,
    follow_ups: Sequence[FollowUp],
    visit_id: uuid.UUID | None,
    sign_now: bool,
    actor: Principal,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    queue_policy: QueuePolicy,
) -> Assessed:
    """Record the assessment with her BMI, weight-gain status and diabetes as they stand;
    make the plan's nutrition section afresh in a new version (signed by her when she says
    so); give her butler the follow-up tasks; finish the nutrition exam if it is under way."""
    her = await her_data(session, pregnancy=pregnancy, today=today)
    generated = domain.generate(her, tables)
    nutrition = dict(generated["nutrition"])
    nutrition["assessment"] = {
        "diet": diet,
        "activity": activity,
        "supplements": list(supplements),
        "note": note,
        "by": f"{actor.name} ({actor.role})",
        "at": now.isoformat(),
    }
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id, for_update=True)
    if plan is None:
        sections = generated | {"nutrition": nutrition}
        expected = None
    else:
        latest = await repo.version(plan.id, plan.latest_version)
        assert latest is not None
        # The nutrition section and the follow-ups her findings call for (diabetes, anaemia)
        # come fresh, with the items a clinician added, changed or removed kept.
        sections, _kept = domain.regenerate(
            latest.sections,
            generated | {"nutrition": nutrition},
            latest.version,
            names=("nutrition", "follow_ups"),
        )
        expected = plan.latest_version
    # The assessment that is happening now is the "see the nutritionist" item: done, recorded
    # as such, so her butler is not told to book it (the clinician still sees it planned).
    sections = domain.satisfy(
        sections,
        domain.NUTRITIONIST_ITEMS,
        by=f"{actor.name} ({actor.role})",
        at=now,
        what="nutrition assessment",
    )
    w = her.weight
    _plan, version = await _new_version(
        session,
        mother=mother,
        pregnancy=pregnancy,
        kind="assessment",
        sections=sections,
        inputs=domain.inputs(her, tables) | {"assessment": True},
        note=f"nutrition assessment by {actor.name}",
        actor=actor,
        now=now,
        expected_version=expected,
    )
    if sign_now:
        await sign(
            session,
            mother=mother,
            pregnancy=pregnancy,
            number=version.version,
            actor=actor,
            now=now,
            today=today,
        )
    row = NutritionAssessment(
        pregnancy_id=pregnancy.id,
        mother_id=mother.id,
        visit_id=visit_id,
        ga_days=her.ga_days,
        diet=diet,
        activity=activity,
        supplements=list(supplements),
        note=note,
        bmi=None if her.bmi is None else round(her.bmi, 2),
        bmi_group=w.group.code if w and w.group else None,
        gwg_table=w.table.code if w else None,
        gain_kg=w.gain_kg if w else None,
        gwg_status=w.status if w else None,
        diabetes=domain.diabetes(her.flags),
        plan_version_id=version.id,
        assessed_by_id=actor.id,
        assessed_by_name=actor.name,
        assessed_by_role=actor.role,
        assessed_at=now,
    )
    session.add(row)
    tasks = []
    # The same follow-up is not given twice: a task she already has open under this title
    # (a plan item tasked at an earlier assessment) stands, with its own due date.
    open_titles = await repo.open_task_titles(mother.id)
    for title, days in _assessment_tasks(version, follow_ups, today):
        if title[:300] in open_titles:
            continue
        open_titles.add(title[:300])
        task = Task(
            mother_id=mother.id,
            butler_id=mother.primary_butler_id,
            title=title[:300],
            due_at=_due_at(today, days, tz),
            created_by_name=actor.name,
            created_at=now,
        )
        session.add(task)
        tasks.append(task)
    await session.flush()
    for task in tasks:
        await notify_butler(
            session,
            topic="task.created",
            now=now,
            butler_id=task.butler_id,
            mother_id=mother.id,
            payload={"task_id": str(task.id)},
        )
    await touch_mother(
        session,
        mother.id,
        kind="nutrition.assessed",
        now=now,
        today=today,
        ref_type="mother",
        ref_id=mother.id,
    )
    await _referrals_answered(session, mother=mother, actor=actor, now=now)
    finished = await _finish_nutrition_exam(
        session, mother=mother, actor=actor, now=now, tz=tz, policy=queue_policy
    )
    return Assessed(assessment=row, version=version, tasks=tasks, finished_entry_id=finished)


async def _referrals_answered(
    session: AsyncSession, *, mother: Mother, actor: Principal, now: datetime
) -> None:
    """She has been seen: the referrals waiting on the nutritionist's list for her (a GDM
    consultation, a weight-gain referral, a doctor's "see the nutritionist") are answered, and
    the tasks they gave her butler to book the appointment are done. The follow-ups of this
    assessment are new tasks; the referral's rule, if it still stands, refers her again."""
    by = f"{actor.role}:{actor.name}"
    items = await worklist.close_for_mother(
        session,
        mother_id=mother.id,
        audiences=[worklist.NUTRITIONIST],
        by=by,
        note="seen: nutrition assessment recorded",
        now=now,
    )
    for item in items:
        if item.task_id is None:
            continue
        task = await session.get(Task, item.task_id, with_for_update=True)
        if task is not None and task.completed_at is None:
            task.completed_at = now
            task.completion_note = f"done: the nutritionist saw her ({actor.name})"
    await session.flush()


async def _finish_nutrition_exam(
    session: AsyncSession,
    *,
    mother: Mother,
    actor: Principal,
    now: datetime,
    tz: ZoneInfo,
    policy: QueuePolicy,
) -> uuid.UUID | None:
    """Her nutrition exam, if she is called or being seen for it, is done: she moves on to
    the queues now open to her. Waiting (not yet called) is left as it is: the station has
    not seen her, and the assessment may have been made elsewhere."""
    entry = await HealthPlanRepository(session).nutrition_entry_under_way(mother.id)
    if entry is None:
        return None
    ctx = Ctx(now=now, tz=tz, actor=actor, policy=policy)
    if entry.state == EntryState.CALLED:
        await operations.start(session, entry, ctx)
    await operations.finish(session, entry, await load_catalogue(session), ctx)
    return entry.id


async def assessments(session: AsyncSession, pregnancy: Pregnancy) -> list[NutritionAssessment]:
    return await HealthPlanRepository(session).assessments(pregnancy.id)


async def versions(session: AsyncSession, pregnancy: Pregnancy) -> list[HealthPlanVersion]:
    """Her plan's versions; none before one is generated (an answer, not an error: a chart asks
    before it offers to generate one)."""
    plan = await HealthPlanRepository(session).plan_of(pregnancy.id)
    if plan is None:
        return []
    return await HealthPlanRepository(session).versions(plan.id)


async def version(session: AsyncSession, pregnancy: Pregnancy, number: int) -> HealthPlanVersion:
    repo = HealthPlanRepository(session)
    plan = await repo.plan_of(pregnancy.id)
    row = await repo.version(plan.id, number) if plan else None
    if row is None:
        raise NotFound(f"Her plan has no version {number}.")
    return row
