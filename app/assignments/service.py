"""Assigning, reassigning and releasing butlers; cover for visits. Services flush; never commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments import domain
from app.assignments.domain import Candidate, Decision, Escort, Exclusion, NoButlerFits
from app.assignments.models import AssignmentRole, ButlerLeave, CareAssignment
from app.assignments.repository import AssignmentRepository
from app.assignments.schemas import AccompanyingToday, AssignmentDecision, ExclusionPublic
from app.butlers.models import Butler
from app.core.errors import Conflict, NotFound
from app.core.principal import Principal
from app.feed.changes import touch
from app.feed.models import Task
from app.mothers.domain import RiskGrade
from app.mothers.models import Mother, Pregnancy
from app.notifications.outbox import enqueue, notify_butler
from app.visits.models import Visit
from app.visits.repository import VisitRepository
from app.worklist import service as worklist


class NoButlerAvailable(Conflict):
    slug = "no-butler-available"
    title = "No butler fits the assignment rules"


class ButlerDoesNotFit(Conflict):
    slug = "butler-does-not-fit"
    title = "The chosen butler breaks an assignment rule"


def _exclusions(exclusions: Sequence[Exclusion]) -> list[dict[str, str]]:
    return [
        {"butler_id": str(e.butler_id), "name": e.name, "rule": e.rule.value, "detail": e.detail}
        for e in exclusions
    ]


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the rules read: risk weights, visit length, the clinic's time zone."""

    weights: Mapping[RiskGrade, int]
    visit_minutes: int
    tz: ZoneInfo


# Primary butler ----------------------------------------------------------------------------


def _candidates(
    butlers: Sequence[Butler], loads: Mapping[uuid.UUID, int], rostered: set[uuid.UUID]
) -> list[Candidate]:
    return [
        Candidate(
            butler_id=b.id,
            name=b.display_name,
            active=b.is_active,
            on_roster=b.id in rostered,
            skills=frozenset(b.skills),
            languages=tuple(b.languages),
            capacity=b.max_caseload,
            load=loads.get(b.id, 0),
        )
        for b in butlers
    ]


async def assign_primary(
    repo: AssignmentRepository,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    requested: uuid.UUID | None,
    reason: str,
    actor: Principal,
    now: datetime,
    policy: Policy,
) -> Decision:
    """Choose (or check the front desk's choice of) her primary butler and open the period.

    Every butler row is locked first, so concurrent assignments are decided one after another
    and nobody ends above capacity.
    """
    butlers = await repo.lock_butlers()
    current = await repo.active_primary(mother.id, for_update=True)
    loads = await repo.loads(policy.weights)
    grade, purple = RiskGrade(pregnancy.risk_grade), bool(pregnancy.purple)
    if current is not None:  # her own weight must not count against a move to someone else
        grade_weight = domain.weight_of(policy.weights, grade, purple=purple)
        loads[current.butler_id] = loads.get(current.butler_id, 0) - grade_weight
    candidates = _candidates(butlers, loads, await repo.rostered())
    if requested is not None:
        chosen = next((c for c in candidates if c.butler_id == requested), None)
        if chosen is None:
            raise NotFound("No butler with that id.")
        exclusion = domain.primary_exclusion(
            chosen, grade=grade, weights=policy.weights, purple=purple
        )
        if exclusion is not None:
            raise ButlerDoesNotFit(
                f"{chosen.name}: {exclusion.detail}.",
                extra={"exclusions": _exclusions([exclusion])},
            )
        weight = domain.weight_of(policy.weights, grade, purple=purple)
        decision = Decision(
            butler_id=chosen.butler_id,
            name=chosen.name,
            reasons=["chosen by the front desk; the rules were checked and hold"],
            load_before=chosen.load,
            load_after=chosen.load + weight,
            capacity=chosen.capacity,
        )
    else:
        try:
            decision = domain.choose_primary(
                candidates,
                grade=grade,
                language=mother.language,
                weights=policy.weights,
                exclude=[current.butler_id] if current is not None else [],
                purple=purple,
            )
        except NoButlerFits as failed:
            raise NoButlerAvailable(
                "No butler can take her: "
                + "; ".join(f"{e.name}: {e.detail}" for e in failed.exclusions)
                if failed.exclusions
                else "No butlers are registered.",
                extra={"exclusions": _exclusions(failed.exclusions)},
            ) from failed
    if current is not None and current.butler_id == decision.butler_id:
        raise Conflict(f"{decision.name} is already her primary butler.")
    await _open_primary(
        repo,
        mother=mother,
        butler_id=decision.butler_id,
        current=current,
        reason=reason,
        actor=actor,
        now=now,
    )
    return decision


