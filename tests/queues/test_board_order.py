"""The waiting-room board: ``next`` in the order call-next itself takes (tested against
call-next), draws not yet due apart in ``later``, no mother twice, recalls, ETag and long-poll."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.factories import record_elsewhere
from tests.helpers.mothers import mother_with_butler
from tests.helpers.queues import arrive, call, op, record_drink, serve, without_ogtt
from tests.helpers.visits import TODAY, book, check_in, open_session


async def _board(api: Api, code: str = "LAB", **headers: str) -> Any:
    return await api.client.get(f"/v1/stations/{code}/board", headers=headers)


async def _urgent(api: Api, her: dict[str, Any]) -> None:
    flagged = await api.client.post(
        f"/v1/visits/{her['visit']['id']}/urgent",
        headers=api.auth("doctor"),
        json={"urgent": True, "reason": "headache and blurred vision"},
    )
    assert flagged.status_code == 200, flagged.text


async def _call_matches_board(api: Api) -> dict[str, Any]:
    """The board's first next ticket is the one call-next calls; she is then served."""
    board: dict[str, Any] = (await _board(api)).json()
    assert board["next"], board
    queue = await api.client.get("/v1/stations/LAB/queue", headers=api.auth("frontdesk"))
    first_id = queue.json()["next_to_call"][0]
    called = await call(api, "LAB")
    assert called["called"] is not None
    entry = called["called"]["entry"]
    assert entry["ticket"] == board["next"][0]["ticket"], (board, entry["ticket"])
    assert entry["id"] == first_id  # the station's screen says the same
    assert (await op(api, entry["id"], "start")).status_code == 200
    assert (await op(api, entry["id"], "finish")).status_code == 200
    return board


def _names(tickets: list[dict[str, Any]]) -> list[str]:
    return [t["masked_name"] for t in tickets]


async def test_next_is_the_order_call_next_takes(api: Api, clock: FrozenClock) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00", per_hour=8)
    # The OGTT mother: fasting draw at 10:00 and the drink: her +60 and +120 draws wait.
    await arrive(api, serial="101", name="赵一一")
    fasting = await serve(api, "LAB")
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    # Walk-ins at 10:00: one not fasting, one fasting; an urgent one (not fasting).
    plain = await arrive(api, serial="102", butler="butler2", name="钱二二")
    await without_ogtt(api, plain)
    hungry = await arrive(api, serial="103", name="孙三三")
    urgent = await arrive(api, serial="104", butler="butler2", name="李四四")
    await without_ogtt(api, urgent)
    # Booked for 10:00, she came at 10:05 (booked time, not arrival, orders her).
    clock.advance(timedelta(minutes=5))
    booked_mother = await arrive_booked(api, serial="105", name="周五五")
    # A fasting walk-in who is at the vitals station right now: call-next passes over her.
    elsewhere = await arrive(api, serial="106", name="吴六六")
    vitals = await call(api, "VIT")
    while vitals["called"]["mrn"] != elsewhere["mother"]["mrn"]:  # the one we want there
        assert (await op(api, vitals["called"]["entry"]["id"], "start")).status_code == 200
        assert (await op(api, vitals["called"]["entry"]["id"], "finish")).status_code == 200
        vitals = await call(api, "VIT")
    del booked_mother, hungry

    lab = await api.client.get("/v1/stations/LAB/queue", headers=api.auth("frontdesk"))
    assert elsewhere["mother"]["id"] in {e["mother_id"] for e in lab.json()["waiting"]}
    first = (await _board(api)).json()
    assert "吴*六" not in _names(first["next"])  # busy at vitals: call-next passes her over
    assert first["busy_elsewhere"] == 1  # … and the TV says one more is at another exam
    await _urgent(api, urgent)
    board = await _call_matches_board(api)
    assert board["next"][0]["masked_name"] == "李*四"  # urgent first
    # The OGTT mother is listed once, apart, with her draw's window.
    assert _names(board["later"]).count("赵*一") == 1
    assert "赵*一" not in _names(board["next"])
    [draw] = [t for t in board["later"] if t["masked_name"] == "赵*一"]
    assert draw["not_before"] == "2026-11-28T02:55:00Z"
    assert draw["due_at"] == "2026-11-28T03:00:00Z"
    # Then fasting (booked at 10:00 and walk-in at 10:00 interleave by time, then ticket) …
    for _ in range(2):
        await _call_matches_board(api)
    # … her draw falls due at 10:55: first, once, and out of ``later``.
    clock.advance(timedelta(minutes=51))
    due = (await _board(api)).json()
    assert due["next"][0]["masked_name"] == "赵*一"
    assert _names(due["next"] + due["later"]).count("赵*一") == 1
    while (await _board(api)).json()["next"]:
        board = await _call_matches_board(api)
        names = _names(board["next"] + board["later"] + board["now_calling"])
        assert len(names) == len(set(names)), board  # no mother twice


