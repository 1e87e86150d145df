"""A free room of a longer exam calls her first (issue 19): a mother who may go now both to a
3-minute urine sample and to a free scan room is not called to the urine sample for up to
``CLAIM`` (2 minutes), so that the scan room, the day's bottleneck, does not stand empty while
she gives her sample. Never for a fasting mother, never past the claim, never when the scan
rooms are all busy or she is not the next the scan room calls; the station's queue says why
she is passed over, and its long-poll wakes when the claim ends. Checked on both databases
through the API, as the station screens use it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.principal import Principal, PrincipalKind
from app.queues.boards import HELD_CLAIMED, board_at, station_queue_at
from app.queues.catalogue import load_catalogue
from app.queues.models import Station
from app.queues.policy import Ctx, QueuePolicy
from app.queues.positions import CLAIM
from tests.helpers.api import Api
from tests.helpers.queues import arrive, call, op, without_ogtt
from tests.helpers.visits import TODAY, open_session


async def _queue(api: Api, code: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/stations/{code}/queue", headers=api.auth("frontdesk"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _plain(api: Api, serial: str, name: str) -> dict[str, Any]:
    """A mother who is not fasting (her OGTT is off today), with an obstetric scan."""
    her = await arrive(api, serial=serial, name=name, extra_exams=["us_obstetric"])
    await without_ogtt(api, her)
    return her


def _line(queue: dict[str, Any], her: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in queue["waiting"] if w["mother_id"] == her["mother"]["id"])


async def test_a_free_scan_room_calls_her_before_the_urine_sample(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await _plain(api, "201", "周一一")
    urine = await _queue(api, "URI")
    line = _line(urine, her)
    assert line["held"] == HELD_CLAIMED
    assert urine["next_to_call"] == []
    refused = await call(api, "URI")
    assert refused["called"] is None, refused
    # The scan room calls her; at the urine station she is then at another exam.
    scanned = await call(api, "US")
    assert scanned["called"]["mrn"] == her["mother"]["mrn"]
    assert _line(await _queue(api, "URI"), her)["held"] == "at another exam now"
    # The TV counts her as at another exam, not as kept for a draw.
    board = (await api.client.get("/v1/stations/URI/board")).json()
    assert (board["busy_elsewhere"], board["held"]) == (1, 0)


async def test_the_claim_ends_after_two_minutes(api: Api, clock: FrozenClock) -> None:
    """The scan room did not call her: at 1:59 she is still passed over, at 2:00 called."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await _plain(api, "202", "郑二二")
    clock.advance(CLAIM - timedelta(seconds=1))
    assert (await call(api, "URI"))["called"] is None
    clock.advance(timedelta(seconds=1))
    assert _line(await _queue(api, "URI"), her)["held"] is None
    called = await call(api, "URI")
    assert called["called"]["mrn"] == her["mother"]["mrn"]


async def test_a_fasting_mother_is_called_to_the_blood_draw_whatever_the_scan_room(
    api: Api,
) -> None:
    """Fasting (her OGTT is today), she has her draw first: she is hungry and pregnant."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, serial="203", name="王三三", extra_exams=["us_obstetric"])
    assert _line(await _queue(api, "LAB"), her)["held"] is None
    called = await call(api, "LAB")
    assert called["called"]["mrn"] == her["mother"]["mrn"]


async def test_a_mother_fasting_today_is_not_kept_for_the_scan_room(api: Api) -> None:
    """Her OGTT is today: at the urine station (not a fasting exam) she is still called,
    though a scan room is free: she has her fasting draw as soon as she can, then eats."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, serial="209", name="沈九九", extra_exams=["us_obstetric"])
    assert _line(await _queue(api, "URI"), her)["held"] is None
    called = await call(api, "URI")
    assert called["called"]["mrn"] == her["mother"]["mrn"]


async def test_no_claim_when_the_scan_rooms_are_busy_or_she_is_not_their_next(
    api: Api,
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    # Both scan rooms busy: the urine sample calls her.
    first = await _plain(api, "204", "冯四四")
    second = await _plain(api, "205", "陈五五")
    for room in (1, 2):
        assert (await call(api, "US", room))["called"] is not None
    busy = {first["mother"]["id"], second["mother"]["id"]}
    third = await _plain(api, "206", "褚六六")
    fourth = await _plain(api, "207", "卫七七")
    urine = await _queue(api, "URI")
    assert _line(urine, third)["held"] is None
    assert {w["mother_id"] for w in urine["waiting"] if w["held"]} == busy
    # One room frees: the scan room's next is the third mother, not the fourth. The third is
    # kept for it; the urine station calls in turn the others (the first mother, back from her
    # scan and booked earlier, then the fourth).
    serving = (await _queue(api, "US"))["serving"]
    assert (await op(api, serving[0]["id"], "start")).status_code == 200
    assert (await op(api, serving[0]["id"], "finish")).status_code == 200
    urine = await _queue(api, "URI")
    assert _line(urine, third)["held"] == HELD_CLAIMED
    assert _line(urine, fourth)["held"] is None
    called = []
    for _ in range(2):
        got = (await call(api, "URI"))["called"]
        assert got is not None
        called.append(got["mrn"])
        assert (await op(api, got["entry"]["id"], "start")).status_code == 200
        assert (await op(api, got["entry"]["id"], "finish")).status_code == 200
    assert called == [first["mother"]["mrn"], fourth["mother"]["mrn"]]


async def test_the_queue_and_board_long_polls_wake_when_the_claim_ends(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """By the clock alone she becomes callable at the urine station when the claim ends, and a
    move of the scan room's queue moves this one: its long-poll listens to both."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    await _plain(api, "208", "蒋八八")
    checked_in = clock.now()
    actor = Principal(kind=PrincipalKind.USER, id=uuid.uuid4(), name="test", role="admin")
    ctx = Ctx(now=clock.now(), tz=ZoneInfo("Asia/Shanghai"), actor=actor, policy=QueuePolicy())
    async with session_factory() as session:
        urine = await session.scalar(select(Station).where(Station.code == "URI"))
        scan = await session.scalar(select(Station).where(Station.code == "US"))
        assert urine is not None
        assert scan is not None
        built, _ = await station_queue_at(
            session, urine, await load_catalogue(session), ctx, clock.now()
        )
        assert built.changes_at == checked_in + CLAIM
        assert built.stations == frozenset({urine.id, scan.id})
        board = await board_at(session, "URI", ctx, clock.now())
        assert board.changes_at == checked_in + CLAIM
        assert board.stations == built.stations


def test_the_station_screen_says_every_reason_in_chinese() -> None:
    """The API says why in English; the station screen maps each reason to its Chinese text:
    a reason the screen does not know would show in English only."""
    from pathlib import Path

    from app.queues import boards

    script = (Path(boards.__file__).parent.parent / "console/static/js/station.js").read_text()
    reasons = [v for k, v in vars(boards).items() if k.startswith("HELD_")]
    assert HELD_CLAIMED in reasons
    for reason in reasons:
        assert f'"{reason}": "st.held.' in script, reason