async def _open_primary(
    repo: AssignmentRepository,
    *,
    mother: Mother,
    butler_id: uuid.UUID,
    current: CareAssignment | None,
    reason: str,
    actor: Principal,
    now: datetime,
) -> None:
    if current is not None:
        current.ends_at = now
        current.ended_reason = reason
        await notify_butler(
            repo.session,
            topic="assignment.primary_ended",
            now=now,
            butler_id=current.butler_id,
            mother_id=mother.id,
            payload={"mother_id": mother.id},
        )
        await repo.session.flush()  # the partial unique index sees the old period closed
    repo.session.add(
        CareAssignment(
            mother_id=mother.id,
            butler_id=butler_id,
            role=AssignmentRole.PRIMARY,
            starts_at=now,
            reason=reason,
            assigned_by_name=actor.name,
        )
    )
    mother.primary_butler_id = butler_id
    # Her open tasks move with her: a former primary keeps nothing of hers.
    await repo.session.execute(
        update(Task)
        .where(Task.mother_id == mother.id, Task.completed_at.is_(None))
        .values(butler_id=butler_id)
    )
    await notify_butler(
        repo.session,
        topic="assignment.primary",
        now=now,
        butler_id=butler_id,
        mother_id=mother.id,
        payload={"mother_id": mother.id},
    )
    try:
        await repo.session.flush()
    except IntegrityError as exc:  # another request opened a period at the same moment
        raise Conflict("Her primary butler was changed at the same moment; read again.") from exc


async def flag_if_rules_break(
    assignment: CareAssignment | None,
    butler: Butler | None,
    *,
    grade: RiskGrade,
    now: datetime,
    session: Any,
    purple: bool = False,
) -> str | None:
    """After a risk-grade change: flag her for reassignment when her butler lacks a skill."""
    if assignment is None or butler is None:
        return None
    missing = domain.required_skills(grade, purple=purple) - set(butler.skills)
    if not missing:
        assignment.flagged_reason = None
        return None
    risk = f"{grade.value} + purple" if purple else grade.value
    reason = f"{risk} risk needs {', '.join(sorted(missing))}; {butler.display_name} lacks it"
    assignment.flagged_reason = reason
    await enqueue(
        session,
        topic="assignment.needs_reassignment",
        now=now,
        mother_id=assignment.mother_id,
        payload={"mother_id": assignment.mother_id, "butler_id": assignment.butler_id},
    )
    return reason


# Releasing a butler (leaving, long leave) -------------------------------------------------


async def release_butler(
    repo: AssignmentRepository,
    *,
    butler_id: uuid.UUID,
    reason: str,
    dry_run: bool,
    actor: Principal,
    now: datetime,
    policy: Policy,
) -> tuple[list[domain.Move], dict[uuid.UUID, Mother]]:
    """Move only this butler's mothers to others by the primary rules; dry_run changes nothing."""
    butlers = await repo.lock_butlers()
    if not any(b.id == butler_id for b in butlers):
        raise NotFound("No butler with that id.")
    mothers = await repo.primary_mothers(butler_id)
    candidates = _candidates(butlers, await repo.loads(policy.weights), await repo.rostered())
    moves = domain.plan_release(
        butler_id,
        [
            domain.MotherLoad(m.id, RiskGrade(p.risk_grade), m.language, bool(p.purple))
            for m, p in mothers
        ],
        candidates,
        weights=policy.weights,
    )
    by_id = {m.id: m for m, _ in mothers}
    if dry_run:
        return moves, by_id
    for move in moves:
        if move.decision is None:
            continue
        mother = by_id[move.mother_id]
        current = await repo.active_primary(mother.id, for_update=True)
        await _open_primary(
            repo,
            mother=mother,
            butler_id=move.decision.butler_id,
            current=current,
            reason=reason,
            actor=actor,
            now=now,
        )
        mother.version += 1
        mother.updated_at = now
    return moves, by_id