async def arrive_booked(api: Api, *, serial: str, name: str) -> dict[str, Any]:
    """A mother booked into today's 10:00 hour who checks in now."""
    mother = await mother_with_butler(api, serial=serial, phone=f"13800000{serial}", name=name)
    doctor = api.auth("doctor")
    await record_elsewhere(api.client, doctor, mother["id"])
    await record_elsewhere(api.client, doctor, mother["id"], ["us_anatomy"], on="2026-10-26")
    sessions = await api.client.get(
        "/v1/clinic-sessions", headers=api.auth("frontdesk"), params={"from": TODAY, "to": TODAY}
    )
    session_id = sessions.json()["items"][0]["id"]
    booked = await book(api, mother["id"], session_id, preferred_time="10:00")
    assert booked.status_code == 201, booked.text
    visit = await check_in(api, mrn=mother["mrn"])
    assert visit.status_code == 200, visit.text
    assert visit.json()["walk_in"] is False
    return {"mother": mother, "visit": visit.json()}


async def test_now_calling_counts_recalls_and_shows_masked_names_only(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    await arrive(api, serial="102", butler="butler2", name="李娜")
    called = await call(api, "VIT")
    board = (await _board(api, "VIT")).json()
    [calling] = board["now_calling"]
    assert (calling["ticket"], calling["masked_name"], calling["room"]) == ("VIT-001", "王*琪", 1)
    assert calling["called_at"] == "2026-11-28T02:00:00Z"
    assert calling["recalls"] == 0
    assert [(t["ticket"], t["masked_name"], t["position"]) for t in board["next"]] == [
        ("VIT-002", "李*", 1)
    ]
    assert (await op(api, called["called"]["entry"]["id"], "recall")).status_code == 200
    again = (await _board(api, "VIT")).json()
    assert again["now_calling"][0]["recalls"] == 1
    text = (await _board(api, "VIT")).text
    assert "王小琪" not in text
    assert "李娜" not in text
    assert "mrn" not in text.lower()


async def test_the_board_has_an_etag_and_a_long_poll(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    first = await _board(api, "VIT")
    etag = first.headers["etag"]
    assert (await _board(api, "VIT", **{"If-None-Match": etag})).status_code == 304
    started = time.monotonic()
    quiet = await api.client.get(
        "/v1/stations/VIT/board", params={"wait": 1}, headers={"If-None-Match": etag}
    )
    assert quiet.status_code == 304
    assert 0.9 < time.monotonic() - started < 3

    async def call_soon() -> None:
        await asyncio.sleep(0.3)
        await call(api, "VIT")

    started = time.monotonic()
    poll, _ = await asyncio.gather(
        api.client.get(
            "/v1/stations/VIT/board", params={"wait": 20}, headers={"If-None-Match": etag}
        ),
        call_soon(),
    )
    assert poll.status_code == 200
    assert time.monotonic() - started < 3
    assert poll.json()["now_calling"][0]["ticket"] == "VIT-001"
    assert poll.headers["etag"] != etag


async def test_the_old_page_sends_the_tv_and_an_unknown_station_is_404(api: Api) -> None:
    page = await api.client.get("/v1/stations/vit/board.html", follow_redirects=False)
    assert page.status_code == 307
    assert page.headers["location"] == "/console/tv.html?stations=VIT"
    assert (await api.client.get("/v1/stations/NOPE/board")).status_code == 404
    assert (await api.client.get("/v1/stations/NOPE/board.html")).status_code == 404
