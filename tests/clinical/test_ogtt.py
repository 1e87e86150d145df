"""The 75 g OGTT as a test (issue 20, point 9), through the API, on both databases.

Cases (case → expected behaviour → source):
- fasting draw done 10:00, drink recorded as begun 10:07 → the 1-hour draw is due 11:07 ±5
  (not 11:00), the 2-hour 12:07 ±5 → CMA 2014 GDM guideline (timed from the start of the drink)
- no drink recorded → no timed draw is called, the lab sees "glucose drink not started" →
  the same (the timing cannot start before the drink)
- the drink recorded twice: the same time is a retry, another time 409; before the fasting
  draw finished or in the future 422; on a draw still in service 409 → recorded once, by whom
- OGTT_BETWEEN_DRAWS=rest (default) → no ultrasound between the drink and the last draw, then
  the scan → CMA 2014 / CSOG 2022 (检查期间静坐)
- OGTT_BETWEEN_DRAWS=listed:us_obstetric → the scan is called between the draws, vitals are
  not → the clinic's setting
- a visit booked for tomorrow that expects the OGTT → one preparation SMS the day before, from
  OGTT_PREPARATION_SMS_AT, never twice; none for a visit without it; a visit moved to another
  day is told again → CMA 2014 / CSOG 2022 preparation (3 days' normal diet, 8–14 h fast)
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications import dispatcher
from app.notifications.models import OutboxMessage
from app.notifications.preparation import send_due
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import (
    arrive,
    call,
    instant,
    op,
    record_drink,
    serve,
    visit_queue,
)
from tests.helpers.visits import TODAY, book, open_session


def _place(queue: dict[str, Any], station: str, offset: int = 0) -> dict[str, Any] | None:
    return next(
        (p for p in queue["places"] if p["station"] == station and p["step_offset"] == offset),
        None,
    )


async def test_the_one_hour_draw_is_due_an_hour_after_the_drink_not_after_the_fasting_draw(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    for station in ("VIT", "URI"):
        await serve(api, station)
    fasting = await serve(api, "LAB")  # the fasting draw finishes at 10:00
    finished = clock.now()
    clock.advance(timedelta(minutes=9))  # the nurse records it at 10:09: she began at 10:07
    drink = finished + timedelta(minutes=7)
    recorded = await record_drink(api, fasting["id"], drink)
    assert recorded.status_code == 200, recorded.text
    body = recorded.json()
    assert (body["started_at"], body["recorded_at"]) == (instant(drink), instant(clock.now()))
    assert (
        body["recorded_by"] == api.staff.users["station-lab"].username
    )  # the blood draw's account
    draws = {d["offset_minutes"]: d for d in body["draws"]}
    assert draws[60]["due_at"] == instant(finished + timedelta(minutes=67))  # 11:07
    assert draws[60]["earliest_at"] == instant(finished + timedelta(minutes=62))
    assert draws[60]["latest_at"] == instant(finished + timedelta(minutes=72))
    assert draws[120]["due_at"] == instant(finished + timedelta(minutes=127))  # 12:07
    place = _place(await visit_queue(api, her["visit"]["id"]), "LAB", 60)
    assert place is not None
    assert place["due_at"] == instant(finished + timedelta(minutes=67))
    # 11:01: still too early (counted from the fasting draw it would be on time); at 11:02,
    # five minutes before 11:07, the window opens.
    clock.advance(finished + timedelta(minutes=61) - clock.now())
    assert (await call(api, "LAB"))["called"] is None
    clock.advance(timedelta(minutes=1))
    called = (await call(api, "LAB"))["called"]
    assert called is not None
    assert called["entry"]["step_offset"] == 60


async def test_no_timed_draw_is_called_before_the_drink_is_recorded(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    fasting = await serve(api, "LAB")
    clock.advance(timedelta(hours=2))  # long past when the draws were due from the draw
    assert (await call(api, "LAB"))["called"] is None
    q = await visit_queue(api, her["visit"]["id"])
    assert _place(q, "LAB", 60) is None
    waiting_for = {(s["exam_code"], s["label"]): s["waiting_for"] for s in q["not_yet_queued"]}
    assert waiting_for[("ogtt", "1-hour draw")] == [
        "glucose drink not started (the blood-draw station records it)"
    ]
    lab = await api.client.get("/v1/stations/LAB/queue", headers=api.auth("station-lab"))
    assert lab.status_code == 200, lab.text
    [awaiting] = lab.json()["awaiting_start"]
    assert awaiting["entry_id"] == fasting["id"]
    assert awaiting["waiting_for"] == "glucose drink not started"
    # Recorded (late, as it happened: at the draw's minute), the draws are due from it.
    done = await record_drink(api, fasting["id"], clock.now() - timedelta(hours=2))
    assert done.status_code == 200, done.text
    lab = await api.client.get("/v1/stations/LAB/queue", headers=api.auth("station-lab"))
    assert lab.json()["awaiting_start"] == []


async def test_the_drink_is_recorded_once_by_the_station_and_checked(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    await arrive(api)
    called = (await call(api, "LAB"))["called"]["entry"]
    assert (await op(api, called["id"], "start")).status_code == 200
    early = await record_drink(api, called["id"], clock.now())
    assert assert_problem(early, 409)["current_state"] == "in_service"  # draw not finished
    assert (await op(api, called["id"], "finish")).status_code == 200
    finished = clock.now()
    clock.advance(timedelta(minutes=4))
    before = await record_drink(api, called["id"], finished - timedelta(minutes=1))
    assert assert_problem(before, 422)["errors"][0]["field"] == "started_at"
    future = await record_drink(api, called["id"], clock.now() + timedelta(minutes=5))
    assert "in the future" in assert_problem(future, 422)["detail"]
    butler = await record_drink(api, called["id"], finished, who="butler1")
    assert_problem(butler, 403)
    first = await record_drink(api, called["id"], finished + timedelta(minutes=2))
    assert first.status_code == 200, first.text
    retry = await record_drink(api, called["id"], finished + timedelta(minutes=2))
    assert retry.status_code == 200
    assert retry.json() == first.json()
    other = await record_drink(api, called["id"], finished + timedelta(minutes=3))
    assert (
        assert_problem(other, 409)["recorded_started_at"]
        == (finished + timedelta(minutes=2)).isoformat()
    )


async def test_with_rest_an_ultrasound_is_not_called_between_the_draws(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["us_obstetric"])
    vid = her["visit"]["id"]
    for station in ("VIT", "URI"):
        await serve(api, station)
    assert _place(await visit_queue(api, vid), "US") is not None  # before the OGTT: she may
    fasting = await serve(api, "LAB")
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    q = await visit_queue(api, vid)
    assert _place(q, "US") is None  # her scan place is given back while the test runs
    scan = next(s for s in q["not_yet_queued"] if s["exam_code"] == "us_obstetric")
    assert any("she sits still between its draws" in w for w in scan["waiting_for"])
    clock.advance(timedelta(minutes=10))  # between the drink and the first draw
    assert (await call(api, "US"))["called"] is None
    clock.advance(timedelta(minutes=50))
    await serve(api, "LAB")  # the 1-hour draw
    clock.advance(timedelta(minutes=40))  # between the draws
    assert (await call(api, "US"))["called"] is None
    clock.advance(timedelta(minutes=20))
    await serve(api, "LAB")  # the 2-hour draw: the test is over
    called = (await call(api, "US"))["called"]
    assert called is not None
    assert called["entry"]["mother_id"] == her["mother"]["id"]


@pytest.mark.parametrize("between_draws", ["listed:us_obstetric"])
async def test_with_the_scan_allowed_it_is_called_between_the_draws(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["us_obstetric"])
    fasting = await serve(api, "LAB")
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    clock.advance(timedelta(minutes=10))
    assert (await call(api, "VIT"))["called"] is None  # vitals are not on the clinic's list
    called = (await call(api, "US"))["called"]
    assert called is not None
    assert called["entry"]["mother_id"] == her["mother"]["id"]


class Texts:
    """An SMS gateway that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, *, to: str, text: str, key: str) -> None:
        self.sent.append((to, text))


