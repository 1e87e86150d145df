"""The public list of waiting-room boards (GET /v1/boards: no login, nothing about any mother),
and the station's own queue live: ETag, If-None-Match → 304 and the ?wait= long-poll."""

from __future__ import annotations

import asyncio
import time

from tests.helpers.api import Api
from tests.helpers.queues import arrive, call
from tests.helpers.visits import TODAY, open_session


async def test_the_boards_are_listed_without_login_and_a_closed_station_is_not(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    listed = await api.client.get("/v1/boards")
    assert listed.status_code == 200, listed.text
    items = {b["code"]: b for b in listed.json()["items"]}
    assert {"VIT", "LAB", "US", "DOC"} <= set(items)
    assert items["LAB"] == {
        "code": "LAB",
        "name": "Blood draw",
        "name_zh": "抽血",
        "place_kind": "window",
        "station_type": "blood_draw",
    }
    assert "王" not in listed.text
    assert "mrn" not in listed.text.lower()
    admin = api.auth("admin")
    station = await api.client.get("/v1/stations", headers=admin)
    nst = next(s for s in station.json()["items"] if s["code"] == "NST")
    closed = await api.client.patch(
        "/v1/stations/NST", headers={**admin, "If-Match": '"1"'}, json={"is_open": False}
    )
    assert closed.status_code == 200, closed.text
    assert nst["is_open"]
    codes = [b["code"] for b in (await api.client.get("/v1/boards")).json()["items"]]
    assert "NST" not in codes


async def test_the_station_queue_has_an_etag_and_a_long_poll(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    desk = api.auth("frontdesk")
    first = await api.client.get("/v1/stations/VIT/queue", headers=desk)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    same = await api.client.get("/v1/stations/VIT/queue", headers={**desk, "If-None-Match": etag})
    assert same.status_code == 304
    started = time.monotonic()
    quiet = await api.client.get(
        "/v1/stations/VIT/queue", params={"wait": 1}, headers={**desk, "If-None-Match": etag}
    )
    assert quiet.status_code == 304
    assert 0.9 < time.monotonic() - started < 3
    too_long = await api.client.get("/v1/stations/VIT/queue", params={"wait": 31}, headers=desk)
    assert too_long.status_code == 422

    async def call_soon() -> None:
        await asyncio.sleep(0.3)
        await call(api, "VIT")

    started = time.monotonic()
    poll, _ = await asyncio.gather(
        api.client.get(
            "/v1/stations/VIT/queue", params={"wait": 20}, headers={**desk, "If-None-Match": etag}
        ),
        call_soon(),
    )
    assert poll.status_code == 200, poll.text
    assert time.monotonic() - started < 3
    assert poll.headers["etag"] != etag
    assert [e["ticket"] for e in poll.json()["serving"]] == ["VIT-001"], poll.text
    # Still the station's account binding: another station's account is refused.
    other = await api.client.get("/v1/stations/VIT/queue", headers=api.auth("station-us"))
    assert other.status_code in (403, 401), other.text
