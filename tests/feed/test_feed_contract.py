"""The feed's contract for the phone: every event says what it is about (ref_type, ref_id) so
that the phone can fetch it, and every cursor is one type (a string of digits)."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.feed import task
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.queues import arrive, call
from tests.helpers.visits import TODAY, checked_in_mother, open_session, order_number


async def _events(api: Api, after: str = "0") -> dict[str, Any]:
    response = await api.client.get(
        "/v1/me/events", params={"after": after}, headers=api.auth("butler1")
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_every_feed_event_says_what_it_is_about(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)  # her assignment, her visit, her queues
    created = await task(api, mother["id"])
    done = await api.client.post(
        f"/v1/me/tasks/{created['id']}/complete", headers=api.auth("butler1")
    )
    assert done.status_code == 200, done.text  # no body: every field of it is optional
    await call(api, "VIT")  # a queue moves
    await lab.hl7(oru(control_id="REF-1", mrn=mother["mrn"], order=order_number(visit)))
    events = (await _events(api))["events"]
    kinds = {e["kind"] for e in events}
    assert {"task.created", "queue.changed", "report.ready"} <= kinds, kinds
    missing = [e["kind"] for e in events if e["ref_type"] is None or e["ref_id"] is None]
    assert missing == []
    by_kind = {e["kind"]: e for e in events}
    assert (by_kind["task.created"]["ref_type"], by_kind["task.created"]["ref_id"]) == (
        "task",
        created["id"],
    )
    # One mother of hers in the move: about her.
    assert (by_kind["queue.changed"]["ref_type"], by_kind["queue.changed"]["ref_id"]) == (
        "mother",
        mother["id"],
    )
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    assert (by_kind["report.ready"]["ref_type"], by_kind["report.ready"]["ref_id"]) == (
        "report",
        report["id"],
    )


async def test_every_cursor_is_a_string_of_digits_and_the_old_form_still_works(api: Api) -> None:
    mother, _ = await checked_in_mother(api)
    for i in range(3):
        await task(api, mother["id"], f"task {i}")
    page = await _events(api)
    assert isinstance(page["next_cursor"], str)
    assert all(e["cursor"] == str(e["seq"]) for e in page["events"])
    middle = page["events"][1]["cursor"]
    # ?after= takes any cursor it was given; a number sent by an old client is the same text.
    resumed = await _events(api, after=middle)
    assert [e["seq"] for e in resumed["events"]] == [e["seq"] for e in page["events"][2:]]
    old = await api.client.get(
        "/v1/me/events", params={"after": int(middle)}, headers=api.auth("butler1")
    )
    assert old.json() == resumed
    mine = (await api.client.get("/v1/me/assignments", headers=api.auth("butler1"))).json()
    assert mine["cursor"] == str(mine["version"]) == page["next_cursor"]
    empty = await _events(api, after=mine["cursor"])
    assert (empty["events"], empty["next_cursor"]) == ([], mine["cursor"])
    bad = await api.client.get("/v1/me/events?after=-1", headers=api.auth("butler1"))
    assert bad.status_code == 422
    schema = (await api.client.get("/openapi.json")).json()
    params = schema["paths"]["/v1/me/events"]["get"]["parameters"]
    after = next(p for p in params if p["name"] == "after")
    assert after["schema"]["type"] == "string"


async def test_a_queue_move_of_two_of_her_mothers_is_about_the_station(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="102")
    await arrive(api, serial="103")
    before = (await _events(api))["next_cursor"]
    called = await call(api, "VIT")
    moved = [
        e for e in (await _events(api, after=before))["events"] if e["kind"] == "queue.changed"
    ]
    assert moved, called
    assert {e["ref_type"] for e in moved} == {"station"}
    stations = (await api.client.get("/v1/stations", headers=api.auth("admin"))).json()
    vit = next(s for s in stations["items"] if s["code"] == "VIT")
    assert {e["ref_id"] for e in moved} == {vit["id"]}
