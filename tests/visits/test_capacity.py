"""Booking that knows the stations (issue 19): the forecast per station type, the refusal at
capacity with the next sessions that have room, the admin's override, arrival times."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.settings import Settings
from app.queues.models import Station
from tests.helpers.api import Api
from tests.helpers.capacity import (
    FIRST_VISIT_EXAMS,
    FIRST_VISIT_LMP,
    LATER_VISIT_EXAMS,
    LATER_VISIT_LMP,
    capacity_mother,
    set_stations,
)
from tests.helpers.notices import assert_desk_can_say
from tests.helpers.problems import assert_problem
from tests.helpers.visits import TUESDAY, book, open_session


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session's rules alone: her hour's wait is not limited here (the longest the setting
    allows), so that these days can be filled to the minute; test_booking_wait.py tests that
    rule at the clinic's default."""
    return settings.model_copy(update={"booking_max_wait_minutes": 240.0})


def _by_type(forecast: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["station_type"]: s for s in forecast["stations"]}


async def test_the_forecast_is_her_plan_s_exams_times_the_learned_minutes_against_the_rooms(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # Ultrasound: 1 room open 08:00-10:00 in an 08:00-12:00 session = 120 minutes; the scan
    # has learned 40 minutes, the OGTT 6 (its default is 5).
    await set_stations(
        session_factory,
        us_rooms=1,
        us_hours=(time(8), time(10)),
        learned={"us_obstetric": 40.0, "ogtt": 6.0},
    )
    session = await open_session(api)
    booked = await book(api, (await capacity_mother(api, 1))["id"], session["id"])
    assert booked.status_code == 201, booked.text
    assert booked.json()["forecast_exams"] == FIRST_VISIT_EXAMS

    response = await api.client.get(
        f"/v1/clinic-sessions/{session['id']}/forecast", headers=api.auth("frontdesk")
    )
    assert response.status_code == 200, response.text
    forecast = response.json()
    stations = _by_type(forecast)
    assert forecast["booked"] == 1
    # The blood draws: the OGTT's three (0, 60, 120 minutes), the first one with the panel's
    # tubes in the same service (as long as its longest exam, 6): 3 x 6 = 18 of 2 rooms x 240.
    async with session_factory() as db:
        lab = (
            await db.scalars(
                select(Station).where(Station.station_type == "blood_draw").order_by(Station.code)
            )
        ).first()
    assert lab is not None
    assert lab.name
    assert lab.name_zh
    assert stations["blood_draw"] == {
        "station_type": "blood_draw",
        "name": lab.name,
        "name_zh": lab.name_zh,
        "rooms": 2,
        "demand_minutes": 18.0,
        "capacity_minutes": 480.0,
        "load_percent": 3.8,  # 18 / 480 = 3.75 %
        "over": False,
        "wait_minutes": None,  # set only on a refusal for her hour's wait
        "max_wait_minutes": None,
    }
    assert (
        stations["ultrasound"]["demand_minutes"],
        stations["ultrasound"]["capacity_minutes"],
    ) == (
        40.0,
        120.0,
    )
    assert stations["ultrasound"]["load_percent"] == 33.3
    assert stations["ultrasound"]["rooms"] == 1
    assert (stations["doctor"]["demand_minutes"], stations["doctor"]["capacity_minutes"]) == (
        10.0,
        480.0,
    )
    assert (stations["vitals"]["demand_minutes"], stations["vitals"]["capacity_minutes"]) == (
        3.0,
        240.0,
    )
    assert (stations["urine"]["demand_minutes"], stations["nst"]["demand_minutes"]) == (3.0, 0.0)
    assert forecast["bottleneck"] == "ultrasound"

    # The desk's session list carries the same loads.
    listed = await api.client.get(
        "/v1/clinic-sessions",
        headers=api.auth("frontdesk"),
        params={"from": TUESDAY, "to": TUESDAY},
    )
    item = listed.json()["items"][0]
    assert {s["station_type"]: s["load_percent"] for s in item["stations"]}["ultrasound"] == 33.3

    missing = await api.client.get(
        "/v1/clinic-sessions/01900000-0000-7000-8000-000000000000/forecast",
        headers=api.auth("frontdesk"),
    )
    assert_problem(missing, 404)


async def _full_ultrasound(
    api: Api, factory: async_sessionmaker[AsyncSession], *, booked: int
) -> dict[str, Any]:
    """A session whose ultrasound holds exactly three scans (1 room x 120 minutes, 40 each),
    with ``booked`` of them booked."""
    await set_stations(
        factory, us_rooms=1, us_hours=(time(8), time(10)), learned={"us_obstetric": 40}
    )
    session = await open_session(api)
    for n in range(booked):
        response = await book(api, (await capacity_mother(api, n))["id"], session["id"])
        assert response.status_code == 201, response.text
    return session


async def test_exactly_at_capacity_is_booked_and_one_more_is_refused_with_alternatives(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    session = await _full_ultrasound(api, session_factory, booked=2)
    later = await open_session(api, day="2026-12-08", repeat_weeks=3)  # 8, 15, 22, 29 Dec
    afternoon = await open_session(api, starts="13:00", ends="17:00")  # no ultrasound then
    third = await book(api, (await capacity_mother(api, 2))["id"], session["id"])
    assert third.status_code == 201, third.text  # 120 of 120 minutes: exactly full

    fourth_mother = await capacity_mother(api, 3)
    body = assert_problem(await book(api, fourth_mother["id"], session["id"]), 409)
    assert body["type"] == "/problems/station-over-capacity"
    assert "ultrasound would need 160 of its 120 minutes (1 room)" in body["detail"]
    (over,) = body["station_types"]
    assert (over["station_type"], over["demand_minutes"], over["capacity_minutes"]) == (
        "ultrasound",
        160.0,
        120.0,
    )
    assert over["over"] is True
    # The next three sessions with room: not the afternoon (its ultrasound is closed), the
    # next Tuesdays in order.
    days = [a["session_date"] for a in body["alternatives"]]
    assert days == ["2026-12-08", "2026-12-15", "2026-12-22"]
    assert body["alternatives"][0]["session_id"] == later["id"]
    assert afternoon["id"] not in {a["session_id"] for a in body["alternatives"]}
    assert body["alternatives"][0]["bottleneck_load_percent"] == pytest.approx(33.3)

    # Nothing was booked by the refusal; the forecast says full, not past it.
    forecast = await api.client.get(
        f"/v1/clinic-sessions/{session['id']}/forecast", headers=api.auth("frontdesk")
    )
    us = _by_type(forecast.json())["ultrasound"]
    assert (us["demand_minutes"], us["load_percent"], us["over"]) == (120.0, 100.0, False)
    # And one of the alternatives takes her.
    moved = await book(api, fourth_mother["id"], later["id"])
    assert moved.status_code == 201, moved.text


async def test_an_admin_overrides_with_a_reason_audited_and_nobody_else_may(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    session = await _full_ultrasound(api, session_factory, booked=3)
    mother = await capacity_mother(api, 9)
    override = {"override_capacity": True, "override_reason": "twin pregnancy, doctor asked"}

    desk = await api.client.post(
        "/v1/visits",
        headers=api.auth("frontdesk"),
        json={"mother_id": mother["id"], "session_id": session["id"], **override},
    )
    assert_problem(desk, 403)
    no_reason = await api.client.post(
        "/v1/visits",
        headers=api.auth("admin"),
        json={"mother_id": mother["id"], "session_id": session["id"], "override_capacity": True},
    )
    assert_problem(no_reason, 422)
    without = await api.client.post(
        "/v1/visits",
        headers=api.auth("admin"),
        json={"mother_id": mother["id"], "session_id": session["id"]},
    )
    assert_problem(without, 409)  # an admin too is refused unless she says so

    admin = await api.client.post(
        "/v1/visits",
        headers=api.auth("admin"),
        json={"mother_id": mother["id"], "session_id": session["id"], **override},
    )
    assert admin.status_code == 201, admin.text
    visit = admin.json()
    assert any("Booked past capacity" in w and "ultrasound" in w for w in visit["warnings"])
    (notice,) = [n for n in visit["notices"] if n["code"] == "capacity-overridden"]
    assert "ultrasound" in notice["params"]["stations"]
    assert_desk_can_say(notice)

    async with session_factory() as db:
        events = (
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "visit.capacity_override")
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
            )
        ).all()
    assert [(e.outcome, e.role) for e in events] == [("denied", "front_desk"), ("success", "admin")]
    done = events[1]
    assert done.resource_id == visit["id"]
    assert str(done.mother_id) == mother["id"]
    assert done.actor_id == api.staff.users["admin"].id  # who decided
    assert done.detail is not None
    assert done.detail["reason"] == "twin pregnancy, doctor asked"
    assert done.detail["station_types"] == [
        {"station_type": "ultrasound", "demand_minutes": 160.0, "capacity_minutes": 120.0}
    ]
    history = await api.client.get(f"/v1/visits/{visit['id']}", headers=api.auth("admin"))
    assert (
        history.json()["history"][0]["reason"] == "capacity override: twin pregnancy, doctor asked"
    )

    forecast = await api.client.get(
        f"/v1/clinic-sessions/{session['id']}/forecast", headers=api.auth("frontdesk")
    )
    assert _by_type(forecast.json())["ultrasound"]["over"] is True


async def test_fasting_mothers_are_asked_early_in_their_hour_whatever_the_booking_order(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # One ultrasound room (4 x 60 minutes): the bottleneck of every mother here (15-minute
    # scans); the hour's 60 minutes of scanning are handed out by arrival time.
    await set_stations(session_factory, us_rooms=1)
    session = await open_session(api)
    order = [
        ("later A", await capacity_mother(api, 1, lmp=LATER_VISIT_LMP, later=True)),
        ("later B", await capacity_mother(api, 2, lmp=FIRST_VISIT_LMP, later=True)),
        ("fasting C", await capacity_mother(api, 3)),
        ("fasting D", await capacity_mother(api, 4)),
    ]
    arrivals = {}
    for name, mother in order:
        response = await book(api, mother["id"], session["id"], preferred_time="08:00")
        assert response.status_code == 201, response.text
        visit = response.json()
        assert visit["scheduled_at_local"] == "08:00"
        arrivals[name] = visit["arrival_at_local"]
        if name.startswith("later"):
            assert visit["forecast_exams"] == LATER_VISIT_EXAMS
    # The fasting ones from the hour's start, each after the scans before her (15 minutes on
    # one room); the others from its end backwards: C 08:00, D 08:15, B 08:30, A 08:45.
    assert arrivals == {
        "fasting C": "08:00",
        "fasting D": "08:15",
        "later B": "08:30",
        "later A": "08:45",
    }
    read = await api.client.get(
        "/v1/visits", headers=api.auth("frontdesk"), params={"date": TUESDAY}
    )
    listed = {i["mother_id"]: i["arrival_at_local"] for i in read.json()["items"]}
    assert listed[order[2][1]["id"]] == "08:00"


RACERS = 6


@pytest.mark.postgres_only
async def test_desks_racing_for_the_last_scan_book_one_and_refuse_the_others(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    session = await _full_ultrasound(api, session_factory, booked=2)  # room for one more
    racers = [await capacity_mother(api, 10 + n) for n in range(RACERS)]
    # Several desks at once (two accounts: one account's requests queue on its token's row).
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/v1/visits",
                headers=api.auth(("frontdesk", "admin")[n % 2]),
                json={"mother_id": m["id"], "session_id": session["id"]},
            )
            for n, m in enumerate(racers)
        )
    )
    assert Counter(r.status_code for r in responses) == Counter({201: 1, 409: RACERS - 1})
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"] == "/problems/station-over-capacity"
    forecast = await api.client.get(
        f"/v1/clinic-sessions/{session['id']}/forecast", headers=api.auth("frontdesk")
    )
    assert _by_type(forecast.json())["ultrasound"]["demand_minutes"] == 120.0