async def add_leave(
    repo: AssignmentRepository,
    *,
    butler_id: uuid.UUID,
    starts_on: date,
    ends_on: date,
    reason: str,
    now: datetime,
) -> ButlerLeave:
    leave = ButlerLeave(
        butler_id=butler_id, starts_on=starts_on, ends_on=ends_on, reason=reason, created_at=now
    )
    repo.session.add(leave)
    await repo.session.flush()
    return leave


# Who accompanies her on a visit --------------------------------------------------------


def _on_duty(shifts: Sequence[Any], start: datetime, tz: ZoneInfo) -> bool:
    local = start.astimezone(tz).time()
    return any(s.starts_at <= local < s.ends_at for s in shifts)


async def choose_escort(
    repo: AssignmentRepository,
    *,
    visit: Visit,
    mother: Mother,
    pregnancy: Pregnancy,
    policy: Policy,
    exclude: frozenset[uuid.UUID] = frozenset(),
) -> Escort:
    day = visit.visit_date
    start = visit.scheduled_at
    end = start + timedelta(minutes=policy.visit_minutes)
    shifts = await repo.shifts_on(day.weekday())
    away = await repo.on_leave(day)
    busy: set[uuid.UUID] = set()
    for other in await repo.escorted_visits(day):
        if other.id == visit.id or other.accompanying_butler_id is None:
            continue
        other_end = other.scheduled_at + timedelta(minutes=policy.visit_minutes)
        if other.scheduled_at < end and start < other_end:
            busy.add(other.accompanying_butler_id)
    day_counts = await repo.visits_today(day)
    candidates = [
        Candidate(
            butler_id=b.id,
            name=b.display_name,
            active=b.is_active,
            on_roster=b.id in shifts,
            skills=frozenset(b.skills),
            languages=tuple(b.languages),
            capacity=b.max_caseload,
            on_duty=b.id not in away and _on_duty(shifts.get(b.id, []), start, policy.tz),
            busy=b.id in busy,
            day_visits=day_counts.get(b.id, 0) - (1 if visit.accompanying_butler_id == b.id else 0),
        )
        for b in await repo.butlers()
    ]
    candidates = [c for c in candidates if c.butler_id not in exclude]
    primary = next((c for c in candidates if c.butler_id == mother.primary_butler_id), None)
    return domain.choose_accompanying(
        primary,
        candidates,
        grade=RiskGrade(pregnancy.risk_grade),
        language=mother.language,
        purple=bool(pregnancy.purple),
    )


async def arrange_escort(
    repo: AssignmentRepository,
    *,
    visit: Visit,
    mother: Mother,
    pregnancy: Pregnancy,
    actor: Principal,
    now: datetime,
    policy: Policy,
    exclude: frozenset[uuid.UUID] = frozenset(),
) -> Escort | None:
    """Set who accompanies her on this visit; a change of cover tells everyone concerned.

    When nobody is on duty and free, the visit keeps no escort and the front desk is told
    (topic visit.unaccompanied): a visit is never refused for want of a butler.
    """
    try:
        escort: Escort | None = await choose_escort(
            repo, visit=visit, mother=mother, pregnancy=pregnancy, policy=policy, exclude=exclude
        )
    except NoButlerFits:
        escort = None
    before = visit.accompanying_butler_id
    new_id = escort.butler_id if escort else None
    cover = await repo.active_cover(visit.id)
    if cover is not None and (
        escort is None
        or not escort.is_cover
        or cover.butler_id != new_id
        or cover.valid_on != visit.visit_date  # moved to another day: access moves with it
    ):
        cover.ends_at = now
        cover.ended_reason = "cover no longer needed" if escort else "no butler available"
        await notify_butler(
            repo.session,
            topic="assignment.cover_ended",
            now=now,
            butler_id=cover.butler_id,
            mother_id=mother.id,
            payload={"visit_id": visit.id},
        )
        await repo.session.flush()
        cover = None
    if escort is not None and escort.is_cover and cover is None:
        repo.session.add(
            CareAssignment(
                mother_id=mother.id,
                butler_id=escort.butler_id,
                role=AssignmentRole.COVER,
                visit_id=visit.id,
                valid_on=visit.visit_date,
                starts_at=now,
                reason="; ".join(escort.reasons),
                assigned_by_name=actor.name,
            )
        )
        for butler_id, topic in (
            (escort.butler_id, "assignment.cover"),
            (mother.primary_butler_id, "assignment.cover_for_your_mother"),
        ):
            if butler_id is not None:
                await notify_butler(
                    repo.session,
                    topic=topic,
                    now=now,
                    butler_id=butler_id,
                    mother_id=mother.id,
                    payload={"visit_id": visit.id, "cover_butler_id": escort.butler_id},
                )
    if (escort is None and before is not None) or (escort is None and cover is None):
        await worklist.add(
            repo.session,
            audiences=[worklist.FRONT_DESK],
            kind="visit.unaccompanied",
            title="No butler is free to accompany this visit: find one or accompany her",
            now=now,
            mother_id=mother.id,
            visit_id=visit.id,
        )
    visit.accompanying_butler_id = new_id
    if before != new_id:  # the visit leaves one phone's list and joins another's
        for butler_id in {before, new_id} - {None}:
            assert butler_id is not None
            await touch(
                repo.session,
                butler_id,
                kind="visit.escort",
                now=now,
                ref_type="visit",
                ref_id=visit.id,
            )
    await repo.session.flush()
    return escort


