"""The desk's lists: a day's visits (masked names, butlers, tickets), the booking calendar's
places left, and a check-in scan that never silently makes a walk-in of a booked mother."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import call
from tests.helpers.visits import TODAY, TUESDAY, book, check_in, open_session


async def _list(api: Api, who: str = "frontdesk", **params: Any) -> Any:
    return await api.client.get("/v1/visits", headers=api.auth(who), params=params)


async def test_the_day_lists_each_visit_with_masked_name_butlers_and_tickets(api: Api) -> None:
    await open_session(api, day=TODAY)
    tuesday = await open_session(api)
    wang = await mother_with_butler(api, serial="101", name="王小琪")
    li = await mother_with_butler(api, serial="102", butler="butler2", name="李娜")
    later = await mother_with_butler(api, serial="103", name="张三丰")
    assert (await check_in(api, mrn=wang["mrn"])).status_code == 200
    assert (await check_in(api, mrn=li["mrn"])).status_code == 200
    assert (await book(api, later["id"], tuesday["id"])).status_code == 201
    await call(api, "VIT")

    listed = await _list(api)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["day"] == TODAY
    assert [i["mother_masked_name"] for i in body["items"]] == ["王*琪", "李*"]
    assert "王小琪" not in listed.text
    assert "李娜" not in listed.text
    first = body["items"][0]
    assert first["mother_mrn"] == wang["mrn"]
    assert first["status"] == "checked_in"
    assert first["walk_in"] is True
    assert first["checked_in_at"] == "2026-11-28T02:00:00Z"
    assert first["local_time"] == "10:00"
    assert first["primary_butler_name"] == "Butler1"
    assert "Butler1" in first["butler_names"]
    tickets = {t["ticket"]: t for t in first["tickets"]}
    assert tickets["VIT-001"]["state"] == "called"
    assert tickets["VIT-001"]["room"] == 1
    assert tickets["VIT-001"]["station_name"]
    assert body["items"][1]["primary_butler_name"] == "Butler2"
    assert body["counts"]["checked_in"] == 2

    tue = (await _list(api, "doctor", date=TUESDAY)).json()
    assert [i["mother_masked_name"] for i in tue["items"]] == ["张*丰"]
    assert tue["items"][0]["tickets"] == []
    only = (await _list(api, status="booked", date=TUESDAY)).json()["items"]
    assert len(only) == 1
    assert (await _list(api, status="completed")).json()["items"] == []
    hers = (await _list(api, "nutritionist", mother_id=later["id"])).json()
    assert hers["day"] is None  # every visit of hers
    assert [i["visit_date"] for i in hers["items"]] == [TUESDAY]
    assert_problem(await _list(api, status="nonsense"), 422)
    assert_problem(await _list(api, "station"), 403)


async def test_a_butler_lists_her_own_mothers_only(api: Api) -> None:
    await open_session(api, day=TODAY)
    mine = await mother_with_butler(api, serial="101", name="王小琪")
    theirs = await mother_with_butler(api, serial="102", butler="butler2", name="李娜")
    for mother in (mine, theirs):
        assert (await check_in(api, mrn=mother["mrn"])).status_code == 200
    listed = (await _list(api, "butler1")).json()
    assert [i["mother_id"] for i in listed["items"]] == [mine["id"]]
    assert_problem(await _list(api, "butler1", mother_id=theirs["id"]), 404)
    assert (await _list(api, "butler1", mother_id=mine["id"])).status_code == 200


async def test_the_list_is_audited_per_mother_shown(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    mother = await mother_with_butler(api, serial="101")
    assert (await check_in(api, mrn=mother["mrn"])).status_code == 200
    assert (await _list(api)).status_code == 200
    async with session_factory() as session:
        rows = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "visit.list"))
        )
    assert [(r.resource_type, r.resource_id, r.role) for r in rows] == [
        ("mother", mother["id"], "front_desk")
    ]


async def test_the_calendar_shows_places_left_per_session_and_hour(api: Api) -> None:
    session = await open_session(api, per_hour=2, starts="08:00", ends="10:00")
    for serial in ("101", "102", "103"):
        mother = await mother_with_butler(api, serial=serial, phone=f"13800000{serial}")
        assert (await book(api, mother["id"], session["id"])).status_code == 201
    listed = await api.client.get(
        "/v1/clinic-sessions",
        headers=api.auth("frontdesk"),
        params={"from": TUESDAY, "to": TUESDAY},
    )
    [only] = listed.json()["items"]
    assert only["capacity"] == 4
    assert only["booked"] == 3
    assert only["places_left"] == 1
    assert [(h["starts_at"][:5], h["booked"], h["places_left"]) for h in only["hours"]] == [
        ("08:00", 2, 0),
        ("09:00", 1, 1),
    ]
    # Today's hours already begun or past take no booking: at 10:00, 08:00 and 09:00 are gone.
    await open_session(api, day=TODAY, starts="08:00", ends="12:00", per_hour=1)
    today = await api.client.get(
        "/v1/clinic-sessions", headers=api.auth("frontdesk"), params={"from": TODAY, "to": TODAY}
    )
    [now] = today.json()["items"]
    assert [h["places_left"] for h in now["hours"]] == [0, 0, 1, 1]
    assert now["places_left"] == 2


async def test_a_scan_is_trimmed_and_its_case_ignored(api: Api) -> None:
    await open_session(api, day=TODAY)
    mother = await mother_with_butler(api, serial="101", mrn="MRN0001")
    first = await check_in(api, scan="  mrn 0001\n")
    assert first.status_code == 200, first.text
    assert first.json()["mother_id"] == mother["id"]
    again = await check_in(api, mrn="mrn0001 ")
    assert again.json()["already_checked_in"] is True
    by_code = await check_in(api, scan=f" {first.json()['id'].upper()} ")
    assert by_code.json()["id"] == first.json()["id"]
    assert_problem(await check_in(api, scan="   "), 422)
    assert_problem(await check_in(api, scan="MRN0002"), 404)


async def test_booked_on_another_day_is_a_409_naming_it_not_a_silent_walk_in(api: Api) -> None:
    await open_session(api, day=TODAY)
    tuesday = await open_session(api)
    mother = await mother_with_butler(api, serial="101")
    booked = (await book(api, mother["id"], tuesday["id"], preferred_time="09:00")).json()
    body = assert_problem(await check_in(api, scan=mother["mrn"].lower()), 409)
    assert body["type"] == "/problems/booked-another-day"
    assert body["booked_on"] == TUESDAY
    assert body["booked_time"] == "09:00"
    assert body["visit_id"] == booked["id"]
    assert TUESDAY in str(body["detail"])
    # Nothing was made: no visit today.
    assert (await _list(api)).json()["items"] == []
    # The desk confirms: a walk-in today; her Tuesday booking stays.
    walk_in = await check_in(api, mrn=mother["mrn"], walk_in=True)
    assert walk_in.status_code == 200, walk_in.text
    assert walk_in.json()["walk_in"] is True
    assert (await _list(api, date=TUESDAY)).json()["items"][0]["status"] == "booked"
