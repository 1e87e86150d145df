"""Retries from the butler's phone are safe: a pick-up or delivery already done answers the same
200 again and changes nothing; done with another place or note it is a 409 that says so."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.feed.models import FeedEvent
from app.reports.models import ReportEvent
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.problems import assert_problem
from tests.helpers.visits import checked_in_mother, order_number


async def _ready_report(api: Api, lab: Lab) -> dict[str, Any]:
    mother, visit = await checked_in_mother(api)
    await lab.hl7(oru(control_id="RETRY-1", mrn=mother["mrn"], order=order_number(visit)))
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    assert report["pickup_state"] == "ready"
    return report


async def _counts(factory: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with factory() as session:
        events = await session.scalar(select(func.count()).select_from(ReportEvent))
        feed = await session.scalar(select(func.count()).select_from(FeedEvent))
    return int(events or 0), int(feed or 0)


async def test_a_repeated_pick_up_and_delivery_answer_the_same_and_change_nothing(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    report = await _ready_report(api, lab)
    path = f"/v1/reports/{report['id']}"
    pick = {"place": "Lab counter 2"}
    first = await api.client.post(f"{path}/pick-up", headers=api.auth("butler1"), json=pick)
    assert first.status_code == 200, first.text
    before = await _counts(session_factory)
    again = await api.client.post(f"{path}/pick-up", headers=api.auth("butler1"), json=pick)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await _counts(session_factory) == before  # no second event, no feed bump

    note = {"note": "Explained: all normal."}
    delivered = await api.client.post(f"{path}/deliver", headers=api.auth("butler1"), json=note)
    assert delivered.status_code == 200, delivered.text
    before = await _counts(session_factory)
    for _ in range(2):
        retry = await api.client.post(f"{path}/deliver", headers=api.auth("butler1"), json=note)
        assert retry.status_code == 200, retry.text
        assert retry.json() == delivered.json()
    # A late retry of the pick-up, after the delivery: done, so the same state again.
    late = await api.client.post(f"{path}/pick-up", headers=api.auth("butler1"), json=pick)
    assert (late.status_code, late.json()["pickup_state"]) == (200, "delivered")
    assert await _counts(session_factory) == before


async def test_a_delivery_repeated_with_another_note_is_refused_not_overwritten(
    api: Api, lab: Lab
) -> None:
    report = await _ready_report(api, lab)
    path = f"/v1/reports/{report['id']}"
    await api.client.post(f"{path}/pick-up", headers=api.auth("butler1"), json={"place": "Lab"})
    await api.client.post(f"{path}/deliver", headers=api.auth("butler1"), json={"note": "First."})
    other = await api.client.post(
        f"{path}/deliver", headers=api.auth("butler1"), json={"note": "Something else."}
    )
    problem = assert_problem(other, 409)
    assert problem["current_state"] == "delivered"
    assert "delivered already, with another delivery note" in str(problem["detail"])
    moved = await api.client.post(
        f"{path}/pick-up", headers=api.auth("butler1"), json={"place": "Elsewhere"}
    )
    assert "picked up already" in str(assert_problem(moved, 409)["detail"])
    kept = (await api.client.get(path, headers=api.auth("butler1"))).json()
    assert (kept["delivery_note"], kept["pickup_place"]) == ("First.", "Lab")


async def test_delivering_before_the_pick_up_is_still_refused(api: Api, lab: Lab) -> None:
    report = await _ready_report(api, lab)
    early = await api.client.post(
        f"/v1/reports/{report['id']}/deliver", headers=api.auth("butler1"), json={"note": "x y z"}
    )
    assert assert_problem(early, 409)["current_state"] == "ready"
