"""The hard cases of the queues, found by review: added orders, stale days, timed no-shows,
cross-station ETags, closed stations, impossible catalogues, null fields, audit of moves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.queues import arrive, call, op, record_drink, serve, visit_queue
from tests.helpers.visits import TODAY, open_session


async def _safe(coro: Any) -> Any:
    """A request whose unhandled error (a 500) is turned into a failed assertion."""
    try:
        return await coro
    except Exception as exc:
        raise AssertionError(f"unhandled server error: {exc!r}") from exc


async def _order_id(api: Api, visit_id: str, code: str) -> str:
    visit = (await api.client.get(f"/v1/visits/{visit_id}", headers=api.auth("frontdesk"))).json()
    return str(next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == code))


async def _cancel_order(api: Api, visit_id: str, code: str) -> None:
    response = await api.client.post(
        f"/v1/exam-orders/{await _order_id(api, visit_id, code)}/cancel",
        headers=api.auth("doctor"),
        json={"reason": "not today"},
    )
    assert response.status_code == 204, response.text


async def _add_order(api: Api, visit_id: str, code: str) -> None:
    response = await api.client.post(
        f"/v1/visits/{visit_id}/exam-orders", headers=api.auth("doctor"), json={"exam_code": code}
    )
    assert response.status_code == 201, response.text


async def _assignments(api: Api, who: str, etag: str | None = None) -> Any:
    headers = api.auth(who)
    if etag is not None:
        headers = {**headers, "If-None-Match": etag}
    return await api.client.get("/v1/me/assignments", headers=headers)


def _place(queue: dict[str, Any], station: str) -> dict[str, Any]:
    return next(p for p in queue["places"] if p["station"] == station)


# 1. An order added after check-in does not withdraw places its new step now blocks ----------


async def test_added_fasting_order_blocks_a_waiting_after_meal_place(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["nst"])
    vid = her["visit"]["id"]
    await _cancel_order(api, vid, "ogtt")  # nothing fasting left: the NST may be done now
    assert "NST" in {p["station"] for p in (await visit_queue(api, vid))["places"]}
    await _add_order(api, vid, "fasting_glucose")  # now she must stay fasting until the draw
    called = await call(api, "NST")
    # She would eat / be tested "after the meal" before her fasting draw.
    assert called["called"] is None, "NST called her while a fasting draw is still pending"


async def test_added_exam_keeps_the_doctor_last(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    vid = her["visit"]["id"]
    await _cancel_order(api, vid, "ogtt")
    for station in ("VIT", "URI", "LAB"):
        await serve(api, station)
    assert [p["station"] for p in (await visit_queue(api, vid))["places"]] == ["DOC"]
    await _add_order(api, vid, "us_obstetric")  # the desk adds a scan while she waits
    called = await call(api, "DOC")
    assert called["called"] is None, "the doctor was called before her scan (doctor not last)"


# 2. ETag: the butler's answer changes without her feed version changing ------------------


async def test_an_added_blocked_order_moves_the_butlers_etag(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    first = await _assignments(api, "butler1")
    etag = first.headers["etag"]
    before = next(i for i in first.json()["items"] if i["kind"] == "visit")["queue"]
    await _add_order(api, her["visit"]["id"], "nst")  # blocked by the OGTT: no new entry
    truth = await visit_queue(api, her["visit"]["id"])
    assert truth["steps_total"] == before["steps_total"] + 1
    again = await _assignments(api, "butler1", etag)
    assert again.status_code == 200, "steps_total changed but the butler still gets 304"


@pytest.mark.parametrize("between_draws", ["any"])  # she may be scanned between her draws
async def test_a_timed_gap_elsewhere_reorders_a_queue_without_touching_its_butlers(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    x = await arrive(api, serial="101", extra_exams=["us_obstetric"])  # butler1
    y = await arrive(api, serial="102", butler="butler2", extra_exams=["us_obstetric"])
    for code in ("ogtt", "cbc"):  # Y has nothing at the blood draw
        await _cancel_order(api, y["visit"]["id"], code)
    first = await _assignments(api, "butler2")
    etag = first.headers["etag"]
    mine = next(i for i in first.json()["items"] if i["kind"] == "visit")["queue"]
    assert _place(mine, "US")["position"] == 2  # X (US-001) before her
    fasting = await serve(api, "LAB")  # X's fasting draw: she now waits two hours for her draws
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    truth = _place(await visit_queue(api, y["visit"]["id"]), "US")
    assert truth["position"] == 1  # X dropped to tier 3 at US
    again = await _assignments(api, "butler2", etag)
    assert again.status_code == 200, "Y's US position moved, yet butler2 got 304 (stale)"
    del x


# 3. A no-show at a timed draw is pushed out of the draw's tolerance ----------------------


async def test_a_timed_draw_no_show_can_still_be_drawn_within_tolerance(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    await arrive(api)
    fasting = await serve(api, "LAB")  # fasting draw and drink at 10:00: +60 due 11:00 ±5
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    clock.advance(timedelta(minutes=60))
    called = (await call(api, "LAB"))["called"]["entry"]
    assert called["step_offset"] == 60
    rejoined = (await op(api, called["id"], "no-show")).json()
    clock.advance(timedelta(minutes=2))  # she turns up at 11:02, inside the ±5 window
    again = await call(api, "LAB")
    assert again["called"] is not None, (
        f"timed draw not callable until {rejoined['available_at']}, after due+5 (11:05)"
    )


# 4. Completing the visit while she is in service throws the exam away --------------------


async def test_completing_a_visit_while_in_service_is_refused_or_the_exam_kept(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api)
    entry = (await call(api, "VIT"))["called"]["entry"]
    assert (await op(api, entry["id"], "start")).status_code == 200
    done = await api.client.post(
        f"/v1/visits/{her['visit']['id']}/complete", headers=api.auth("doctor")
    )
    if done.status_code == 200:
        finished = await op(api, entry["id"], "finish")
        assert finished.status_code == 200, (
            "visit completed while in service: her exam was cancelled, the station cannot "
            f"finish it: {finished.text}"
        )


# 5. A transfer may send her to a closed station ----------------------------------------


async def test_transfer_to_a_closed_station_is_refused(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api)
    created = await api.client.post(
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "VIT2", "name": "Vitals 2", "station_type": "vitals"},
    )
    assert created.status_code == 201
    closed = await api.client.patch(
        "/v1/stations/VIT2",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"is_open": False},
    )
    assert closed.status_code == 200, closed.text
    vit = _place(await visit_queue(api, her["visit"]["id"]), "VIT")
    moved = await api.client.post(
        f"/v1/queue-entries/{vit['id']}/transfer",
        headers=api.auth("frontdesk"),
        json={"station": "VIT2"},
    )
    assert moved.status_code in (409, 422), "transferred into a closed station's queue"


# 6. Yesterday's unfinished places are called today -----------------------------------


async def test_yesterdays_places_are_not_called_today(api: Api, clock: FrozenClock) -> None:
    await open_session(api, day=TODAY)
    await arrive(api)  # checked in, never completed (the desk forgot)
    clock.advance(timedelta(days=1))
    called = await call(api, "VIT")
    assert called["called"] is None, "a mother from yesterday was called today"


# 7. The catalogue accepts rules nobody can satisfy -----------------------------------


async def test_an_exam_after_the_last_exam_is_refused(api: Api) -> None:
    changed = await api.client.patch(
        "/v1/exam-types/urine",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"precedence": [{"after": "consultation"}]},
    )
    # consultation is "last" (after urine) and urine is now after consultation: a deadlock.
    assert changed.status_code == 422, changed.text


# 8. 500s on explicit nulls ------------------------------------------------------------


async def test_null_exam_type_field_is_a_4xx(api: Api) -> None:
    changed = await _safe(
        api.client.patch(
            "/v1/exam-types/vitals",
            headers={**api.auth("admin"), "If-Match": '"1"'},
            json={"name": None},
        )
    )
    assert changed.status_code < 500, changed.text


async def test_null_station_hours_is_a_4xx(api: Api) -> None:
    changed = await _safe(
        api.client.patch(
            "/v1/stations/VIT",
            headers={**api.auth("admin"), "If-Match": '"1"'},
            json={"opens_at": None},
        )
    )
    assert changed.status_code < 500, changed.text


# 9. Audit: closing a station moves mothers without a record naming them --------------


async def test_closing_a_station_audits_each_mother_moved(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    await api.client.post(
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "VIT2", "name": "Vitals 2", "station_type": "vitals"},
    )
    her = await arrive(api)
    closed = await api.client.patch(
        "/v1/stations/VIT",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"is_open": False},
    )
    assert closed.status_code == 200, closed.text
    assert _place(await visit_queue(api, her["visit"]["id"]), "VIT2")
    async with session_factory() as session:
        rows = (await session.scalars(select(AuditEvent))).all()
    mentioned = [
        r
        for r in rows
        if r.action.startswith(("queue.", "station."))
        and her["mother"]["id"] in (str(r.resource_id), str((r.detail or {}).get("mother_id")))
    ]
    assert mentioned, "her place was moved to VIT2 with no audit record naming her"
