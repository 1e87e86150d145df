"""Clinic sessions, booking, check-in, the status machine and the views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import BookingOutsideWindow
from app.notifications.models import OutboxMessage
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.notices import assert_desk_can_say
from tests.helpers.problems import assert_problem
from tests.helpers.visits import TODAY, TUESDAY, book, check_in, open_session


async def test_sessions_have_hourly_capacity(api: Api) -> None:
    created = await api.client.post(
        "/v1/clinic-sessions",
        headers=api.auth("admin"),
        json={
            "session_date": TUESDAY,
            "starts_at": "08:00",
            "ends_at": "12:00",
            "per_hour": 8,
            "repeat_weeks": 2,
        },
    )
    days = [s["session_date"] for s in created.json()["items"]]
    assert days == ["2026-12-01", "2026-12-08", "2026-12-15"]
    listed = await api.client.get(
        "/v1/clinic-sessions",
        headers=api.auth("frontdesk"),
        params={"from": TUESDAY, "to": "2026-12-31"},
    )
    first = listed.json()["items"][0]
    assert (first["capacity"], first["booked"], first["available"]) == (32, 0, 32)


async def test_booking_places_her_in_the_first_free_hour_and_window(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    response = await book(api, mother["id"], session["id"])
    assert response.status_code == 201, response.text
    visit = response.json()
    assert visit["status"] == "booked"
    assert visit["scheduled_at"] == "2026-12-01T00:00:00Z"  # 08:00 in Shanghai
    assert visit["window_code"] == "w25"  # 26+1 on that day
    assert visit["warnings"] == []
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler1"].id)
    assert response.headers["location"] == f"/v1/visits/{visit['id']}"


async def test_a_misspelt_field_is_a_422_naming_it_and_books_nothing(api: Api) -> None:
    """A desk integration that sends `prefered_time` must hear of it, not get her booked at
    the session's first free hour (issue 19 probe); a flag given as a string is refused too."""
    session = await open_session(api)
    mother = await mother_with_butler(api)
    desk = api.auth("frontdesk")
    for extra, field in (
        ({"prefered_time": "15:30"}, "prefered_time"),
        ({"override_capacity": "yes", "override_reason": "full"}, "override_capacity"),
    ):
        body = {"mother_id": mother["id"], "session_id": session["id"], **extra}
        problem = assert_problem(await api.client.post("/v1/visits", headers=desk, json=body), 422)
        assert field in str(problem["errors"]), problem
    listed = await api.client.get("/v1/visits", headers=desk, params={"mother_id": mother["id"]})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    # Spelt right, she is booked.
    assert (await book(api, mother["id"], session["id"])).status_code == 201
    listed = await api.client.get("/v1/visits", headers=desk, params={"mother_id": mother["id"]})
    assert len(listed.json()["items"]) == 1


async def test_a_full_session_is_409(api: Api) -> None:
    session = await open_session(api, starts="08:00", ends="09:00", per_hour=1)
    first = await mother_with_butler(api, serial="101", phone="13800000101")
    second = await mother_with_butler(api, serial="102", phone="13800000102")
    assert (await book(api, first["id"], session["id"])).status_code == 201
    body = assert_problem(await book(api, second["id"], session["id"]), 409)
    assert body["type"] == "/problems/session-full"


async def test_a_second_visit_the_same_day_is_409(api: Api) -> None:
    morning = await open_session(api)
    afternoon = await open_session(api, starts="13:00", ends="17:00")
    mother = await mother_with_butler(api)
    assert (await book(api, mother["id"], morning["id"])).status_code == 201
    body = assert_problem(await book(api, mother["id"], afternoon["id"]), 409)
    assert body["type"] == "/problems/already-booked"