async def end_cover(
    repo: AssignmentRepository, *, visit: Visit, reason: str, now: datetime
) -> None:
    cover = await repo.active_cover(visit.id)
    if cover is not None:
        cover.ends_at = now
        cover.ended_reason = reason
        await repo.session.flush()


def decision_view(decision: Decision) -> AssignmentDecision:
    return AssignmentDecision(
        butler_id=decision.butler_id,
        name=decision.name,
        reasons=decision.reasons,
        load_before=decision.load_before,
        load_after=decision.load_after,
        capacity=decision.capacity,
        excluded=[ExclusionPublic(**e) for e in _exclusions(decision.exclusions)],
    )


async def accompanying_today(
    session: AsyncSession, mother: Mother, today: date
) -> AccompanyingToday | None:
    """Who is at her side at today's visit, if she has one."""
    visit = await VisitRepository(session).active_visit_on(mother.id, today)
    if visit is None:
        return None
    cover = await AssignmentRepository(session).active_cover(visit.id)
    return AccompanyingToday(
        visit_id=visit.id,
        butler_id=visit.accompanying_butler_id,
        is_cover=cover is not None and cover.butler_id == visit.accompanying_butler_id,
    )


async def rearrange_escorts(
    repo: AssignmentRepository,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    from_day: date,
    actor: Principal,
    now: datetime,
    policy: Policy,
) -> None:
    """After her primary butler changes, decide again who accompanies her coming visits."""
    for visit in await repo.future_visits(mother.id, from_day):
        await arrange_escort(
            repo,
            visit=visit,
            mother=mother,
            pregnancy=pregnancy,
            actor=actor,
            now=now,
            policy=policy,
        )


async def answer_cover(
    repo: AssignmentRepository,
    *,
    visit: Visit,
    butler_id: uuid.UUID,
    accept: bool,
    reason: str | None,
    actor: Principal,
    now: datetime,
    policy: Policy,
) -> Escort | None:
    """The cover butler accepts, or declines and the rules find someone else (or the desk)."""
    cover = await repo.active_cover(visit.id)
    if cover is None or cover.butler_id != butler_id:
        raise NotFound("You are not the cover for that visit.")
    if accept:
        if cover.accepted_at is None:
            cover.accepted_at = now
            await touch(
                repo.session,
                butler_id,
                kind="assignment.cover_accepted",
                now=now,
                ref_type="visit",
                ref_id=visit.id,
            )
        return None
    mother = await repo.session.get(Mother, visit.mother_id)
    pregnancy = await repo.session.get(Pregnancy, visit.pregnancy_id)
    assert mother is not None
    assert pregnancy is not None
    cover.ends_at, cover.ended_reason = (
        now,
        f"declined by the cover butler: {reason or 'no reason'}",
    )
    await repo.session.flush()
    return await arrange_escort(
        repo,
        visit=visit,
        mother=mother,
        pregnancy=pregnancy,
        actor=actor,
        now=now,
        policy=policy,
        exclude=frozenset({butler_id}),
    )