async def _preparations(factory: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with factory() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.topic == "visit.ogtt_preparation")
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        )


async def test_the_preparation_sms_goes_once_the_day_before_a_visit_expecting_the_ogtt(
    api: Api,
    clock: FrozenClock,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    tomorrow = await open_session(api, day="2026-11-29")
    tuesday = await open_session(api, day="2026-12-01")
    due = await mother_with_butler(api, serial="101", phone="13800000101")  # 25+6 tomorrow
    early = await mother_with_butler(  # 12+2 tomorrow: no OGTT yet
        api,
        serial="102",
        phone="13800000102",
        butler="butler2",
        language="en",
        pregnancy={"lmp_date": "2026-09-04", "gravida": 1, "para": 0, "risk_grade": "green"},
    )
    visit = (await book(api, due["id"], tomorrow["id"])).json()
    assert (await book(api, early["id"], tomorrow["id"])).status_code == 201
    clock.advance(timedelta(minutes=-1))  # 09:59, before OGTT_PREPARATION_SMS_AT (10:00)
    assert await send_due(session_factory, settings, clock.now()) == 0
    clock.advance(timedelta(minutes=1))  # 10:00
    assert await send_due(session_factory, settings, clock.now()) == 1
    assert await send_due(session_factory, settings, clock.now()) == 0  # a rerun sends nothing
    [message] = await _preparations(session_factory)
    assert (message.mother_id, message.channel) == (uuid.UUID(due["id"]), "sms")
    assert message.payload == {
        "channel": "sms",
        "template": "ogtt_preparation",
        "visit_id": visit["id"],
    }
    texts = Texts()
    while await dispatcher.dispatch_one(  # the outbox drained (the butlers' notices too)
        session_factory, sms=texts, now=clock.now(), max_attempts=3
    ):
        pass
    [(to, text)] = texts.sent
    assert to == "13800000101"
    assert text.startswith("【孕期管家】")
    for words in ("检查前连续三天正常饮食", "禁食8–14小时", "静坐、禁烟"):
        assert words in text
    assert "Tomorrow" not in text  # her language is Chinese: the Chinese text only
    # Moved to Tuesday, she is told again the day before it (and not twice for tomorrow).
    moved = await api.client.post(
        f"/v1/visits/{visit['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": tuesday["id"], "reason": "she travels tomorrow"},
    )
    assert moved.status_code == 200, moved.text
    assert await send_due(session_factory, settings, clock.now()) == 0
    clock.advance(timedelta(days=2))  # Monday 10:00
    assert await send_due(session_factory, settings, clock.now()) == 1
    assert await send_due(session_factory, settings, clock.now()) == 0
    assert [m.payload["visit_id"] for m in await _preparations(session_factory)] == [
        visit["id"],
        visit["id"],
    ]


async def test_the_preparation_text_is_chinese_first_then_her_language() -> None:
    from app.notifications.preparation import load_text

    text = load_text()
    assert text.text_for("zh-CN") == text.text_zh
    assert text.text_for("yue") == text.text_zh
    english = text.text_for("en")
    assert english.startswith(text.text_zh)
    assert english.endswith(text.text_en)
    assert "8-14 hours" in english
    assert "2014" in text.source
    assert "2022" in text.source