async def test_a_date_outside_the_window_is_booked_with_a_warning(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    response = await book(api, mother["id"], session["id"], window_code="w14")
    assert response.status_code == 201
    assert "outside the window" in response.json()["warnings"][0]
    # The same, with its code and values: the desk says it in Chinese.
    (notice,) = [n for n in response.json()["notices"] if n["code"] == "outside-window"]
    assert notice["text"] == response.json()["warnings"][0]
    assert (notice["params"]["window"], notice["params"]["from"]) == ("w14", "14+0")
    assert_desk_can_say(notice)
    assert_problem(await book(api, mother["id"], session["id"], window_code="w99"), 422)


@pytest.fixture
def refuse_outside_window(settings: Any) -> None:
    object.__setattr__(settings, "booking_outside_window", BookingOutsideWindow.REFUSE)


@pytest.mark.usefixtures("refuse_outside_window")
async def test_the_setting_can_refuse_a_date_outside_the_window(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    body = assert_problem(await book(api, mother["id"], session["id"], window_code="w14"), 409)
    assert body["type"] == "/problems/outside-care-plan-window"


async def test_reschedule_and_cancel_keep_the_history(api: Api) -> None:
    first = await open_session(api)
    second = await open_session(api, day="2026-12-08", per_hour=2)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], first["id"])).json()
    moved = await api.client.post(
        f"/v1/visits/{visit['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={
            "session_id": second["id"],
            "preferred_time": "10:30",
            "reason": "she travels that day",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["scheduled_at"] == "2026-12-08T02:00:00Z"  # the 10:00 hour
    cancelled = await api.client.post(
        f"/v1/visits/{visit['id']}/cancel",
        headers=api.auth("frontdesk"),
        json={"reason": "admitted elsewhere"},
    )
    assert cancelled.json()["status"] == "cancelled"
    detail = (
        await api.client.get(f"/v1/visits/{visit['id']}", headers=api.auth("frontdesk"))
    ).json()
    assert [(h["from_status"], h["to_status"]) for h in detail["history"]] == [
        (None, "booked"),
        ("booked", "booked"),
        ("booked", "cancelled"),
    ]
    assert "she travels that day" in detail["history"][1]["reason"]
    # The cancelled visit gave its place back.
    sessions = await api.client.get(
        "/v1/clinic-sessions",
        headers=api.auth("frontdesk"),
        params={"from": "2026-12-08", "to": "2026-12-08"},
    )
    assert sessions.json()["items"][0]["booked"] == 0


async def test_the_end_of_day_sweep_marks_no_shows(api: Api, clock: FrozenClock) -> None:
    session = await open_session(api)
    other = await open_session(api, day="2026-12-02")
    absent = await mother_with_butler(api, serial="201", phone="13800000201")
    tomorrow = await mother_with_butler(api, serial="202", phone="13800000202")
    v1 = (await book(api, absent["id"], session["id"])).json()
    v2 = (await book(api, tomorrow["id"], other["id"])).json()
    clock.advance(timedelta(days=3, hours=3))  # Tuesday 13:00 in Shanghai
    result = await api.client.post(
        "/v1/visits/no-show-sweep", headers=api.auth("frontdesk"), json={}
    )
    assert result.json()["marked_no_show"] == [v1["id"]]
    still = await api.client.get(f"/v1/visits/{v2['id']}", headers=api.auth("frontdesk"))
    assert still.json()["status"] == "booked"
    future = await api.client.post(
        "/v1/visits/no-show-sweep", headers=api.auth("frontdesk"), json={"day": "2026-12-05"}
    )
    assert_problem(future, 422)


async def test_check_in_creates_the_days_orders_and_tells_the_butler(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    today = await open_session(api, day=TODAY)
    mother = await mother_with_butler(api)
    booked = (await book(api, mother["id"], today["id"], preferred_time="10:00")).json()
    first = await check_in(api, mrn=mother["mrn"], extra_exams=["us_obstetric", "cbc"])
    assert first.status_code == 200, first.text
    visit = first.json()
    assert visit["id"] == booked["id"]
    assert visit["status"] == "checked_in"
    assert visit["already_checked_in"] is False
    assert visit["arrived_at"] == "2026-11-28T02:00:00Z"
    orders = {o["exam_code"]: o["source"] for o in visit["exam_orders"]}
    # Her first visit here at 25+5: the booking panel whatever the week (its fasting glucose
    # is the OGTT's fasting draw), the window's OGTT, the anatomy scan as a catch-up.
    assert orders == {
        "vitals": "care_plan",
        "consultation": "care_plan",
        "cbc": "care_plan",
        "urine": "care_plan",
        "abo_rh": "care_plan",
        "liver_kidney": "care_plan",
        "hbsag": "care_plan",
        "syphilis": "care_plan",
        "hiv": "care_plan",
        "ogtt": "care_plan",
        "us_anatomy": "care_plan",
        "us_obstetric": "added",
    }
    assert all(o["order_number"].startswith("ORD-") for o in visit["exam_orders"])

    again = await check_in(api, visit_id=visit["id"])
    assert again.json()["id"] == visit["id"]
    assert again.json()["already_checked_in"] is True
    assert len(again.json()["exam_orders"]) == len(orders)

    async with session_factory() as session:
        messages = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "visit.checked_in")
            )
        )
    assert [(m.topic, m.butler_id) for m in messages] == [
        ("visit.checked_in", api.staff.butlers["butler1"].id)
    ]
    assert messages[0].payload == {"visit_id": visit["id"], "session_id": today["id"]}