async def test_a_reschedule_into_a_full_session_is_refused_the_same_way(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    full = await _full_ultrasound(api, session_factory, booked=3)
    other = await open_session(api, day="2026-12-08")
    mother = await capacity_mother(api, 7)
    booked = await book(api, mother["id"], other["id"])
    assert booked.status_code == 201, booked.text
    moved = await api.client.post(
        f"/v1/visits/{booked.json()['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": full["id"], "reason": "she asked for the earlier week"},
    )
    body = assert_problem(moved, 409)
    assert body["type"] == "/problems/station-over-capacity"
    # Moving within the full session itself counts her once, not twice.
    inside = await api.client.get(
        "/v1/visits", headers=api.auth("frontdesk"), params={"date": TUESDAY}
    )
    first = inside.json()["items"][0]
    again = await api.client.post(
        f"/v1/visits/{first['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": full["id"], "preferred_time": "08:00", "reason": "the same morning"},
    )
    assert again.status_code == 200, again.text
    assert "08:00" <= again.json()["arrival_at_local"] < "09:00"
    # The 10:00 hour has no ultrasound open (08:00-10:00): refused there, whatever the minutes.
    closed = await api.client.post(
        f"/v1/visits/{first['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": full["id"], "preferred_time": "10:00", "reason": "later still"},
    )
    assert assert_problem(closed, 409)["type"] == "/problems/station-over-capacity"


