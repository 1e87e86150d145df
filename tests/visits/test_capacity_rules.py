"""The capacity rules on plain values (app/visits/capacity.py): what the booking and the
simulator both decide with."""

from __future__ import annotations

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
    scan = capacity.need_of(["scan"], CATALOGUE)
    booked = [capacity.Booked(scan, time(8)) for _ in range(8)]  # 160 of 180
    assert capacity.decide(HOURS, ROOMS, booked, scan, time(9)).accepted  # 180 of 180
    nine = [*booked, capacity.Booked(scan, time(9))]
    decision = capacity.decide(HOURS, ROOMS, nine, scan, time(9))
    assert not decision.accepted
    (over,) = decision.over
    assert (over.station_type, over.demand_minutes, over.capacity_minutes) == ("us", 200, 180)
    # A booking that needs nothing of the full station is not refused for it.
    assert capacity.decide(
        HOURS, ROOMS, nine, capacity.need_of(["cbc"], CATALOGUE), time(9)
    ).accepted


def test_a_station_closed_all_session_refuses_her_exam_there() -> None:
    evening = capacity.SessionHours(uuid.uuid4(), DAY, time(18), time(20))
    decision = capacity.decide(evening, ROOMS, [], capacity.need_of(["scan"], CATALOGUE), time(18))
    assert [s.station_type for s in decision.over] == ["us"]
    assert decision.over[0].load is None


def _book_hour(
    needs: list[capacity.Need], slot: time, rooms: list[capacity.Rooms] = ROOMS
) -> list[str]:
    """Book ``needs`` in order into the hour, each booking arranging the hour again; the final
    arrival times, in booking order."""
    booked: list[capacity.Booked] = []
    for need in needs:
        decision = capacity.decide(HOURS, rooms, booked, need, slot)
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
    assert _book_hour([scan], time(8), both) == ["08:50"]  # two rooms: 20 / 2 minutes


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
    placed = capacity.book_requests([later, tuesday], ROOMS, requests)
    # The 09:00 hour has 8 places: the ninth and tenth asking for it are booked into the next
    # session (offered, as the desk is), not refused for the stations.
    assert [p.session_id == HOURS.session_id for p in placed] == [True] * 8 + [False, False]
    assert placed[8].session_id == later.hours.session_id
    assert placed[8].refused == []
    assert placed[9].moved
    assert all(p.arrival is not None for p in placed)
    # Any hour: 9 scans fill the ultrasound's 180 minutes exactly; the tenth is refused for
    # it, and with no other session she is not booked.
    full = capacity.book_requests(
        [tuesday], ROOMS, [capacity.Request("x", HOURS.session_id, scan)] * 10
    )
    assert [p.session_id is None for p in full] == [False] * 9 + [True]
    assert [s.station_type for s in full[9].refused] == ["us"]
