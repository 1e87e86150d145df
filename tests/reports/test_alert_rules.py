"""The critical-value rules without a database: tiers, states and the register's indicators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.reports.alerts import (
    TIER_AUDIENCE,
    AlertFacts,
    AlertState,
    EscalationPlan,
    Tier,
    indicators,
    next_step,
    state_of,
)
from app.worklist import service as worklist

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
PLAN = EscalationPlan(doctor_on_duty=timedelta(minutes=15), obstetric_lead=timedelta(minutes=15))


def test_each_tier_is_paged_when_the_one_below_runs_out_not_before() -> None:
    due = T0 + timedelta(minutes=15)
    assert next_step(tier=0, due_at=due, now=due - timedelta(seconds=1), plan=PLAN) is None
    step = next_step(tier=0, due_at=due, now=due, plan=PLAN)
    assert step is not None
    assert (step.tier, step.due_at, step.overdue_since) == (
        Tier.OBSTETRIC_LEAD,
        T0 + timedelta(minutes=30),
        due,
    )
    last = next_step(tier=1, due_at=step.due_at, now=step.due_at, plan=PLAN)
    assert last is not None
    assert last.tier is Tier.DUTY_OFFICE
    assert next_step(tier=2, due_at=last.due_at, now=T0 + timedelta(days=1), plan=PLAN) is None


def test_a_late_run_moves_one_tier_and_counts_from_when_the_tier_ran_out() -> None:
    due = T0 + timedelta(minutes=15)
    step = next_step(tier=0, due_at=due, now=T0 + timedelta(hours=2), plan=PLAN)
    assert step is not None
    assert step.tier is Tier.OBSTETRIC_LEAD  # not the duty office at once
    assert step.due_at == T0 + timedelta(minutes=30)  # already past: the next run goes on


def test_the_hospitals_times_are_used() -> None:
    plan = EscalationPlan(doctor_on_duty=timedelta(minutes=10), obstetric_lead=timedelta(minutes=5))
    step = next_step(tier=0, due_at=T0, now=T0, plan=plan)
    assert step is not None
    assert step.due_at == T0 + timedelta(minutes=5)


def test_tiers_list_to_audiences_the_worklist_knows() -> None:
    assert set(TIER_AUDIENCE.values()) <= set(worklist.AUDIENCES)
    assert TIER_AUDIENCE[Tier.DOCTOR_ON_DUTY] == worklist.DOCTOR
    assert [t.label for t in Tier] == ["doctor_on_duty", "obstetric_lead", "duty_office"]


def test_a_voided_alert_is_void_even_when_it_was_closed() -> None:
    assert state_of(acknowledged_at=None, voided_at=None) is AlertState.OPEN
    assert state_of(acknowledged_at=T0, voided_at=None) is AlertState.ACKNOWLEDGED
    assert state_of(acknowledged_at=T0, voided_at=T0) is AlertState.VOIDED


def _facts(minutes_to_close: int | None, *, voided: bool = False, tier: int = 0) -> AlertFacts:
    closed = None if minutes_to_close is None else T0 + timedelta(minutes=minutes_to_close)
    return AlertFacts(
        raised_at=T0, acknowledged_at=closed, voided_at=T0 if voided else None, tier=tier
    )


def test_indicators_by_nearest_rank_without_the_voided() -> None:
    facts = [_facts(m) for m in (3, 5, 8, 12, 14, 16, 20, 25, 40, 90)]
    facts += [_facts(None, tier=2), _facts(1, voided=True)]
    found = indicators(facts, now=T0 + timedelta(minutes=20), target=timedelta(minutes=15))
    assert (found.total, found.open, found.acknowledged, found.voided) == (12, 1, 10, 1)
    assert (found.median_minutes_to_acknowledge, found.p90_minutes_to_acknowledge) == (14, 40)
    assert found.acknowledged_within_target == 5  # 3, 5, 8, 12, 14
    assert (found.escalated, found.open_past_target) == (1, 1)
    assert found.unacknowledged_rate == round(1 / 11, 4)


def test_no_alerts_no_times() -> None:
    found = indicators([], now=T0, target=timedelta(minutes=15))
    assert found.median_minutes_to_acknowledge is None
    assert found.unacknowledged_rate is None
