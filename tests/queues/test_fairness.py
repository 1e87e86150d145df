"""Fair under overload (issue 19): once her place has waited QUEUE_AGEING_MINUTES, nobody whose
wait there began after hers is called before her, but an urgent mother or a timed draw now due.
Tested at the threshold: a second before it the booked time still decides, at it no longer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.core.settings import Routing
from app.queues.domain import Candidate, sort_key

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
AGEING = timedelta(minutes=30)


def waiting(
    *,
    booked: int,
    since: int,
    ticket: int,
    fasting: bool = False,
    urgent: bool = False,
    due: int | None = None,
    station: str = "ultrasound",
) -> Candidate:
    """A place booked ``booked`` minutes after T0 and waiting since minute ``since``."""
    return Candidate(
        id=uuid.uuid4(),
        ticket_number=ticket,
        ref_time=T0 + timedelta(minutes=booked),
        entered_at=T0 + timedelta(minutes=since),
        available_at=T0 + timedelta(minutes=since if due is None else due - 5),
        due_at=None if due is None else T0 + timedelta(minutes=due),
        urgent=urgent,
        fasting=fasting,
        station_type=station,
    )


def first(cands: list[Candidate], now: datetime) -> Candidate:
    return min(cands, key=lambda c: sort_key(c, now=now, routing=Routing.PARALLEL, ageing=AGEING))


def test_an_aged_place_is_not_passed_by_a_later_one_booked_earlier() -> None:
    """She came at 0 for a 60-minute booking (a walk-in, early); the other joined at 10 with a
    booking at 0. Until her place has waited 30 minutes the booked time decides; from then on
    she goes first, though the other has aged too (the longest waiting first)."""
    her = waiting(booked=60, since=0, ticket=1)
    other = waiting(booked=0, since=10, ticket=2)
    assert first([her, other], T0 + AGEING - timedelta(seconds=1)) is other
    assert first([her, other], T0 + AGEING) is her
    assert first([her, other], T0 + AGEING + timedelta(minutes=10)) is her  # both aged


def test_an_aged_place_goes_before_the_fasting_tier_but_not_before_a_due_draw() -> None:
    her = waiting(booked=60, since=0, ticket=1, station="blood_draw")
    fasting = waiting(booked=0, since=20, ticket=2, fasting=True, station="blood_draw")
    due = waiting(booked=90, since=25, ticket=3, due=30, station="blood_draw")
    urgent = waiting(booked=90, since=29, ticket=4, urgent=True, station="blood_draw")
    just_before = T0 + AGEING - timedelta(seconds=1)
    assert first([her, fasting], just_before) is fasting
    assert first([her, fasting], T0 + AGEING) is her
    assert first([her, fasting, due], T0 + AGEING) is due  # a timed draw keeps its window
    assert first([her, fasting, urgent], T0 + AGEING) is urgent


def test_the_bound_holds_for_a_queue_of_later_arrivals() -> None:
    """Every minute a later arrival booked earlier joins the queue; one room calls one mother
    every 15 minutes. From the moment her place has aged she is the next one called."""
    her = waiting(booked=120, since=0, ticket=1)
    queue = [her]
    called_at = None
    for minute in range(0, 120, 15):
        now = T0 + timedelta(minutes=minute)
        queue += [
            waiting(booked=minute - 60 + k, since=minute, ticket=100 + minute + k)
            for k in range(15)
        ]
        chosen = first(queue, now)
        queue.remove(chosen)
        if chosen is her:
            called_at = minute
            break
    assert called_at == 30  # the first call at or after her 30 minutes
