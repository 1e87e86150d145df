"""The gaps a reviewer found in the station binding (issue 17): a station account bound to the
ultrasound room could still correct the vitals room's blood pressure, cancel the blood draw's
order, complete her visit (dropping all her queues) and read any visit's queue. Each is now
kept to the account's own station; the other roles keep what they had."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.measurements.models import Measurement
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session

US = "station-us"
VIT = "station"  # the tests' vitals account
LAB = "station-lab"
BP = {"kind": "blood_pressure", "value": 150, "value2": 100, "unit": "mmHg"}
FIX = {"value": 110, "value2": 70, "unit": "mmHg", "reason": "cuff too small"}


async def _vitals_bp(api: Api) -> dict[str, Any]:
    """A blood pressure the vitals room took of a mother at both it and the ultrasound today
    (a station reads and records only for a mother at its station)."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    mother = (await arrive(api, extra_exams=["us_obstetric"]))["mother"]
    taken = await api.client.post(
        f"/v1/mothers/{mother['id']}/measurements", headers=api.auth(VIT), json={"readings": [BP]}
    )
    assert taken.status_code == 201, taken.text
    reading: dict[str, Any] = taken.json()["items"][0]
    return reading


def _corrections(reading: dict[str, Any]) -> str:
    return f"/v1/measurements/{reading['id']}/corrections"


async def test_a_station_corrects_only_the_readings_taken_at_its_station(api: Api) -> None:
    reading = await _vitals_bp(api)
    assert reading["station_code"] == "VIT"
    refused = await api.client.post(_corrections(reading), headers=api.auth(US), json=FIX)
    body = assert_problem(refused, 403)
    assert body["station_code"] == "US"
    # Still her reading: nothing was replaced.
    listed = await api.client.get(
        f"/v1/mothers/{reading['mother_id']}/measurements",
        headers=api.auth("doctor"),
        params={"include_corrected": "true"},
    )
    assert [(m["value"], m["current"]) for m in listed.json()["items"]] == [(150, True)]
    # The vitals room corrects its own reading; the correction is the vitals room's too.
    fixed = await api.client.post(_corrections(reading), headers=api.auth(VIT), json=FIX)
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["station_code"] == "VIT"
    again = await api.client.post(
        _corrections(fixed.json()), headers=api.auth(US), json={**FIX, "value": 120}
    )
    assert_problem(again, 403)
    # A doctor corrects any reading, as before (and records no station).
    doctor = await api.client.post(
        _corrections(fixed.json()), headers=api.auth("doctor"), json={**FIX, "value": 120}
    )
    assert doctor.status_code == 201, doctor.text
    assert doctor.json()["station_code"] is None


async def test_a_reading_of_no_known_station_is_no_station_accounts_to_correct(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A reading from before the station was recorded: no station account corrects it (not even
    the vitals room, which may or may not have taken it); a doctor still does."""
    reading = await _vitals_bp(api)
    async with session_factory() as session, session.begin():
        await session.execute(
            update(Measurement)
            .where(Measurement.id == uuid.UUID(reading["id"]))
            .values(station_code=None)
        )
    for who in (VIT, US):
        assert_problem(
            await api.client.post(_corrections(reading), headers=api.auth(who), json=FIX), 403
        )
    doctor = await api.client.post(_corrections(reading), headers=api.auth("doctor"), json=FIX)
    assert doctor.status_code == 201, doctor.text


async def _her_day(api: Api) -> dict[str, Any]:
    await open_session(api, day=TODAY)
    her = await arrive(api, extra_exams=["us_obstetric"])
    visit: dict[str, Any] = her["visit"]
    return visit


def _order(visit: dict[str, Any], code: str) -> str:
    return str(next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == code))


async def test_a_station_cancels_only_the_orders_done_at_its_station(api: Api) -> None:
    visit = await _her_day(api)
    cbc = f"/v1/exam-orders/{_order(visit, 'cbc')}/cancel"
    body = {"reason": "not needed today"}
    refused = await api.client.post(cbc, headers=api.auth(US), json=body)
    assert assert_problem(refused, 403)["station_code"] == "US"
    read = await api.client.get(f"/v1/visits/{visit['id']}", headers=api.auth("frontdesk"))
    assert {o["exam_code"]: o["status"] for o in read.json()["exam_orders"]}["cbc"] == "ordered"
    # The blood draw cancels its own; the ultrasound room its scan.
    assert (await api.client.post(cbc, headers=api.auth(LAB), json=body)).status_code == 204
    us = f"/v1/exam-orders/{_order(visit, 'us_obstetric')}/cancel"
    assert (await api.client.post(us, headers=api.auth(US), json=body)).status_code == 204
    # The desk, as before, cancels any.
    urine = f"/v1/exam-orders/{_order(visit, 'urine')}/cancel"
    assert (
        await api.client.post(urine, headers=api.auth("frontdesk"), json=body)
    ).status_code == 204


async def test_a_station_no_longer_completes_a_visit(api: Api) -> None:
    visit = await _her_day(api)
    path = f"/v1/visits/{visit['id']}/complete"
    assert_problem(await api.client.post(path, headers=api.auth(US)), 403)
    queue = await api.client.get(f"/v1/visits/{visit['id']}/queue", headers=api.auth("frontdesk"))
    assert {p["station"] for p in queue.json()["places"]} >= {"US", "LAB"}
    done = await api.client.post(path, headers=api.auth("frontdesk"))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"


async def test_a_station_starts_and_reads_only_a_visit_with_a_place_at_it(api: Api) -> None:
    visit = await _her_day(api)
    plain = (await arrive(api, serial="003"))["visit"]  # no ultrasound today
    queue = f"/v1/visits/{plain['id']}/queue"
    us_places = await api.client.get(queue, headers=api.auth("frontdesk"))
    assert "US" not in {p["station"] for p in us_places.json()["places"]}
    assert (
        assert_problem(await api.client.get(queue, headers=api.auth(US)), 403)["station_code"]
        == "US"
    )
    assert_problem(
        await api.client.post(f"/v1/visits/{plain['id']}/start", headers=api.auth(US)), 403
    )
    # Her visit has a place at the ultrasound room: its account reads and starts it.
    mine = await api.client.get(f"/v1/visits/{visit['id']}/queue", headers=api.auth(US))
    assert mine.status_code == 200, mine.text
    started = await api.client.post(f"/v1/visits/{visit['id']}/start", headers=api.auth(US))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    # The desk reads any.
    assert (await api.client.get(queue, headers=api.auth("frontdesk"))).status_code == 200
