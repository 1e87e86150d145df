"""Her hour's wait (issue 19): a booking that would keep a mother waiting at a station past
BOOKING_MAX_WAIT_MINUTES is refused for that hour, with the session's other hours that would
take her offered first; a booking without a time takes the first hour that has room."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers.api import Api
from tests.helpers.capacity import LATER_VISIT_LMP, capacity_mother, set_stations
from tests.helpers.problems import assert_problem
from tests.helpers.visits import TUESDAY, book, open_session


async def _later(api: Api, n: int) -> dict[str, Any]:
    """A later-visit mother: nothing fasting, her scan the bottleneck."""
    mother: dict[str, Any] = await capacity_mother(api, n, lmp=LATER_VISIT_LMP, later=True)
    return mother


async def _one_scan_room(factory: async_sessionmaker[AsyncSession]) -> None:
    # One ultrasound room all morning, scans of 40 minutes: one an hour without a queue.
    await set_stations(
        factory, us_rooms=1, us_hours=(time(8), time(12)), learned={"us_obstetric": 40}
    )


async def test_a_booking_without_a_time_takes_the_first_hour_where_nobody_would_wait_long(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await _one_scan_room(session_factory)
    session = await open_session(api)
    first = await book(api, (await _later(api, 1))["id"], session["id"])
    assert first.status_code == 201, first.text
    assert first.json()["arrival_at_local"] == "08:20"  # through by 09:00
    # The second in the 08:00 hour would make one of them wait 20 minutes (past 15): the
    # booking takes the 09:00 hour instead, with no warning and no refusal.
    second = await book(api, (await _later(api, 2))["id"], session["id"])
    assert second.status_code == 201, second.text
    assert "09:00" <= second.json()["arrival_at_local"] < "10:00"
    assert second.json()["scheduled_at_local"] == "09:00"


async def test_an_hour_asked_for_that_would_make_a_mother_wait_is_refused_with_other_hours(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await _one_scan_room(session_factory)
    session = await open_session(api)
    next_week = await open_session(api, day="2026-12-08")
    assert (await book(api, (await _later(api, 1))["id"], session["id"])).status_code == 201
    mother = await _later(api, 2)
    body = assert_problem(await book(api, mother["id"], session["id"], preferred_time="08:30"), 409)
    assert body["type"] == "/problems/station-over-capacity"
    assert "a mother of the 08:00 hour would wait about 20 minutes" in body["detail"]
    assert "a booking may make at most 15" in body["detail"]
    (over,) = body["station_types"]
    assert (over["station_type"], over["wait_minutes"], over["max_wait_minutes"]) == (
        "ultrasound",
        20.0,
        15.0,
    )
    assert over["over"] is True
    assert over["load_percent"] < 100  # the session's minutes had room: the hour did not
    # Offered: the session's nearest hours that take her (09:00, then 10:00), then next week.
    offered = [(a["session_id"], a["hour"]) for a in body["alternatives"]]
    assert offered == [
        (session["id"], "09:00:00"),
        (session["id"], "10:00:00"),
        (next_week["id"], "08:00:00"),
    ]
    assert body["alternatives"][0]["arrival_at_local"] == "09:20:00"
    # Taking the first, as the desk's button does, books her at the time it said.
    taken = await book(api, mother["id"], session["id"], preferred_time="09:00")
    assert taken.status_code == 201, taken.text
    assert taken.json()["arrival_at_local"] == "09:20"
    read = await api.client.get(
        "/v1/visits", headers=api.auth("frontdesk"), params={"date": TUESDAY}
    )
    assert sorted(i["arrival_at_local"] for i in read.json()["items"]) == ["08:20", "09:20"]