async def test_an_hour_when_her_station_is_closed_is_refused_with_sessions_that_would_book_her(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # Ultrasound 08:00-10:00 in an 08:00-12:00 session: 120 minutes, room for her 40-minute
    # scan in the session's sums, but none open in the 11:00 hour.
    await set_stations(
        session_factory, us_rooms=1, us_hours=(time(8), time(10)), learned={"us_obstetric": 40}
    )
    session = await open_session(api)
    weeks = await open_session(api, day="2026-12-08", repeat_weeks=3)  # 8, 15, 22, 29 Dec
    mother = await capacity_mother(api, 1)
    body = assert_problem(await book(api, mother["id"], session["id"], preferred_time="11:00"), 409)
    assert body["type"] == "/problems/station-over-capacity"
    assert "ultrasound has no room open in the 11:00 hour" in body["detail"]
    assert [s["station_type"] for s in body["station_types"]] == ["ultrasound"]
    # Offered first the session's nearest hours that would book her (10:00 has no scan room
    # either: 09:00, then 08:00), then the next session.
    offered = [(a["session_date"], a["hour"]) for a in body["alternatives"]]
    assert offered == [
        ("2026-12-01", "09:00:00"),
        ("2026-12-01", "08:00:00"),
        ("2026-12-08", "08:00:00"),
    ]
    assert body["alternatives"][2]["session_id"] == weeks["id"]
    assert body["alternatives"][0]["session_id"] == session["id"]
    # An hour when it is open books her.
    nine = await book(api, mother["id"], session["id"], preferred_time="09:00")
    assert nine.status_code == 201, nine.text

    # Offered only what would book her: not a day she already has a visit.
    other = await capacity_mother(api, 2)
    on_the_8th = await book(api, other["id"], weeks["id"])
    assert on_the_8th.status_code == 201, on_the_8th.text
    body = assert_problem(await book(api, other["id"], session["id"], preferred_time="11:00"), 409)
    # The same session's hours that would take her first (09:00 holds the first one's scan:
    # she would wait 40 minutes there; 08:00 takes her), then the next sessions, not the 8th.
    assert [(a["session_date"], a["hour"]) for a in body["alternatives"]] == [
        ("2026-12-01", "08:00:00"),
        ("2026-12-15", "08:00:00"),
        ("2026-12-22", "08:00:00"),
    ]


async def test_a_later_fasting_booking_moves_the_others_of_her_hour_after_her(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # One ultrasound room, 15-minute scans: five later-visit mothers (75 minutes) overfill the
    # 08:00 hour; a fasting one booked after them comes first, the others after her.
    await set_stations(session_factory, us_rooms=1)
    session = await open_session(api)
    others = [await capacity_mother(api, n, lmp=LATER_VISIT_LMP, later=True) for n in range(1, 6)]
    for mother in others:
        response = await book(api, mother["id"], session["id"], preferred_time="08:00")
        assert response.status_code == 201, response.text
    fasting = await book(
        api, (await capacity_mother(api, 6))["id"], session["id"], preferred_time="08:00"
    )
    assert fasting.status_code == 201, fasting.text
    assert fasting.json()["arrival_at_local"] == "08:00"
    read = await api.client.get(
        "/v1/visits", headers=api.auth("frontdesk"), params={"date": TUESDAY}
    )
    arrivals = {i["mother_id"]: i["arrival_at_local"] for i in read.json()["items"]}
    assert all(arrivals[m["id"]] >= "08:15" for m in others), arrivals


async def test_an_override_with_nothing_over_capacity_is_not_used_and_says_so(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    session = await _full_ultrasound(api, session_factory, booked=0)
    mother = await capacity_mother(api, 9)
    admin = await api.client.post(
        "/v1/visits",
        headers=api.auth("admin"),
        json={
            "mother_id": mother["id"],
            "session_id": session["id"],
            "override_capacity": True,
            "override_reason": "just in case",
        },
    )
    assert admin.status_code == 201, admin.text
    assert any("override was not used" in w for w in admin.json()["warnings"])
    async with session_factory() as db:
        events = (
            await db.scalars(
                select(AuditEvent).where(AuditEvent.action == "visit.capacity_override")
            )
        ).all()
    assert events == []
    reason_only = await api.client.post(
        "/v1/visits",
        headers=api.auth("frontdesk"),
        json={
            "mother_id": (await capacity_mother(api, 8))["id"],
            "session_id": session["id"],
            "override_reason": "no flag",
        },
    )
    assert reason_only.status_code == 201, reason_only.text
    assert any("was ignored" in w for w in reason_only.json()["warnings"])
    assert "override-reason-ignored" in [n["code"] for n in reason_only.json()["notices"]]
