"""A station account is bound to its station (issue 17): the ultrasound room's account cannot
run the blood draw; the admin still can, anywhere."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, visit_queue
from tests.helpers.visits import TODAY, open_session

US = "station-us"
LAB = "station-lab"


async def _places(api: Api) -> dict[str, Any]:
    await open_session(api, day=TODAY)
    her = await arrive(api, extra_exams=["us_obstetric"])
    q = await visit_queue(api, her["visit"]["id"])
    return {p["station"]: p for p in q["places"]}


def _wrong_station(response: Any, bound: str, at: str) -> None:
    body = assert_problem(response, 403)
    assert body["type"] == "/problems/wrong-station"
    assert body["station_code"] == bound
    assert body["station"] == at
    assert f"bound to station {bound}" in str(body["detail"])


async def test_the_ultrasound_account_is_refused_at_the_blood_draw(api: Api) -> None:
    places = await _places(api)
    lab_entry = places["LAB"]["id"]
    post = api.client.post
    us = api.auth(US)
    _wrong_station(
        await post("/v1/stations/LAB/call-next", headers=us, json={"room": 1}), "US", "LAB"
    )
    _wrong_station(await api.client.get("/v1/stations/LAB/queue", headers=us), "US", "LAB")
    for action, body in (
        ("recall", {}),
        ("start", {}),
        ("finish", {}),
        ("no-show", {}),
        ("glucose-drink", {"started_at": "2026-11-28T02:00:00Z"}),
        ("transfer", {"station": "LAB"}),
    ):
        refused = await post(f"/v1/queue-entries/{lab_entry}/{action}", headers=us, json=body)
        _wrong_station(refused, "US", "LAB")
    # Nothing moved: she still waits at the blood draw.
    lab = await api.client.get("/v1/stations/LAB/queue", headers=api.auth(LAB))
    assert lab.status_code == 200, lab.text
    assert [w["id"] for w in lab.json()["waiting"]] == [lab_entry]
    # A refusal is audited.
    audit = await api.client.get(
        "/v1/audit-events", headers=api.auth("admin"), params={"outcome": "denied"}
    )
    assert audit.status_code == 200, audit.text
    assert any(e["action"] == "queue.call" for e in audit.json()["items"])


async def test_the_ultrasound_account_runs_the_ultrasound_room(api: Api) -> None:
    places = await _places(api)
    us = api.auth(US)
    queue = await api.client.get("/v1/stations/US/queue", headers=us)
    assert queue.status_code == 200, queue.text
    called = await api.client.post("/v1/stations/US/call-next", headers=us, json={"room": 1})
    assert called.status_code == 200, called.text
    entry = called.json()["called"]["entry"]
    assert entry["id"] == places["US"]["id"]
    for action in ("recall", "start", "finish"):
        moved = await api.client.post(f"/v1/queue-entries/{entry['id']}/{action}", headers=us)
        assert moved.status_code == 200, (action, moved.text)
    assert moved.json()["state"] == "done"


async def test_the_admin_still_acts_at_every_station(api: Api) -> None:
    await _places(api)
    admin = api.auth("admin")
    for code in ("LAB", "US", "VIT"):
        assert (
            await api.client.get(f"/v1/stations/{code}/queue", headers=admin)
        ).status_code == 200
    called = await api.client.post("/v1/stations/LAB/call-next", headers=admin, json={"room": 1})
    assert called.status_code == 200, called.text
    entry = called.json()["called"]["entry"]["id"]
    assert (
        await api.client.post(f"/v1/queue-entries/{entry}/start", headers=admin)
    ).status_code == 200


async def test_me_and_the_user_views_show_the_station(api: Api) -> None:
    me = await api.client.get("/v1/auth/me", headers=api.auth(US))
    assert me.status_code == 200
    assert me.json()["station_code"] == "US"
    assert me.json()["role"] == "station"
    other = await api.client.get("/v1/auth/me", headers=api.auth("frontdesk"))
    assert other.json()["station_code"] is None
    user = await api.client.get(f"/v1/users/{api.staff.users[US].id}", headers=api.auth("admin"))
    assert user.json()["station_code"] == "US"


async def test_the_admin_binds_a_station_account_to_a_known_station(api: Api) -> None:
    admin = {**api.auth("admin")}
    body = {"username": "blood-2", "display_name": "采血 2", "role": "station"}
    password = {"password": "a-long-enough-password"}
    missing = await api.client.post("/v1/users", headers=admin, json={**body, **password})
    assert assert_problem(missing, 422)["errors"][0]["field"] == "station_code"  # type: ignore[index]
    unknown = await api.client.post(
        "/v1/users", headers=admin, json={**body, **password, "station_code": "XRAY"}
    )
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "station_code"  # type: ignore[index]
    desk = await api.client.post(
        "/v1/users",
        headers=admin,
        json={
            **body,
            **password,
            "username": "desk-2",
            "role": "front_desk",
            "station_code": "LAB",
        },
    )
    assert assert_problem(desk, 422)["errors"][0]["field"] == "station_code"  # type: ignore[index]
    made = await api.client.post(
        "/v1/users", headers=admin, json={**body, **password, "station_code": " lab "}
    )
    assert made.status_code == 201, made.text
    assert made.json()["station_code"] == "LAB"
    login = await api.client.post(
        "/v1/auth/login", json={"username": "blood-2", "password": password["password"]}
    )
    assert login.json()["user"]["station_code"] == "LAB"
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await api.client.get("/v1/stations/LAB/queue", headers=token)).status_code == 200
    # Moved to the ultrasound room: the same token works there at once (and not at LAB).
    user = f"/v1/users/{made.json()['id']}"
    etag = (await api.client.get(user, headers=admin)).headers["ETag"]
    moved = await api.client.patch(
        user, headers={**admin, "If-Match": etag}, json={"station_code": "US"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["station_code"] == "US"
    assert (await api.client.get("/v1/stations/US/queue", headers=token)).status_code == 200
    _wrong_station(await api.client.get("/v1/stations/LAB/queue", headers=token), "US", "LAB")
    # It cannot be unbound, nor bound to a station that does not exist.
    etag = moved.headers["ETag"]
    for value in (None, "NOPE"):
        refused = await api.client.patch(
            user, headers={**admin, "If-Match": etag}, json={"station_code": value}
        )
        assert assert_problem(refused, 422)["errors"][0]["field"] == "station_code"  # type: ignore[index]


async def test_a_station_records_readings_only_where_they_are_taken(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    mother = (await arrive(api))["mother"]  # at the vitals station today
    reading = {"readings": [{"kind": "weight", "value": 62.5, "unit": "kg"}]}
    url = f"/v1/mothers/{mother['id']}/measurements"
    refused = await api.client.post(url, headers=api.auth(US), json=reading)
    assert assert_problem(refused, 403)["station_code"] == "US"
    taken = await api.client.post(url, headers=api.auth("station"), json=reading)  # vitals
    assert taken.status_code == 201, taken.text
