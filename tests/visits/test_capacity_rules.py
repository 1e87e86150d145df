"""The capacity rules on plain values (app/visits/capacity.py): what the booking and the
simulator both decide with."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, time

from app.queues.domain import Catalogue, ExamRule, SequenceStep
from app.visits import capacity

DAY = date(2026, 12, 1)
HOURS = capacity.SessionHours(uuid.uuid4(), DAY, time(8), time(12))


def _rule(code: str, station_type: str, minutes: float, **kw: object) -> ExamRule:
    return ExamRule(
        code=code,
        name=code,
        station_type=station_type,
        position=0,
        fasting=bool(kw.get("fasting", False)),
        after_meal=False,
        last=False,
        precedence=(),
        sequence=tuple(kw.get("sequence", ())),  # type: ignore[arg-type]
        service_minutes=minutes,
    )


CATALOGUE = Catalogue(
    {
        "cbc": _rule("cbc", "blood", 4),
        "glucose": _rule("glucose", "blood", 5, fasting=True),
        "ogtt": _rule(
            "ogtt",
            "blood",
            6,
            fasting=True,
            sequence=[SequenceStep(0, None, None), SequenceStep(60, 5, None)],
        ),
        "scan": _rule("scan", "us", 20),
    }
)
ROOMS = [
    capacity.Rooms("blood", 2, time(7, 30), time(17, 30)),
    capacity.Rooms("us", 1, time(8), time(10)),  # 120 minutes in the session
    capacity.Rooms("us", 1, time(11), time(13)),  # and 60 more
]


def test_a_need_is_one_service_per_station_and_step_as_long_as_its_longest_exam() -> None:
    need = capacity.need_of(["cbc", "ogtt", "scan", "unknown"], CATALOGUE)
    assert need.minutes == {"blood": 6 + 6, "us": 20}  # cbc rides with the first draw
    assert need.early  # the OGTT: fasting and timed
    assert not capacity.need_of(["cbc", "scan"], CATALOGUE).early
    assert capacity.need_of(["glucose"], CATALOGUE).early


def test_capacity_is_rooms_times_their_minutes_within_the_session() -> None:
    assert capacity.capacity(HOURS, ROOMS) == {"blood": (2, 480.0), "us": (2, 180.0)}
    evening = capacity.SessionHours(uuid.uuid4(), DAY, time(18), time(20))
    assert capacity.capacity(evening, ROOMS) == {"blood": (0, 0.0), "us": (0, 0.0)}


def test_exactly_full_is_accepted_and_a_minute_more_is_not() -> None:
    # The session's minutes alone (no limit on her hour's wait: that rule is tested below).
    scan = capacity.need_of(["scan"], CATALOGUE)
    booked = [capacity.Booked(scan, time(8)) for _ in range(8)]  # 160 of 180
    assert capacity.decide(HOURS, ROOMS, booked, scan, time(9), max_wait=None).accepted
    nine = [*booked, capacity.Booked(scan, time(9))]  # 180 of 180 with the one above
    decision = capacity.decide(HOURS, ROOMS, nine, scan, time(9), max_wait=None)
    assert not decision.accepted
    (over,) = decision.over
    assert (over.station_type, over.demand_minutes, over.capacity_minutes) == ("us", 200, 180)
    # A booking that needs nothing of the full station is not refused for it.
    assert capacity.decide(
        HOURS, ROOMS, nine, capacity.need_of(["cbc"], CATALOGUE), time(9), max_wait=None
    ).accepted


def test_a_station_closed_all_session_refuses_her_exam_there() -> None:
    evening = capacity.SessionHours(uuid.uuid4(), DAY, time(18), time(20))
    decision = capacity.decide(evening, ROOMS, [], capacity.need_of(["scan"], CATALOGUE), time(18))
    assert [s.station_type for s in decision.over] == ["us"]
    assert decision.over[0].load is None


def _book_hour(
    needs: list[capacity.Need], slot: time, rooms: list[capacity.Rooms] = ROOMS
) -> list[str]:
    """Book ``needs`` in order into the hour, each booking arranging the hour again (no limit
    on the hour's wait, so that an overfull hour can be arranged); the final arrival times,
    in booking order."""
    booked: list[capacity.Booked] = []
    for need in needs:
        decision = capacity.decide(HOURS, rooms, booked, need, slot, max_wait=None)
        assert decision.accepted
        assert decision.arrival is not None
        for i, at in decision.rearranged.items():
            booked[i] = capacity.Booked(booked[i].need, booked[i].slot, at)
        booked.append(capacity.Booked(need, slot, decision.arrival))
    return [f"{b.arrival:%H:%M}" for b in booked]


def test_arrivals_count_only_the_rooms_open_in_her_hour() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)
    # 08:00: one ultrasound room open (the other opens at 11:00): through by 09:00 on it.
    assert _book_hour([scan], time(8)) == ["08:40"]
    # 11:00: the other room alone, too.
    assert _book_hour([scan], time(11)) == ["11:40"]
    both = [*ROOMS, capacity.Rooms("us", 1, time(8), time(12))]
    # Two rooms: the hour's share would be 20 / 2 minutes, but her scan takes one room 20.
    assert _book_hour([scan], time(8), both) == ["08:40"]
    assert _book_hour([scan, scan, scan], time(8), both) == ["08:40", "08:40", "08:30"]


def test_fasting_mothers_take_the_hour_s_start_the_others_its_end() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)  # us is her bottleneck: 20 min, 1 room
    fasting = capacity.need_of(["scan", "glucose"], CATALOGUE)
    # An hour that fits: the others from its end backwards, the fasting one first.
    assert _book_hour([scan, scan, fasting], time(8)) == ["08:40", "08:20", "08:00"]


def test_an_overfull_hour_asks_no_one_else_before_a_fasting_mother_booked_after_her() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)
    fasting = capacity.need_of(["scan", "glucose"], CATALOGUE)
    # 120 scan minutes in a 60-minute hour of one room (the session's 180 take them): the two
    # fasting ones, booked last, come first, and nobody else before they are through.
    arrivals = _book_hour([scan, scan, scan, scan, fasting, fasting], time(8))
    assert arrivals == ["08:40", "08:40", "08:40", "08:40", "08:00", "08:20"]
    assert capacity.hour_arrivals(
        hour_minutes=60, servers=1, works=[(30, False), (120, True), (30, True)]
    ) == [55, 0, 55]  # past the hour: its last arrival time


def test_her_hour_must_have_a_room_of_her_types_open_long_enough_after_she_comes() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)
    # 10:00: no ultrasound room open in the hour (one closes at 10:00, one opens at 11:00),
    # though the session's ultrasound minutes have room.
    closed = capacity.decide(HOURS, ROOMS, [], scan, time(10))
    assert not closed.accepted
    (over,) = closed.over
    assert (over.station_type, over.hour, over.capacity_minutes, over.demand_minutes) == (
        "us",
        time(10),
        0.0,
        20.0,
    )
    assert capacity.decide(HOURS, ROOMS, [], scan, time(11)).accepted
    # A room closing in her hour: she is asked early enough to be through (09:10 for 09:30).
    short = [capacity.Rooms("blood", 2, time(7, 30), time(17, 30))]
    until = [*short, capacity.Rooms("us", 1, time(8), time(9, 30))]
    assert capacity.decide(HOURS, until, [], scan, time(9)).arrival == time(9, 10)
    # Fasting ones one after the other: the second comes at 09:20 and 10 minutes are left
    # for her 20; with the room open to 09:40, exactly 20 are, and she is booked.
    fasting = capacity.need_of(["scan", "glucose"], CATALOGUE)
    first = [capacity.Booked(fasting, time(9), time(9))]
    refused = capacity.decide(HOURS, until, first, fasting, time(9))
    assert [(s.station_type, s.capacity_minutes, s.arrival) for s in refused.over] == [
        ("us", 10.0, time(9, 20))
    ]
    forty = [*short, capacity.Rooms("us", 1, time(8), time(9, 40))]
    assert capacity.decide(HOURS, forty, first, fasting, time(9)).accepted


def test_a_day_of_requests_is_booked_by_the_same_rules_refused_ones_offered_the_next() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)  # 20 minutes of the 180 ultrasound minutes
    tuesday = capacity.OpenSession(HOURS, per_hour=8)
    later = capacity.OpenSession(
        capacity.SessionHours(uuid.uuid4(), date(2026, 12, 8), time(8), time(12)), per_hour=8
    )
    requests = [
        capacity.Request(f"r{i}", HOURS.session_id, scan, preferred=time(9)) for i in range(10)
    ]
    placed = capacity.book_requests([later, tuesday], ROOMS, requests, max_wait=None)
    # The 09:00 hour has 8 places: the ninth asking for it takes the nearest other hour of the
    # session that would book her (10:00 has no scan room open: 08:00), the tenth finds the
    # session's scan minutes full and is booked into the next session (offered, as the desk
    # is). Neither is refused for the hour asked: it had no place.
    assert [p.session_id == HOURS.session_id for p in placed] == [True] * 9 + [False]
    assert (placed[8].slot, placed[8].moved) == (time(8), False)
    assert placed[9].session_id == later.hours.session_id
    assert placed[8].refused == placed[9].refused == []
    assert placed[9].moved
    assert all(p.arrival is not None for p in placed)
    # Any hour: 9 scans fill the ultrasound's 180 minutes exactly; the tenth is refused for
    # it, and with no other session she is not booked.
    full = capacity.book_requests(
        [tuesday], ROOMS, [capacity.Request("x", HOURS.session_id, scan)] * 10, max_wait=None
    )
    assert [p.session_id is None for p in full] == [False] * 9 + [True]
    assert [s.station_type for s in full[9].refused] == ["us"]


# Her hour's wait (BOOKING_MAX_WAIT_MINUTES) -----------------------------------------------

ONE_ROOM = [
    capacity.Rooms("blood", 2, time(7, 30), time(17, 30)),
    capacity.Rooms("us", 1, time(8), time(12)),
]


def test_the_forecast_wait_is_the_work_ahead_of_her_drained_by_the_rooms_open() -> None:
    us = [r for r in ONE_ROOM if r.station_type == "us"]
    # One room: two 20-minute scans at 08:00 and one at 08:10. The second waits for the first
    # (20), the third for what is left of both at 08:10 (30).
    assert capacity.station_waits(
        HOURS, us, [(time(8), 20.0), (time(8), 20.0), (time(8, 10), 20.0)]
    ) == [0.0, 20.0, 30.0]
    # Two rooms: one mother each at a time; the third waits for the first room free.
    two = [capacity.Rooms("us", 2, time(8), time(12))]
    assert capacity.station_waits(
        HOURS, two, [(time(8), 20.0), (time(8), 20.0), (time(8), 20.0)]
    ) == [0.0, 0.0, 20.0]
    # A room that cannot finish her before it closes does not take her: with none left, the
    # wait is endless (a room closing at 08:29:59 closes at 08:30).
    short = [capacity.Rooms("us", 1, time(8), time(8, 29, 59))]
    assert capacity.station_waits(HOURS, short, [(time(8), 20.0), (time(8, 5), 10.0)]) == [
        0.0,
        15.0,
    ]
    assert capacity.station_waits(HOURS, short, [(time(8), 20.0), (time(8, 5), 11.0)]) == [
        0.0,
        float("inf"),
    ]


def test_a_booking_that_would_keep_a_mother_waiting_past_the_limit_is_refused_for_her_hour() -> (
    None
):
    scan = capacity.need_of(["scan"], CATALOGUE)  # 20 minutes, one room: 3 fit in an hour
    booked: list[capacity.Booked] = []
    for _ in range(3):
        decision = capacity.decide(HOURS, ONE_ROOM, booked, scan, time(8), max_wait=15)
        assert decision.accepted, decision.over
        for i, at in decision.rearranged.items():
            booked[i] = capacity.Booked(booked[i].need, booked[i].slot, at)
        booked.append(capacity.Booked(scan, time(8), decision.arrival))
    assert [f"{b.arrival:%H:%M}" for b in booked] == ["08:40", "08:20", "08:00"]
    # A fourth in the 08:00 hour would come with the third and wait her 20 minutes: past 15.
    fourth = capacity.decide(HOURS, ONE_ROOM, booked, scan, time(8), max_wait=15)
    assert not fourth.accepted
    (over,) = fourth.over
    assert (over.station_type, over.hour, over.wait_minutes, over.max_wait_minutes) == (
        "us",
        time(8),
        20.0,
        15,
    )
    assert over.over
    # The session's minutes still have room: her wait alone refuses her.
    assert (over.demand_minutes, over.capacity_minutes) == (80.0, 240.0)
    # Exactly at the limit is accepted; the next hour takes her as it is.
    assert capacity.decide(HOURS, ONE_ROOM, booked, scan, time(8), max_wait=20).accepted
    assert capacity.decide(HOURS, ONE_ROOM, booked, scan, time(9), max_wait=15).accepted


def test_her_wait_rule_counts_the_mothers_after_her_not_her_own_exam() -> None:
    # One 40-minute scan in an empty clinic waits for nobody: accepted under a 15-minute limit.
    long_scan = capacity.need_of(["scan"], replace_minutes(CATALOGUE, "scan", 40))
    first = capacity.decide(HOURS, ONE_ROOM, [], long_scan, time(8), max_wait=15)
    assert first.accepted
    assert first.arrival == time(8, 20)
    # A second one in the hour: 80 minutes of scans in its 60. Arranged again, she comes at
    # 08:00 and the first stays at 08:20, who would then wait 20 minutes for the room:
    # refused for her, though she herself would not wait.
    there = [capacity.Booked(long_scan, time(8), time(8, 20))]
    refused = capacity.decide(HOURS, ONE_ROOM, there, long_scan, time(8), max_wait=15)
    assert refused.arrival == time(8)
    assert refused.rearranged == {}
    assert [(s.station_type, s.wait_minutes) for s in refused.over] == [("us", 20.0)]


def test_a_request_refused_for_its_hour_s_wait_takes_the_nearest_hour_that_has_room() -> None:
    scan = capacity.need_of(["scan"], CATALOGUE)
    tuesday = capacity.OpenSession(HOURS, per_hour=8)
    later = capacity.OpenSession(
        capacity.SessionHours(uuid.uuid4(), date(2026, 12, 8), time(8), time(12)), per_hour=8
    )
    asked = [capacity.Request(f"r{i}", HOURS.session_id, scan, time(9)) for i in range(7)]
    placed = capacity.book_requests([tuesday, later], ONE_ROOM, asked, max_wait=15)
    # Three fit the 09:00 hour; the fourth is refused for it (the wait) and booked at 10:00,
    # the nearest hour (a later one before an earlier one as near) until it is as full, then
    # 08:00; all in the session asked for, none moved to another day.
    assert [p.slot for p in placed] == [time(9)] * 3 + [time(10)] * 3 + [time(8)]
    assert [p.moved for p in placed] == [False] * 7
    assert [s.station_type for s in placed[3].refused] == ["us"]
    assert placed[3].refused[0].wait_minutes is not None
    # Without an hour asked, each takes the first hour that has room for her.
    free = capacity.book_requests(
        [tuesday, later],
        ONE_ROOM,
        [capacity.Request(f"f{i}", HOURS.session_id, scan) for i in range(4)],
        max_wait=15,
    )
    assert [p.slot for p in free] == [time(8)] * 3 + [time(9)]
    assert all(p.refused == [] for p in free[:3])


def replace_minutes(catalogue: Catalogue, code: str, minutes: float) -> Catalogue:
    rules = dict(catalogue.rules)
    rules[code] = dataclasses.replace(rules[code], service_minutes=minutes)
    return Catalogue(rules)
