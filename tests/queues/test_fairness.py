"""Fair under overload (issue 19): the ageing bound, tested at its threshold.

Once her place has waited QUEUE_AGEING_MINUTES (A), nobody booked after her (a walk-in: who
arrived after her) is called before her, but an urgent mother or a timed draw now due; and a
place she kept while her OGTT ran waits from the end of its last draw, so the test's hours do
not age it (docs/queues.md, "Fair under overload")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.core.settings import Routing
from app.queues.domain import Candidate, sort_key
from app.queues.models import EntryState, ExamStep, QueueEntry, StepState
from app.queues.routing import restart_after_test

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
    station: str = "blood_draw",
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


def test_at_the_ageing_limit_no_later_booking_goes_before_her() -> None:
    """She is not fasting; a mother booked after her is, at the blood draw. A second before
    her place has waited 30 minutes the fasting mother goes first; at 30 minutes, she does."""
    her = waiting(booked=60, since=0, ticket=1)
    later = waiting(booked=90, since=10, ticket=2, fasting=True)
    assert first([her, later], T0 + AGEING - timedelta(seconds=1)) is later
    assert first([her, later], T0 + AGEING) is her


def test_only_an_urgent_mother_or_a_due_draw_goes_before_an_aged_place() -> None:
    her = waiting(booked=60, since=0, ticket=1)
    due = waiting(booked=90, since=25, ticket=3, due=30)
    urgent = waiting(booked=90, since=29, ticket=4, urgent=True)
    assert first([her, due], T0 + AGEING) is due  # a timed draw keeps its window
    assert first([her, urgent], T0 + AGEING) is urgent


def test_a_stream_of_later_fasting_bookings_holds_her_back_for_at_most_the_limit() -> None:
    """Every 5 minutes one room calls; before each call three fasting mothers booked after her
    arrive. They go first until her place has waited 30 minutes; the next call is hers."""
    her = waiting(booked=0, since=0, ticket=1)
    queue = [her]
    called_at = None
    for minute in range(0, 120, 5):
        queue += [
            waiting(booked=minute + 1 + k, since=minute, ticket=10 + minute + k, fasting=True)
            for k in range(3)
        ]
        chosen = first(queue, T0 + timedelta(minutes=minute))
        queue.remove(chosen)
        if chosen is her:
            called_at = minute
            break
    assert called_at == 30


def _step(order: uuid.UUID, offset: int, done: int | None) -> ExamStep:
    return ExamStep(
        order_id=order,
        exam_code="ogtt",
        offset_minutes=offset,
        state=StepState.DONE if done is not None else StepState.PENDING,
        done_at=None if done is None else T0 + timedelta(minutes=done),
    )


def _place(entered: int) -> QueueEntry:
    at = T0 + timedelta(minutes=entered)
    return QueueEntry(
        station_id=uuid.uuid4(), state=EntryState.WAITING, entered_at=at, available_at=at
    )


def test_a_place_kept_through_her_ogtt_waits_from_its_last_draw() -> None:
    """Her scan place from minute 0, her OGTT drawn at 5, 67 and 127 (done 129). While a draw
    is still to come the place is left alone; once the last is done, it waits from 129, so
    her two hours under the test do not put her before those who came meanwhile."""
    order = uuid.uuid4()
    scan = _place(0)
    running = [_step(order, 0, 5), _step(order, 60, 67), _step(order, 120, None)]
    assert restart_after_test([scan], running) == set()
    assert scan.available_at == T0
    over = [_step(order, 0, 5), _step(order, 60, 67), _step(order, 120, 129)]
    assert restart_after_test([scan], over) == {scan.station_id}
    assert scan.available_at == T0 + timedelta(minutes=129)
    later = _place(140)  # a place opened after the test is not touched
    assert restart_after_test([later], over) == set()
    assert later.available_at == T0 + timedelta(minutes=140)