async def test_a_walk_in_gets_a_place_when_a_session_has_room(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="12:00", per_hour=1)
    mother = await mother_with_butler(api)
    response = await check_in(api, mrn=mother["mrn"])
    assert response.status_code == 200, response.text
    visit = response.json()
    assert visit["walk_in"] is True
    assert visit["status"] == "checked_in"
    assert visit["window_code"] == "w25"
    assert visit["scheduled_at"] == "2026-11-28T02:00:00Z"  # the current 10:00 hour
    other = await mother_with_butler(api, serial="301", butler="butler2", phone="13800000301")
    late = await check_in(api, mrn=other["mrn"])
    assert late.json()["scheduled_at"] == "2026-11-28T03:00:00Z"  # the 11:00 hour
    third = await mother_with_butler(api, serial="302", butler="butler2", phone="13800000302")
    body = assert_problem(await check_in(api, mrn=third["mrn"]), 409)
    assert body["type"] == "/problems/session-full"


async def test_check_in_refuses_unknown_scans_and_other_days(api: Api) -> None:
    assert_problem(await check_in(api, mrn="NOSUCH"), 404)
    assert_problem(
        await check_in(api, mrn="x", visit_id="01a221b4-0000-7000-8000-000000000000"), 422
    )
    session = await open_session(api)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], session["id"])).json()
    body = assert_problem(await check_in(api, visit_id=visit["id"]), 409)
    assert "2026-12-01" in str(body["detail"])
    assert_problem(await check_in(api, mrn=mother["mrn"], extra_exams=["xray"]), 422)


async def test_illegal_transitions_are_409_naming_both_states(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], session["id"])).json()
    body = assert_problem(
        await api.client.post(f"/v1/visits/{visit['id']}/complete", headers=api.auth("doctor")), 409
    )
    assert (body["current_status"], body["requested_status"]) == ("booked", "completed")
    assert body["type"] == "/problems/illegal-visit-transition"
    future_no_show = await api.client.post(
        f"/v1/visits/{visit['id']}/no-show", headers=api.auth("frontdesk")
    )
    assert_problem(future_no_show, 409)


async def test_a_visit_runs_from_check_in_to_completed(api: Api) -> None:
    session = await open_session(api, day=TODAY)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], session["id"], preferred_time="10:00")).json()
    await check_in(api, mrn=mother["mrn"])
    started = await api.client.post(f"/v1/visits/{visit['id']}/start", headers=api.auth("station"))
    assert started.json()["status"] == "in_progress"
    done = await api.client.post(f"/v1/visits/{visit['id']}/complete", headers=api.auth("doctor"))
    assert done.json()["status"] == "completed"
    again = await api.client.post(
        f"/v1/visits/{visit['id']}/cancel",
        headers=api.auth("frontdesk"),
        json={"reason": "too late"},
    )
    body = assert_problem(again, 409)
    assert body["current_status"] == "completed"
    order = await api.client.post(
        f"/v1/visits/{visit['id']}/exam-orders",
        headers=api.auth("doctor"),
        json={"exam_code": "nst"},
    )
    assert_problem(order, 409)


async def test_doctor_adds_an_order_once(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], session["id"])).json()
    path = f"/v1/visits/{visit['id']}/exam-orders"
    added = await api.client.post(path, headers=api.auth("doctor"), json={"exam_code": "nst"})
    assert added.status_code == 201, added.text
    assert added.json()["source"] == "added"
    assert_problem(
        await api.client.post(path, headers=api.auth("doctor"), json={"exam_code": "nst"}), 409
    )
    assert_problem(
        await api.client.post(path, headers=api.auth("doctor"), json={"exam_code": "mri"}), 422
    )


