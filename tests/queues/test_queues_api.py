"""Exam queues through the API: routing at check-in, station operations, rules, displays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.queues.models import ExamType
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, call, op, record_drink, serve, visit_queue, without_ogtt
from tests.helpers.visits import TODAY, open_session


async def test_check_in_puts_her_in_every_queue_she_may_join_now(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, extra_exams=["us_obstetric"])
    q = await visit_queue(api, her["visit"]["id"])
    places = {p["station"]: p for p in q["places"]}
    assert set(places) == {"VIT", "LAB", "URI", "US"}
    assert places["VIT"]["ticket"] == "VIT-001"
    # One blood draw fills every tube: the OGTT's fasting draw and the blood count together.
    assert sorted(places["LAB"]["exams"]) == [
        "75 g oral glucose tolerance test",
        "Complete blood count",
    ]
    assert places["LAB"]["fasting"] is True
    assert all(p["state"] == "waiting" and p["position"] == 1 for p in q["places"])
    waiting_for = {s["exam_code"]: s["waiting_for"] for s in q["not_yet_queued"]}
    # The OGTT's timed draws wait for its first draw; the doctor comes last, after vitals.
    assert set(waiting_for) == {"ogtt", "consultation"}
    assert "last, after every other exam of the day" in waiting_for["consultation"]
    assert "after Weight and blood pressure" in waiting_for["consultation"]
    # vitals, the OGTT (3 draws), blood count, urine, scan and doctor
    assert (q["steps_total"], q["steps_done"]) == (8, 0)
    # Shortest wait first, the longer exam breaking ties; a free mother gets a suggestion.
    assert q["suggested_next"]["station"] == "US"
    assert q["expected_finish"] is not None


async def test_a_mother_is_called_at_one_station_at_a_time(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api)
    called = await call(api, "VIT")
    assert called["called"]["name"] == her["mother"]["name"]
    assert called["called"]["mrn"] == her["mother"]["mrn"]
    assert called["called"]["entry"]["room"] == 1
    nobody = await call(api, "URI")
    assert nobody["called"] is None
    assert nobody["waiting"] == 1
    assert "busy elsewhere" in nobody["reason"]
    # The room is busy until its mother is finished or marked a no-show.
    busy = await api.client.post(
        "/v1/stations/VIT/call-next", headers=api.auth("station"), json={"room": 1}
    )
    assert assert_problem(busy, 409)["type"] == "/problems/queue-conflict"
    entry = called["called"]["entry"]["id"]
    assert (await op(api, entry, "start")).json()["state"] == "in_service"
    visit = await api.client.get(f"/v1/visits/{her['visit']['id']}", headers=api.auth("frontdesk"))
    assert visit.json()["status"] == "in_progress"
    done = await op(api, entry, "finish")
    assert done.json()["state"] == "done"
    assert (await call(api, "URI"))["called"] is not None
    again = await op(api, entry, "finish")
    assert assert_problem(again, 409)["current_state"] == "done"


async def test_the_ogtt_draws_come_at_60_and_120_minutes_and_the_doctor_last(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    vid = her["visit"]["id"]
    for station in ("VIT", "URI"):
        await serve(api, station)
    fasting = await serve(api, "LAB")  # the fasting draw at 10:00, then the drink
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    q = await visit_queue(api, vid)
    draw = next(p for p in q["places"] if p["station"] == "LAB")
    assert draw["step_offset"] == 60
    assert draw["due_at"] == "2026-11-28T03:00:00Z"
    assert draw["available_at"] == "2026-11-28T02:55:00Z"  # the -5 min tolerance
    assert draw["ticket"] != "LAB-001"
    clock.advance(timedelta(minutes=30))
    assert (await call(api, "LAB"))["called"] is None  # not yet
    clock.advance(timedelta(minutes=26))
    first = await serve(api, "LAB")
    assert first["exams"] == ["75 g oral glucose tolerance test (1-hour draw)"]
    assert "consultation" in {
        s["exam_code"] for s in (await visit_queue(api, vid))["not_yet_queued"]
    }
    clock.advance(timedelta(minutes=60))
    await serve(api, "LAB")
    q = await visit_queue(api, vid)
    assert [p["station"] for p in q["places"]] == ["DOC"]  # now, and only now, the doctor
    await serve(api, "DOC")
    q = await visit_queue(api, vid)
    assert (q["steps_done"], q["steps_total"], q["places"]) == (7, 7, [])
    orders = (await api.client.get(f"/v1/visits/{vid}", headers=api.auth("frontdesk"))).json()[
        "exam_orders"
    ]
    assert {o["status"] for o in orders} == {"done"}


@pytest.mark.parametrize("between_draws", ["any"])  # a clinic that allows exams between draws
async def test_nothing_keeps_her_past_a_timed_draw(api: Api, clock: FrozenClock) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["us_obstetric"])
    fasting = await serve(api, "LAB")  # the fasting draw and the drink: +60 is due at 11:00
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    clock.advance(timedelta(minutes=50))
    # A 15-minute scan at 10:50 would keep her past 11:00: the scanner calls someone else.
    assert (await call(api, "US"))["called"] is None
    assert (await call(api, "VIT"))["called"] is not None  # 3 minutes fit
    del her


async def test_fasting_exams_come_before_the_ones_after_a_meal(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["nst"])
    q = await visit_queue(api, her["visit"]["id"])
    waiting_for = {s["exam_code"]: s["waiting_for"] for s in q["not_yet_queued"]}
    assert waiting_for["nst"] == ["after the fasting exams (she has not eaten yet)"]


async def test_fasting_mothers_go_first_at_the_blood_draw(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00", per_hour=8)
    # Booked first, not fasting: a cbc-only draw (her OGTT order is cancelled).
    early = await arrive(api, serial="101")
    await without_ogtt(api, early)
    fasting = await arrive(api, serial="102", butler="butler2")
    called = await call(api, "LAB")
    assert called["called"]["mrn"] == fasting["mother"]["mrn"]


async def test_an_urgent_mother_is_called_first(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    second = await arrive(api, serial="102", butler="butler2")
    flagged = await api.client.post(
        f"/v1/visits/{second['visit']['id']}/urgent",
        headers=api.auth("doctor"),
        json={"urgent": True, "reason": "headache and blurred vision"},
    )
    assert flagged.status_code == 200, flagged.text
    assert all(p["urgent"] for p in flagged.json()["places"])
    assert (await call(api, "VIT"))["called"]["mrn"] == second["mother"]["mrn"]
    no_reason = await api.client.post(
        f"/v1/visits/{second['visit']['id']}/urgent",
        headers=api.auth("doctor"),
        json={"urgent": True},
    )
    assert_problem(no_reason, 422)


async def test_a_no_show_rejoins_after_the_delay_keeping_her_ticket(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY)
    first = await arrive(api, serial="101")
    second = await arrive(api, serial="102", butler="butler2")
    called = (await call(api, "VIT"))["called"]["entry"]
    assert called["mother_id"] == first["mother"]["id"]
    recalled = await op(api, called["id"], "recall")
    assert recalled.json()["recalls"] == 1
    missed = await op(api, called["id"], "no-show")
    assert missed.status_code == 200, missed.text
    rejoined = missed.json()
    assert rejoined["ticket"] == called["ticket"]
    assert rejoined["previous_id"] == called["id"]
    assert rejoined["no_shows"] == 1
    assert rejoined["available_at"] == "2026-11-28T02:10:00Z"
    assert (await call(api, "VIT", 1))["called"]["mrn"] == second["mother"]["mrn"]
    q = await visit_queue(api, first["visit"]["id"])
    assert [h["state"] for h in q["history"] if h["station"] == "VIT"] == ["no_show"]


async def test_a_transfer_keeps_her_fairness_and_needs_the_same_kind(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api)
    created = await api.client.post(
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "vit2", "name": "Vitals, 2nd floor", "station_type": "vitals"},
    )
    assert created.status_code == 201, created.text
    q = await visit_queue(api, her["visit"]["id"])
    vit = next(p for p in q["places"] if p["station"] == "VIT")
    moved = await api.client.post(
        f"/v1/queue-entries/{vit['id']}/transfer",
        headers=api.auth("frontdesk"),
        json={"station": "VIT2"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["ticket"] == "VIT2-001"
    assert moved.json()["previous_id"] == vit["id"]
    lab = next(p for p in q["places"] if p["station"] == "LAB")
    wrong = await api.client.post(
        f"/v1/queue-entries/{lab['id']}/transfer",
        headers=api.auth("frontdesk"),
        json={"station": "VIT2"},
    )
    assert_problem(wrong, 422)


async def test_closing_a_station_moves_its_queue_to_a_sibling(api: Api) -> None:
    await open_session(api, day=TODAY)
    await api.client.post(
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "US2", "name": "Ultrasound 2", "station_type": "ultrasound"},
    )
    her = await arrive(api, extra_exams=["us_obstetric"])
    place = next(
        p
        for p in (await visit_queue(api, her["visit"]["id"]))["places"]
        if p["station_type"] == "ultrasound"
    )
    stale = await api.client.patch(
        f"/v1/stations/{place['station']}", headers=api.auth("admin"), json={"is_open": False}
    )
    assert_problem(stale, 428)
    closed = await api.client.patch(
        f"/v1/stations/{place['station']}",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"is_open": False},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["is_open"] is False
    assert closed.json()["waiting"] == 0
    after = [
        p
        for p in (await visit_queue(api, her["visit"]["id"]))["places"]
        if p["station_type"] == "ultrasound"
    ]
    assert [p["station"] for p in after] == [{"US": "US2", "US2": "US"}[place["station"]]]


async def test_the_board_shows_tickets_and_masked_names_only(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    await arrive(api, serial="102", butler="butler2", name="李娜")
    await call(api, "VIT")
    board = await api.client.get("/v1/stations/VIT/board")
    assert board.status_code == 200
    [calling] = board.json()["now_calling"]
    assert (calling["ticket"], calling["masked_name"], calling["room"]) == ("VIT-001", "王*琪", 1)
    assert [(t["ticket"], t["masked_name"]) for t in board.json()["next"]] == [("VIT-002", "李*")]
    assert "王小琪" not in board.text
    page = await api.client.get("/v1/stations/VIT/board.html", follow_redirects=False)
    assert page.headers["location"] == "/console/tv.html?stations=VIT"  # the console's TV
    assert (await api.client.get("/v1/stations/NOPE/board")).status_code == 404


async def test_a_butler_sees_her_own_mothers_queue_only(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api)
    await visit_queue(api, her["visit"]["id"], who="butler1")
    other = await api.client.get(
        f"/v1/visits/{her['visit']['id']}/queue", headers=api.auth("butler2")
    )
    assert_problem(other, 404)


async def test_service_times_are_learned(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    await arrive(api)
    entry = (await call(api, "VIT"))["called"]["entry"]
    await op(api, entry["id"], "start")
    clock.advance(timedelta(minutes=8))
    await op(api, entry["id"], "finish")
    async with session_factory() as session:
        vitals = await session.scalar(select(ExamType).where(ExamType.code == "vitals"))
    assert vitals is not None
    assert vitals.learned_samples == 1
    assert vitals.learned_service_minutes == 8.0


async def test_her_butler_sees_her_queues_live_and_the_etag_moves_with_them(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", butler="butler2")  # ahead of her at every station
    await arrive(api, serial="102")

    async def mine() -> tuple[str, dict[str, Any]]:
        response = await api.client.get("/v1/me/assignments", headers=api.auth("butler1"))
        assert response.status_code == 200, response.text
        visit = next(i for i in response.json()["items"] if i["kind"] == "visit")
        return response.headers["etag"], visit["queue"]

    etag, queue = await mine()
    places = {p["station"]: p for p in queue["places"]}
    assert places["VIT"]["ticket"] == "VIT-002"
    assert places["VIT"]["position"] == 2
    assert places["VIT"]["estimated_wait_minutes"] == 3  # the vitals before hers
    assert (queue["steps_done"], queue["steps_total"]) == (0, 7)
    assert queue["next_station"] is not None
    same = await api.client.get(
        "/v1/me/assignments", headers={**api.auth("butler1"), "If-None-Match": etag}
    )
    assert same.status_code == 304
    called = await call(api, "VIT")  # the other mother: hers moves up
    assert called["called"]["entry"]["ticket"] == "VIT-001"
    moved = await api.client.get(
        "/v1/me/assignments", headers={**api.auth("butler1"), "If-None-Match": etag}
    )
    assert moved.status_code == 200
    etag, queue = await mine()
    assert {p["station"]: p["position"] for p in queue["places"]}["VIT"] == 1
    ours = (await call(api, "URI"))["called"]
    assert ours["entry"]["mother_id"] != called["called"]["entry"]["mother_id"]
    _etag, queue = await mine()
    uri = next(p for p in queue["places"] if p["station"] == "URI")
    assert (uri["state"], uri["room"]) == ("called", 1)
    assert queue["next_station"] is None  # she is busy: no suggestion
