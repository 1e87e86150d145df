"""Critical values (危急值) as rules: the escalation tiers, the state of an alert and the
register's indicators. Pure: no ORM, no I/O, tested without a database.

The 2018 core system of medical quality (危急值报告制度) asks that the clinician who receives a
critical value reads it back and confirms it, that its handling is traceable end to end, and
that one register shows it with indicators (unacknowledged rate, median and P90 times). The
tiers' times come from the published targets (REFERENCES.md, "Critical values"): Fei et al.
(Biochem Med 2017;27(3):030707) a 15-minute median target, CAP Q-Probes 15–30 minutes,
CLSI GP47 within one hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum


class Tier(IntEnum):
    """Who must acknowledge now. An alert climbs one tier each time a tier's time runs out."""

    DOCTOR_ON_DUTY = 0
    OBSTETRIC_LEAD = 1
    DUTY_OFFICE = 2  # the hospital's duty office (医务科/总值班): the last tier

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def words(self) -> str:
        return {0: "the doctor on duty", 1: "the obstetric lead", 2: "the hospital's duty office"}[
            self.value
        ]


LAST_TIER = Tier.DUTY_OFFICE

# The worklist audience each tier is listed to (the strings of app.worklist.service).
TIER_AUDIENCE = {
    Tier.DOCTOR_ON_DUTY: "doctor",
    Tier.OBSTETRIC_LEAD: "obstetric_lead",
    Tier.DUTY_OFFICE: "duty_office",
}


class AlertState(StrEnum):
    OPEN = "open"  # nobody clinical has closed it: it escalates
    ACKNOWLEDGED = "acknowledged"  # a doctor read it back and said what was done
    VOIDED = "voided"  # the lab withdrew the report, or it was not this mother's


def state_of(*, acknowledged_at: datetime | None, voided_at: datetime | None) -> AlertState:
    """Voided wins: a closure for the wrong patient or for a withdrawn result stays on the
    register as it happened, but the alert no longer stands."""
    if voided_at is not None:
        return AlertState.VOIDED
    return AlertState.OPEN if acknowledged_at is None else AlertState.ACKNOWLEDGED


@dataclass(frozen=True, slots=True)
class EscalationPlan:
    """How long each tier has before the next one is paged.

    Defaults: 15 minutes for the doctor on duty (Fei et al. 2017: the 15-minute median
    target), 15 more for the obstetric lead (30 minutes in all, the upper end of CAP's
    15–30 minutes), then the duty office, which still has half of CLSI GP47's hour.
    """

    doctor_on_duty: timedelta = timedelta(minutes=15)
    obstetric_lead: timedelta = timedelta(minutes=15)

    def time_for(self, tier: Tier) -> timedelta | None:
        """The time a tier has; None for the last one (it holds the alert until closed)."""
        if tier is Tier.DOCTOR_ON_DUTY:
            return self.doctor_on_duty
        if tier is Tier.OBSTETRIC_LEAD:
            return self.obstetric_lead
        return None


@dataclass(frozen=True, slots=True)
class Step:
    tier: Tier
    due_at: datetime  # when this tier's time runs out (for the last tier: when it was paged)
    overdue_since: datetime


def next_step(*, tier: int, due_at: datetime, now: datetime, plan: EscalationPlan) -> Step | None:
    """One tier up when the current tier's time has run out, never two at once.

    The next tier's time counts from the moment the previous one ran out, not from the
    escalation run: a late run catches up one tier per run, each one listed and recorded,
    instead of granting every tier its full time again behind a stalled worker.
    """
    current = Tier(tier)
    if current is LAST_TIER or now < due_at:
        return None
    up = Tier(current + 1)
    more = plan.time_for(up)
    return Step(tier=up, due_at=due_at + more if more is not None else due_at, overdue_since=due_at)


# The register's indicators ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFacts:
    raised_at: datetime
    acknowledged_at: datetime | None
    voided_at: datetime | None
    tier: int


@dataclass(frozen=True, slots=True)
class Indicators:
    total: int
    open: int
    acknowledged: int
    voided: int
    escalated: int  # reached the obstetric lead or beyond
    open_past_target: int  # open and older than the doctor on duty's time
    acknowledged_within_target: int
    median_minutes_to_acknowledge: float | None
    p90_minutes_to_acknowledge: float | None

    @property
    def unacknowledged_rate(self) -> float | None:
        """Open among the alerts that still stand (voided ones are not in the denominator)."""
        standing = self.total - self.voided
        return round(self.open / standing, 4) if standing else None


def _nearest_rank(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation: a reported time really happened)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def indicators(facts: Sequence[AlertFacts], *, now: datetime, target: timedelta) -> Indicators:
    """The register's counts and times to acknowledgement, from raise to a doctor's closure.
    Voided alerts count apart: their time says nothing about how fast a doctor answered."""
    minutes = sorted(
        (f.acknowledged_at - f.raised_at).total_seconds() / 60
        for f in facts
        if f.acknowledged_at is not None and f.voided_at is None
    )
    states = [state_of(acknowledged_at=f.acknowledged_at, voided_at=f.voided_at) for f in facts]
    return Indicators(
        total=len(facts),
        open=states.count(AlertState.OPEN),
        acknowledged=states.count(AlertState.ACKNOWLEDGED),
        voided=states.count(AlertState.VOIDED),
        escalated=sum(1 for f in facts if f.tier >= Tier.OBSTETRIC_LEAD),
        open_past_target=sum(
            1
            for f, s in zip(facts, states, strict=True)
            if s is AlertState.OPEN and now - f.raised_at > target
        ),
        acknowledged_within_target=sum(1 for m in minutes if m <= target.total_seconds() / 60),
        median_minutes_to_acknowledge=round(_nearest_rank(minutes, 0.5), 1) if minutes else None,
        p90_minutes_to_acknowledge=round(_nearest_rank(minutes, 0.9), 1) if minutes else None,
    )
