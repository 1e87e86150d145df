"""An undone finish takes back what it taught the learned service time (issue 19, undo): a
mis-tapped finish seconds after the start would otherwise pull the exam's learned minutes
(and with them every wait forecast and the booking's capacity) toward half a minute. The
sample comes out exactly, though other finishes of the same exam were learned since."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.queues.models import ExamType, QueueEntry
from app.queues.operations import EWMA_ALPHA, unlearned
from tests.helpers.api import Api
from tests.helpers.queues import arrive, call, entry_station_auth, op
from tests.helpers.visits import TODAY, open_session

A = EWMA_ALPHA


def ewma(samples: list[float], start: float | None = None) -> float | None:
    """The learned mean as the finishes build it (the first sample starts it)."""
    mean = start
    for x in samples:
        mean = x if mean is None else A * x + (1 - A) * mean
    return mean


def test_a_sample_with_none_since_leaves_the_mean_as_before_it() -> None:
    after = ewma([0.5], start=12.0)
    assert after is not None
    assert unlearned(after, 11, minutes=0.5, mean_after=after, sample=11) == pytest.approx(12.0)


def test_a_sample_with_others_since_leaves_what_they_alone_would_have_made() -> None:
    after = ewma([0.5], start=12.0)
    now = ewma([14.0, 9.0, 11.0], start=after)
    assert after is not None
    assert now is not None
    without = unlearned(now, 13, minutes=0.5, mean_after=after, sample=10)
    assert without == pytest.approx(ewma([14.0, 9.0, 11.0], start=12.0))


def test_the_only_sample_leaves_no_mean() -> None:
    assert unlearned(0.5, 1, minutes=0.5, mean_after=0.5, sample=1) is None


def test_the_first_sample_with_others_since_leaves_their_weighted_mean() -> None:
    now = ewma([0.5, 14.0, 9.0])
    assert now is not None
    without = unlearned(now, 3, minutes=0.5, mean_after=0.5, sample=1)
    weights = (A * (1 - A), A)  # as the EWMA weighs 14 then 9
    assert without == pytest.approx((weights[0] * 14.0 + weights[1] * 9.0) / sum(weights))
    assert 9.0 < (without or 0) < 14.0


def test_a_sample_later_than_those_learned_is_an_error() -> None:
    with pytest.raises(ValueError, match="later"):
        unlearned(8.0, 2, minutes=1.0, mean_after=8.0, sample=3)


async def _exam_type(factory: async_sessionmaker[AsyncSession], code: str) -> ExamType:
    async with factory() as session:
        row = await session.scalar(select(ExamType).where(ExamType.code == code))
        assert row is not None
        return row


async def _entry(factory: async_sessionmaker[AsyncSession], entry_id: str) -> QueueEntry:
    async with factory() as session:
        row = await session.get(QueueEntry, uuid.UUID(entry_id))
        assert row is not None
        return row


async def _started(api: Api, room: int) -> str:
    called = (await call(api, "LAB", room))["called"]
    assert called is not None
    entry_id: str = called["entry"]["id"]
    assert (await op(api, entry_id, "start")).status_code == 200
    return entry_id


async def test_an_undone_finish_takes_its_sample_out_of_the_learned_minutes(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    for serial in ("301", "302", "303"):
        await arrive(api, serial=serial)
    # A real draw of 8 minutes in room 1.
    first = await _started(api, 1)
    clock.advance(timedelta(minutes=8))
    assert (await op(api, first, "finish")).status_code == 200
    lead = (await _entry(session_factory, first)).taught_exam
    assert lead is not None
    before = await _exam_type(session_factory, lead)
    assert before.learned_service_minutes is not None
    # Room 2 starts one; room 1 starts the next, and taps "finish" 10 seconds in (a mis-tap).
    other = await _started(api, 2)
    clock.advance(timedelta(minutes=4))
    mistapped = await _started(api, 1)
    clock.advance(timedelta(seconds=10))
    assert (await op(api, mistapped, "finish")).status_code == 200
    taught = await _entry(session_factory, mistapped)
    assert (taught.taught_exam, taught.taught_minutes) == (lead, 0.5)  # at least half a minute
    # Room 2's draw ends at 5 minutes: learned after the mis-tap.
    clock.advance(timedelta(seconds=50))
    assert (await op(api, other, "finish")).status_code == 200
    if (await _entry(session_factory, other)).taught_exam != lead:
        pytest.fail("the two draws taught different exam types")
    pulled = await _exam_type(session_factory, lead)
    assert pulled.learned_samples == before.learned_samples + 2
    # Room 1 undoes its finish: the mean is as if only the 8 and the 5 had been learned.
    undone = await api.client.post(
        f"/v1/queue-entries/{mistapped}/undo",
        headers=entry_station_auth(api, mistapped),
        json={"action": "finish"},
    )
    assert undone.status_code == 200, undone.text
    after = await _exam_type(session_factory, lead)
    assert after.learned_samples == before.learned_samples + 1
    expected = ewma([5.0], start=before.learned_service_minutes)
    assert after.learned_service_minutes == pytest.approx(expected)
    assert not math.isclose(after.learned_service_minutes or 0, pulled.learned_service_minutes or 0)
    cleared = await _entry(session_factory, mistapped)
    assert (cleared.taught_exam, cleared.taught_minutes, cleared.taught_sample) == (None,) * 3
    # Finished again when it is really done, 4 minutes after its start: that is learned.
    clock.advance(timedelta(minutes=3))
    assert (await op(api, mistapped, "finish")).status_code == 200
    again = await _exam_type(session_factory, lead)
    assert again.learned_samples == before.learned_samples + 2
    assert (await _entry(session_factory, mistapped)).taught_minutes == pytest.approx(4.0)