async def test_the_board_counts_each_state(api: Api) -> None:
    session = await open_session(api, day=TODAY)
    a = await mother_with_butler(api, serial="401", phone="13800000401")
    b = await mother_with_butler(api, serial="402", phone="13800000402")
    await book(api, a["id"], session["id"], preferred_time="11:00")
    await book(api, b["id"], session["id"], preferred_time="11:00")
    await check_in(api, mrn=a["mrn"])
    board = (await api.client.get("/v1/visits/board", headers=api.auth("frontdesk"))).json()
    (row,) = board["sessions"]
    assert row["counts"]["booked"] == 1
    assert row["counts"]["checked_in"] == 1
    assert {v["mrn"] for v in row["visits"]} == {a["mrn"], b["mrn"]}
    assert_problem(await api.client.get("/v1/visits/board", headers=api.auth("butler1")), 403)


async def test_the_care_plan_shows_windows_and_visits(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    visit = (await book(api, mother["id"], session["id"])).json()
    response = await api.client.get(
        f"/v1/mothers/{mother['id']}/care-plan", headers=api.auth("butler1")
    )
    assert response.status_code == 200, response.text
    care = response.json()
    assert care["guideline_code"] == "cn-2018"
    assert care["gestational_age"] == "25+5"
    status = {w["code"]: w["status"] for w in care["windows"]}
    assert status["w06"] == "before_enrolment"  # enrolled today at 25+5
    assert status["w25"] == "booked"
    assert status["w29"] == "upcoming"
    assert [v["id"] for v in care["upcoming_visits"]] == [visit["id"]]
    w25 = next(w for w in care["windows"] if w["code"] == "w25")
    assert w25["visit_ids"] == [visit["id"]]
    assert {e["code"] for e in w25["exams"]} == {"ogtt", "cbc", "urine"}

    # Re-dating by ultrasound regenerates the plan and keeps the dating history: a CRL at
    # 8+0 by LMP measuring 7+0 is 7 days off, past ACOG 700's 5 days (issue 20).
    redated = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={
            "pregnancy": {
                "ultrasound": {
                    "scan_date": "2026-07-27",
                    "measurement": "crl",
                    "value_mm": 10,
                    "ga": "7+0",
                },
                "dating_reason": "early scan",
            }
        },
    )
    assert redated.status_code == 200, redated.text
    care = (
        await api.client.get(f"/v1/mothers/{mother['id']}/care-plan", headers=api.auth("doctor"))
    ).json()
    assert care["gestational_age"] == "24+5"
    assert {w["code"]: w["status"] for w in care["windows"]}["w20"] == "due"
    history = (
        await api.client.get(
            f"/v1/mothers/{mother['id']}/dating-history", headers=api.auth("doctor")
        )
    ).json()
    assert [
        (c["dating_method"], c["edd_date"], c["previous_edd_date"]) for c in history["changes"]
    ] == [
        ("lmp", "2027-03-08", None),
        ("ultrasound", "2027-03-15", "2027-03-08"),
    ]
    assert history["changes"][1]["reason"].startswith("early scan")


async def test_a_butler_sees_only_her_mothers_visits(api: Api) -> None:
    session = await open_session(api)
    mine = await mother_with_butler(api, serial="501", phone="13800000501")
    theirs = await mother_with_butler(api, serial="502", butler="butler2", phone="13800000502")
    v1 = (await book(api, mine["id"], session["id"])).json()
    v2 = (await book(api, theirs["id"], session["id"])).json()
    assert (
        await api.client.get(f"/v1/visits/{v1['id']}", headers=api.auth("butler1"))
    ).status_code == 200
    assert_problem(await api.client.get(f"/v1/visits/{v2['id']}", headers=api.auth("butler1")), 404)
    assert_problem(
        await api.client.get(f"/v1/mothers/{theirs['id']}/care-plan", headers=api.auth("butler1")),
        404,
    )


async def test_today_books_from_the_current_hour_on(api: Api) -> None:
    session = await open_session(api, day=TODAY)  # 08:00-12:00; it is 10:00
    mother = await mother_with_butler(api)
    body = assert_problem(await book(api, mother["id"], session["id"], preferred_time="08:30"), 409)
    assert "passed" in str(body["detail"])
    visit = (await book(api, mother["id"], session["id"])).json()
    assert visit["scheduled_at"] == "2026-11-28T02:00:00Z"  # the 10:00 hour, not 08:00
