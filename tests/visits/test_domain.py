"""The visit rules on plain values: the status machine, session slots and clinic times. No
database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.visits.domain import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    IllegalTransitionError,
    SessionShape,
    VisitStatus,
    check_transition,
    first_free_slot,
    local_datetime,
)

S = VisitStatus
SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY = date(2026, 12, 1)
ALLOWED = {
    (S.BOOKED, S.CHECKED_IN),
    (S.BOOKED, S.CANCELLED),
    (S.BOOKED, S.NO_SHOW),
    (S.CHECKED_IN, S.IN_PROGRESS),
    (S.CHECKED_IN, S.COMPLETED),  # she may finish without a separate start
    (S.CHECKED_IN, S.CANCELLED),  # or leave before any exam
    (S.IN_PROGRESS, S.COMPLETED),
}


def morning(starts: time = time(8), ends: time = time(12), per_hour: int = 8) -> SessionShape:
    return SessionShape(session_date=TUESDAY, starts_at=starts, ends_at=ends, per_hour=per_hour)


# The status machine ----------------------------------------------------------------------


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("requested", list(S))
def test_each_status_change_is_allowed_exactly_when_listed(
    current: VisitStatus, requested: VisitStatus
) -> None:
    if (current, requested) in ALLOWED:
        check_transition(current, requested)
        return
    with pytest.raises(IllegalTransitionError) as refused:
        check_transition(current, requested)
    assert (refused.value.current, refused.value.requested) == (current, requested)
    assert str(refused.value) == f"a {current.value} visit cannot become {requested.value}"


def test_a_visit_is_active_or_terminal_and_only_active_ones_move() -> None:
    assert set(S) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL
    assert set(TRANSITIONS) == set(S)
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    for status in ACTIVE:
        assert TRANSITIONS[status]


def test_no_status_goes_back_to_booked_or_to_itself() -> None:
    for current, targets in TRANSITIONS.items():
        assert S.BOOKED not in targets
        assert current not in targets


def test_a_no_show_is_only_for_a_mother_who_never_came() -> None:
    assert [s for s, targets in TRANSITIONS.items() if S.NO_SHOW in targets] == [S.BOOKED]


def test_the_statuses_keep_their_api_values() -> None:
    assert [s.value for s in S] == [
        "booked",
        "checked_in",
        "in_progress",
        "completed",
        "cancelled",
        "no_show",
    ]


# Session slots ---------------------------------------------------------------------------


def test_a_session_has_one_slot_per_started_hour() -> None:
    assert morning().slots() == [time(8), time(9), time(10), time(11)]
    assert morning().capacity == 32
    # A session that closes at half past still starts a slot in its last part-hour.
    assert morning(ends=time(9, 30)).slots() == [time(8), time(9)]
    assert morning(starts=time(8, 30), ends=time(10)).slots() == [time(8, 30), time(9, 30)]


def test_an_empty_session_has_no_slot_and_no_capacity() -> None:
    shut = morning(starts=time(9), ends=time(9))
    assert shut.slots() == []
    assert shut.capacity == 0
    assert first_free_slot(shut, {}) is None


@pytest.mark.parametrize(
    ("at", "slot"),
    [
        (time(7, 59, 59), None),  # before opening
        (time(8), time(8)),
        (time(8, 59, 59), time(8)),
        (time(9), time(9)),
        (time(11, 59, 59), time(11)),
        (time(12), None),  # closing time is closed
        (time(13), None),
    ],
)
def test_a_time_falls_in_the_slot_that_started_before_it(at: time, slot: time | None) -> None:
    assert morning().slot_of(at) == slot


def test_a_half_hour_session_maps_times_to_its_own_slots() -> None:
    shape = morning(starts=time(8, 30), ends=time(10))
    assert shape.slot_of(time(8, 29)) is None
    assert shape.slot_of(time(9, 29)) == time(8, 30)
    assert shape.slot_of(time(9, 30)) == time(9, 30)
    assert shape.slot_of(time(10)) is None


def test_the_first_free_slot_skips_full_hours() -> None:
    shape = morning(per_hour=2)
    assert first_free_slot(shape, {}) == time(8)
    assert first_free_slot(shape, {time(8): 1}) == time(8)  # one place left
    assert first_free_slot(shape, {time(8): 2}) == time(9)  # full at its capacity
    assert first_free_slot(shape, {time(8): 2, time(9): 3}) == time(10)  # over-full too
    full = {slot: 2 for slot in shape.slots()}
    assert first_free_slot(shape, full) is None


def test_the_first_free_slot_is_not_before_the_earliest() -> None:
    shape = morning(per_hour=1)
    assert first_free_slot(shape, {}, earliest=time(10)) == time(10)  # the current hour
    assert first_free_slot(shape, {time(10): 1}, earliest=time(10)) == time(11)
    assert first_free_slot(shape, {}, earliest=time(11)) == time(11)
    assert first_free_slot(shape, {time(11): 1}, earliest=time(11)) is None  # nothing later
    assert first_free_slot(shape, {}, earliest=time(12)) is None


# Clinic times ----------------------------------------------------------------------------


def test_a_clinic_time_is_the_utc_instant_eight_hours_earlier_in_shanghai() -> None:
    at = local_datetime(TUESDAY, time(8), SHANGHAI)
    assert at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert at.tzinfo is UTC


def test_an_early_clinic_time_is_the_day_before_in_utc() -> None:
    assert local_datetime(TUESDAY, time(7, 59), SHANGHAI) == datetime(
        2026, 11, 30, 23, 59, tzinfo=UTC
    )


def test_a_clinic_time_follows_its_own_zone() -> None:
    # New York on 1 December is on standard time (UTC-5).
    assert local_datetime(TUESDAY, time(8), ZoneInfo("America/New_York")) == datetime(
        2026, 12, 1, 13, 0, tzinfo=UTC
    )
