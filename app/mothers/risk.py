"""Setting a pregnancy's risk grade by the NHFPC 2017 rules, and what comes with it. Flushes only.

A grade set or raised brings the tasks of a managed case (专案管理) onto the worklists in the
same transaction: red → referral to the designated centre, orange/red → the district report,
purple → infection control and PMTCT. Her age on the day raises the grade to its floor,
recorded as the system's decision with the rule and its source. Every visit asks a doctor to
re-assess (prompt_reassessment); a doctor's assessment closes that prompt. A managed case who
misses a visit is traced (trace_missed_visit).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments.repository import AssignmentRepository
from app.assignments.service import flag_if_rules_break
from app.butlers.repository import ButlerRepository
from app.core.settings import get_settings
from app.feed.changes import touch_mother
from app.mothers.domain import Risk, RiskDecision
from app.mothers.grading import SYSTEM, RiskRules, apply_age_floor, risk_rules
from app.mothers.models import Mother, Pregnancy, RiskGradeChange
from app.mothers.repository import MotherRepository
from app.visits.models import Visit
from app.worklist import service as worklist

REASON_LIMIT = 500


def default_rules() -> RiskRules:
    """The rules the clinic runs: RISK_RULES_FILE, or the built-in NHFPC 2017 file."""
    return risk_rules(get_settings().risk_rules_file)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who decides: a person (name, role, id) or the system applying a rule."""

    name: str
    role: str | None = None
    id: uuid.UUID | None = None


SYSTEM_ACTOR = Actor(name=SYSTEM, role=SYSTEM)


@dataclass(slots=True)
class RiskChange:
    before: Risk | None
    after: Risk
    rows: list[RiskGradeChange] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _row(
    pregnancy: Pregnancy,
    before: Risk | None,
    after: Risk,
    *,
    decision: RiskDecision,
    reason: str,
    actor: Actor,
    now: datetime,
    factors: list[str] | None = None,
) -> RiskGradeChange:
    return RiskGradeChange(
        pregnancy_id=pregnancy.id,
        from_grade=before.grade if before else None,
        to_grade=after.grade,
        from_purple=before.purple if before else None,
        to_purple=after.purple,
        decision=decision,
        factors=factors,
        reason=reason[:REASON_LIMIT],
        changed_by_id=actor.id,
        changed_by_name=actor.name,
        changed_by_role=actor.role,
        changed_at=now,
    )


async def set_risk(
    session: AsyncSession,
    *,
    mother: Mother,
    pregnancy: Pregnancy,
    risk: Risk,
    decision: RiskDecision,
    reason: str,
    actor: Actor,
    today: date,
    now: datetime,
    rules: RiskRules,
    factors: list[str] | None = None,
    initial: bool = False,
) -> RiskChange:
    """Record the decision as made, then let the age floor raise it (as the system's own
    decision), set her grade and open the tasks a raised grade calls for."""
    before = None if initial else pregnancy.risk
    change = RiskChange(before=before, after=risk)
    if initial or risk != before or decision is RiskDecision.CONFIRMED:
        change.rows.append(
            _row(
                pregnancy,
                before,
                risk,
                decision=decision,
                reason=reason,
                actor=actor,
                now=now,
                factors=factors,
            )
        )
    floored = apply_age_floor(rules, risk.grade, born=mother.date_of_birth, on=today)
    final = Risk(floored.grade, risk.purple)
    if floored.floor is not None:
        note = floored.reason(rules, risk.grade)
        change.rows.append(
            _row(
                pregnancy,
                risk,
                final,
                decision=RiskDecision.RULE,
                reason=note,
                actor=SYSTEM_ACTOR,
                now=now,
            )
        )
        change.notes.append(note)
    change.after = final
    pregnancy.risk_grade, pregnancy.purple = final.grade, final.purple
    session.add_all(change.rows)
    for task in rules.new_tasks(before, final):
        await worklist.add(
            session,
            audiences=task.audiences,
            kind=task.kind,
            title=task.title,
            now=now,
            priority=task.priority,
            mother_id=mother.id,
        )
        change.tasks.append(task.kind)
        change.notes.append(f"{task.kind}: {task.title} ({task.source})")
    if change.changed and before is not None:
        await _check_her_butler(session, mother, final, now)
    await session.flush()
    return change


async def _check_her_butler(
    session: AsyncSession, mother: Mother, risk: Risk, now: datetime
) -> None:
    current = await AssignmentRepository(session).active_primary(mother.id)
    await flag_if_rules_break(
        current,
        await ButlerRepository(session).get(current.butler_id) if current else None,
        grade=risk.grade,
        purple=risk.purple,
        now=now,
        session=session,
    )


async def close_prompts(
    session: AsyncSession,
    *,
    mother_id: uuid.UUID,
    by: str,
    note: str,
    now: datetime,
    rules: RiskRules,
) -> int:
    """A doctor confirmed or changed her grade: the open re-assessment prompts are done."""
    items = await MotherRepository(session).open_worklist_items(mother_id, (rules.reassess_task,))
    for item in items:
        await worklist.acknowledge(session, item, by=by, note=note[:1000], now=now)
    return len(items)


async def prompt_reassessment(
    session: AsyncSession,
    *,
    pregnancy: Pregnancy,
    visit: Visit,
    now: datetime,
    rules: RiskRules | None = None,
) -> None:
    """At every visit: a doctor is asked to re-assess her grade (NHFPC 2017 dynamic assessment),
    and her age on the visit day is checked against the floors (the system raises the grade)."""
    rules = rules or default_rules()
    repo = MotherRepository(session)
    mother = await repo.get(pregnancy.mother_id)
    if mother is None:
        return
    floored = apply_age_floor(
        rules, pregnancy.risk.grade, born=mother.date_of_birth, on=visit.visit_date
    )
    if floored.floor is not None:
        await set_risk(
            session,
            mother=mother,
            pregnancy=pregnancy,
            risk=Risk(floored.grade, pregnancy.risk.purple),
            decision=RiskDecision.RULE,
            reason=floored.reason(rules, pregnancy.risk.grade),
            actor=SYSTEM_ACTOR,
            today=visit.visit_date,
            now=now,
            rules=rules,
        )
        mother.version += 1
        mother.updated_at = now
        await touch_mother(
            session,
            mother.id,
            kind="mother.changed",
            now=now,
            today=visit.visit_date,
            ref_type="mother",
            ref_id=mother.id,
        )
    task = rules.tasks[rules.reassess_task]
    await worklist.add(
        session,
        audiences=task.audiences,
        kind=task.kind,
        title=task.title,
        now=now,
        priority=task.priority,
        mother_id=pregnancy.mother_id,
        visit_id=visit.id,
    )


async def trace_missed_visit(
    session: AsyncSession, *, visit: Visit, now: datetime, rules: RiskRules | None = None
) -> None:
    """A managed case (orange, red or purple) who missed her visit is traced (追踪)."""
    rules = rules or default_rules()
    pregnancy = await MotherRepository(session).pregnancy(visit.pregnancy_id)
    if pregnancy is None or not rules.is_managed_case(pregnancy.risk):
        return
    task = rules.tasks[rules.trace_task]
    await worklist.add(
        session,
        audiences=task.audiences,
        kind=task.kind,
        title=task.title,
        now=now,
        priority=task.priority,
        mother_id=visit.mother_id,
        visit_id=visit.id,
    )
