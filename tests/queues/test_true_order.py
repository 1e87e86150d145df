"""A station's queue in its true order (issue 19, point 5): ``waiting`` is the order call-next
takes, first whom it calls now (the first line is the mother it calls), then those it passes
over now, saying why; an OGTT draw not yet due is apart in ``scheduled`` with its due time; no
mother is listed twice. Checked against call-next itself, call after call."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.principal import Principal, PrincipalKind
from app.queues.boards import board_at, station_queue_at
from app.queues.catalogue import load_catalogue
from app.queues.models import Station
from app.queues.policy import Ctx, QueuePolicy
from tests.helpers.api import Api
from tests.helpers.queues import arrive, call, op, record_drink, serve, without_ogtt
from tests.helpers.visits import TODAY, open_session


async def _queue(api: Api, code: str = "LAB") -> dict[str, Any]:
    response = await api.client.get(f"/v1/stations/{code}/queue", headers=api.auth("frontdesk"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _mothers(queue: dict[str, Any]) -> list[str]:
    return [e["mother_id"] for e in queue["serving"] + queue["waiting"] + queue["scheduled"]]


async def _first_waiting_is_called(api: Api) -> dict[str, Any]:
    """The first waiting line is the mother call-next calls; she is then served."""
    queue = await _queue(api)
    assert queue["waiting"], queue
    first = queue["waiting"][0]
    assert first["held"] is None
    assert first["position"] == 1
    assert [w["id"] for w in queue["waiting"][: len(queue["next_to_call"])]] == queue[
        "next_to_call"
    ]
    called = await call(api, "LAB")
    assert called["called"] is not None, called
    assert called["called"]["entry"]["id"] == first["id"], (queue["waiting"], called)
    entry = called["called"]["entry"]["id"]
    assert (await op(api, entry, "start")).status_code == 200
    assert (await op(api, entry, "finish")).status_code == 200
    return queue


async def test_the_queue_lists_draws_not_yet_due_apart_in_call_order_and_nobody_twice(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00", per_hour=8)
    # The OGTT mother: fasting draw at 10:00, then the drink: her +60 and +120 draws both wait
    # at the draw, not yet due.
    ogtt = await arrive(api, serial="101", name="赵一一")
    fasting = await serve(api, "LAB")
    drink_at = clock.now()
    assert (await record_drink(api, fasting["id"], drink_at)).status_code == 200
    # Walk-ins: one not fasting, one fasting (first at the draw), one urgent (first of all).
    plain = await arrive(api, serial="102", butler="butler2", name="钱二二")
    await without_ogtt(api, plain)
    clock.advance(timedelta(minutes=1))
    hungry = await arrive(api, serial="103", name="孙三三")
    urgent = await arrive(api, serial="104", butler="butler2", name="李四四")
    await without_ogtt(api, urgent)
    flagged = await api.client.post(
        f"/v1/visits/{urgent['visit']['id']}/urgent",
        headers=api.auth("doctor"),
        json={"urgent": True, "reason": "headache and blurred vision"},
    )
    assert flagged.status_code == 200, flagged.text
    # A fasting walk-in called at the vitals station right now: passed over at the draw.
    elsewhere = await arrive(api, serial="105", name="吴五五")
    vitals = await call(api, "VIT")
    while vitals["called"]["mrn"] != elsewhere["mother"]["mrn"]:
        assert (await op(api, vitals["called"]["entry"]["id"], "start")).status_code == 200
        assert (await op(api, vitals["called"]["entry"]["id"], "finish")).status_code == 200
        vitals = await call(api, "VIT")

    queue = await _queue(api)
    mothers = _mothers(queue)
    assert len(mothers) == len(set(mothers)), queue  # nobody twice
    # Her two draws not yet due: apart, once, with the 1-hour draw's due time.
    [draw] = [e for e in queue["scheduled"] if e["mother_id"] == ogtt["mother"]["id"]]
    assert draw["due_at"] == (drink_at + timedelta(minutes=60)).isoformat().replace("+00:00", "Z")
    assert draw["step_offset"] == 60
    assert ogtt["mother"]["id"] not in {e["mother_id"] for e in queue["waiting"]}
    # In the order call-next takes them: urgent, then fasting, then the rest; the mother at
    # vitals last, saying why.
    order = [e["mother_id"] for e in queue["waiting"]]
    assert order == [
        urgent["mother"]["id"],
        hungry["mother"]["id"],
        plain["mother"]["id"],
        elsewhere["mother"]["id"],
    ], queue["waiting"]
    assert [e["held"] for e in queue["waiting"]] == [None, None, None, "at another exam now"]
    assert [e["position"] for e in queue["waiting"]] == [1, 2, 3, 4]
    assert queue["next_to_call"] == [e["id"] for e in queue["waiting"][:3]]

    # Call after call, the first waiting line is the one called.
    for _ in range(3):
        await _first_waiting_is_called(api)
    # Her draw falls due (its window opens 5 minutes before): first, out of ``scheduled``.
    clock.advance(timedelta(minutes=56))
    due = await _queue(api)
    assert due["waiting"][0]["mother_id"] == ogtt["mother"]["id"]
    assert due["waiting"][0]["step_offset"] == 60
    assert ogtt["mother"]["id"] not in {e["mother_id"] for e in due["scheduled"]}
    mothers = _mothers(due)
    assert len(mothers) == len(set(mothers)), due
    await _first_waiting_is_called(api)


@pytest.mark.parametrize("between_draws", ["any"])  # a clinic that allows exams between draws
async def test_kept_for_her_timed_draw_is_counted_apart_and_wakes_the_long_poll(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A 15-minute scan would keep her past her 11:00 draw from 10:45: the ultrasound's queue
    changes then by the clock alone (its long-poll wakes), and the TV counts her as kept for
    her draw, not as at another exam."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    await arrive(api, extra_exams=["us_obstetric"])
    fasting = await serve(api, "LAB")  # the drink at 10:00: +60 is due at 11:00
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    clock.advance(timedelta(minutes=40))
    actor = Principal(kind=PrincipalKind.USER, id=uuid.uuid4(), name="test", role="admin")
    ctx = Ctx(now=clock.now(), tz=ZoneInfo("Asia/Shanghai"), actor=actor, policy=QueuePolicy())
    async with session_factory() as session:
        station = await session.scalar(select(Station).where(Station.code == "US"))
        assert station is not None
        built, _ = await station_queue_at(
            session, station, await load_catalogue(session), ctx, clock.now()
        )
        [place] = built.body.waiting  # type: ignore[attr-defined]
        assert place.held is None  # callable at 10:40
        assert built.changes_at is not None
        assert clock.now() < built.changes_at <= clock.now() + timedelta(minutes=10)
        board = await board_at(session, "US", ctx, clock.now())
        assert board.changes_at == built.changes_at
    clock.advance(timedelta(minutes=10))
    shown = (await api.client.get("/v1/stations/US/board")).json()
    assert (shown["held"], shown["busy_elsewhere"]) == (1, 0)
    assert shown["next"] == []
