"""Scanning her booking's visit id on the wrong day (issue 17): a 409 naming the day, and when
the desk confirms (``"walk_in": true``, what desk.js resends) a walk-in today for the mother of
that visit, exactly as by her MRN; her booked visit stays as it is. Before, the confirmation
was answered with the same 409, so the desk's "make a walk-in" looped for ever."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.visits import TODAY, TUESDAY, book, check_in, open_session


async def _visits(api: Api, day: str) -> list[dict[str, Any]]:
    listed = await api.client.get("/v1/visits", headers=api.auth("frontdesk"), params={"date": day})
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_confirmed_walk_in_by_the_visit_id_of_another_day(api: Api) -> None:
    await open_session(api, day=TODAY)
    tuesday = await open_session(api)
    mother = await mother_with_butler(api, serial="101")
    booked = (await book(api, mother["id"], tuesday["id"], preferred_time="09:00")).json()
    scan = f" {booked['id'].upper()} "
    body = assert_problem(await check_in(api, scan=scan), 409)
    assert body["type"] == "/problems/booked-another-day"
    assert body["booked_on"] == TUESDAY
    assert body["visit_id"] == booked["id"]
    assert await _visits(api, TODAY) == []
    # The desk confirms, resending the same scan: a walk-in today, for her.
    walk_in = await check_in(api, scan=scan, walk_in=True)
    assert walk_in.status_code == 200, walk_in.text
    today = walk_in.json()
    assert today["walk_in"] is True
    assert today["mother_id"] == mother["id"]
    assert today["visit_date"] == TODAY
    assert today["id"] != booked["id"]
    assert today["already_checked_in"] is False
    # Her Tuesday booking is as it was.
    assert [(v["id"], v["status"]) for v in await _visits(api, TUESDAY)] == [
        (booked["id"], "booked")
    ]
    # A second confirmation (a double click) is the same walk-in, not another; so is her MRN.
    again = await check_in(api, scan=scan, walk_in=True)
    assert again.json()["id"] == today["id"]
    assert again.json()["already_checked_in"] is True
    by_mrn = await check_in(api, mrn=mother["mrn"], walk_in=True)
    assert by_mrn.json()["id"] == today["id"]
    assert [v["id"] for v in await _visits(api, TODAY)] == [today["id"]]
