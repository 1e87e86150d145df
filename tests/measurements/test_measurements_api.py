"""Her measurements through the API, on both databases: units converted and ranges checked
(a 422 naming the field, nothing stored), corrections that keep what they replace, the
butler's readings reported by the mother and no one else's, the vitals station's readings on
finishing the step, enrolment's height and weight, and the timeline joining the lab's results.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.measurements.domain import MeasurementKind
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import enrol, mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, call, op
from tests.helpers.visits import TODAY, open_session, order_number

K = MeasurementKind


async def _record(
    api: Api, mother_id: str, who: str, *readings: dict[str, Any], **body: Any
) -> Any:
    return await api.client.post(
        f"/v1/mothers/{mother_id}/measurements",
        headers=api.auth(who),
        json={"readings": list(readings), **body},
    )


async def _list(
    api: Api, mother_id: str, who: str = "doctor", **params: Any
) -> list[dict[str, Any]]:
    response = await api.client.get(
        f"/v1/mothers/{mother_id}/measurements", headers=api.auth(who), params=params
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_doctor_records_weight_in_jin_and_blood_pressure_in_kpa(api: Api) -> None:
    mother = await mother_with_butler(api)
    response = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "weight", "value": 121, "unit": "斤"},
        {"kind": "blood_pressure", "value": 18.7, "value2": 12.0, "unit": "kPa"},
        {"kind": "urine_protein", "result": "++"},
        {"kind": "fundal_height", "value": 24},
    )
    assert response.status_code == 201, response.text
    weight, bp, protein, fundus = response.json()["items"]
    assert (weight["value"], weight["unit"], weight["entered"]) == (
        60.5,
        "kg",
        {"value": 121, "unit": "斤"},
    )
    assert (bp["value"], bp["value2"], bp["unit"]) == (140, 90, "mmHg")  # whole mmHg
    assert bp["entered"] == {"value": 18.7, "value2": 12.0, "unit": "kPa"}
    assert (protein["result"], protein["value"]) == ("2+", 2)
    # LMP 2026-06-01, today 2026-11-28: 25+5.
    assert (fundus["ga_days"], fundus["gestational_age"]) == (180, "25+5")
    assert {m["source"] for m in (weight, bp)} == {"doctor"}
    assert not weight["reported_by_mother"]
    assert weight["recorded_by_role"] == "doctor"
    listed = await _list(api, mother["id"], kind=["weight", "blood_pressure"])
    assert [m["kind"] for m in listed] == ["weight", "blood_pressure"]


async def test_a_severe_blood_pressure_in_kpa_is_stored_as_whole_mmhg(api: Api) -> None:
    """21.3/13.3 kPa is 160/100 mmHg, a severe systolic: stored as 159.8 it read below 160."""
    mother = await mother_with_butler(api)
    response = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "blood_pressure", "value": 21.3, "value2": 13.3, "unit": "kPa"},
        {"kind": "blood_pressure", "value": 21.2, "value2": 14.7, "unit": "kPa"},
    )
    assert response.status_code == 201, response.text
    severe, other = response.json()["items"]
    assert (severe["value"], severe["value2"], severe["unit"]) == (160, 100, "mmHg")
    assert severe["entered"] == {"value": 21.3, "value2": 13.3, "unit": "kPa"}
    assert (other["value"], other["value2"]) == (159, 110)


async def test_an_implausible_reading_is_a_422_naming_it_and_nothing_is_stored(api: Api) -> None:
    mother = await mother_with_butler(api)
    response = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "weight", "value": 62},
        {"kind": "weight", "value": 125, "unit": "kg"},
        {"kind": "blood_pressure", "value": 120, "value2": 80},
    )
    assert response.status_code == 201  # 125 kg is plausible
    response = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "pulse", "value": 80},
        {"kind": "weight", "value": 251},  # 斤 typed as kg
    )
    problem = assert_problem(response, 422)
    (error,) = problem["errors"]  # type: ignore[misc]
    assert error["field"] == "readings.1.value"
    assert error["pointer"] == "#/readings/1/value"
    assert "30-250 kg" in error["detail"]
    response = await _record(
        api, mother["id"], "doctor", {"kind": "blood_pressure", "value": 80, "value2": 120}
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "readings.0.value2"  # type: ignore[index]
    response = await _record(
        api, mother["id"], "doctor", {"kind": "weight", "value": 60, "unit": "stone"}
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "readings.0.unit"  # type: ignore[index]
    response = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "weight", "value": 60, "measured_at": "2026-12-01T08:00:00+08:00"},
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "readings.0.measured_at"  # type: ignore[index]
    assert len(await _list(api, mother["id"])) == 3  # none of the refused, not even the pulse


async def test_her_butler_records_what_she_reports_and_another_butler_gets_404(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api)  # butler1's
    response = await _record(
        api,
        mother["id"],
        "butler1",
        {
            "kind": "blood_pressure",
            "value": 132,
            "value2": 84,
            "measured_at": "2026-11-28T08:30:00+08:00",
        },
    )
    assert response.status_code == 201, response.text
    (reading,) = response.json()["items"]
    assert (reading["source"], reading["reported_by_mother"]) == ("butler", True)
    # reported_by_mother cannot be switched off by her butler.
    response = await _record(
        api, mother["id"], "butler1", {"kind": "weight", "value": 61}, reported_by_mother=False
    )
    assert response.json()["items"][0]["reported_by_mother"] is True
    # Butler2 is not hers: her readings do not exist for him.
    other = await _record(api, mother["id"], "butler2", {"kind": "weight", "value": 61})
    assert_problem(other, 404)
    for path in ("measurements", "timeline"):
        got = await api.client.get(
            f"/v1/mothers/{mother['id']}/{path}", headers=api.auth("butler2")
        )
        assert_problem(got, 404)
    correction = await api.client.post(
        f"/v1/measurements/{reading['id']}/corrections",
        headers=api.auth("butler2"),
        json={"value": 130, "value2": 84, "reason": "misread"},
    )
    assert_problem(correction, 404)
    # The front desk takes no readings.
    assert_problem(
        await _record(api, mother["id"], "frontdesk", {"kind": "weight", "value": 61}), 403
    )
    async with session_factory() as session:
        rows = list(await session.scalars(select(Measurement)))
    assert len(rows) == 2
    assert all(r.reported_by_mother for r in rows)


async def test_a_correction_keeps_the_earlier_value_and_who_changed_it(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # butler1's, at the vitals station today (where the station takes her pulse below)
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    mother = (await arrive(api))["mother"]
    response = await _record(api, mother["id"], "butler1", {"kind": "weight", "value": 65.2})
    original = response.json()["items"][0]
    path = f"/v1/measurements/{original['id']}/corrections"
    # Her butler may correct what the mother reported; a reason is required.
    assert_problem(
        await api.client.post(
            path, headers=api.auth("butler1"), json={"value": 62.5, "reason": ""}
        ),
        422,
    )
    response = await api.client.post(
        path,
        headers=api.auth("doctor"),
        json={"value": 125, "unit": "斤", "reason": "she gave it in 斤, entered as kg"},
    )
    assert response.status_code == 201, response.text
    corrected = response.json()
    assert (corrected["value"], corrected["corrects_id"], corrected["current"]) == (
        62.5,
        original["id"],
        True,
    )
    assert corrected["measured_at"] == original["measured_at"]
    assert corrected["reported_by_mother"] is True  # still her own reading
    current = await _list(api, mother["id"])
    assert [m["id"] for m in current] == [corrected["id"]]
    everything = await _list(api, mother["id"], include_corrected="true")
    earlier = next(m for m in everything if m["id"] == original["id"])
    assert (earlier["value"], earlier["current"], earlier["superseded_by_name"]) == (
        65.2,
        False,
        "doctor",
    )
    assert earlier["correction_reason"] == "she gave it in 斤, entered as kg"
    # The replaced reading cannot be corrected again: the current one can.
    assert_problem(
        await api.client.post(path, headers=api.auth("doctor"), json={"value": 63, "reason": "x"}),
        409,
    )
    # A station's reading is not the butler's to correct.
    station = await _record(api, mother["id"], "station", {"kind": "pulse", "value": 88})
    pulse = station.json()["items"][0]
    assert_problem(
        await api.client.post(
            f"/v1/measurements/{pulse['id']}/corrections",
            headers=api.auth("butler1"),
            json={"value": 78, "reason": "counted twice"},
        ),
        403,
    )
    async with session_factory() as session:
        repo = MeasurementRepository(session)
        pregnancy_id = (await session.get(Measurement, uuid.UUID(original["id"]))).pregnancy_id  # type: ignore[union-attr]
        assert [m.value for m in await repo.current(pregnancy_id, [K.WEIGHT])] == [62.5]


async def test_enrolment_records_height_and_pre_pregnancy_weight(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, height_cm=160, pre_pregnancy_weight_kg=47.36)
    async with session_factory() as session:
        rows = list(
            await session.scalars(
                select(Measurement).where(Measurement.mother_id == uuid.UUID(mother["id"]))
            )
        )
        baseline = await MeasurementRepository(session).baseline(rows[0].pregnancy_id)
    assert (baseline.height_cm, baseline.pre_pregnancy_weight_kg) == (160, 47.36)
    assert {(r.source.value, r.ga_days) for r in rows} == {("enrolment", None)}
    response = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json={**mother_body(serial="003"), "height_cm": 1.6},  # metres in the cm field
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "height_cm"  # type: ignore[index]
    listed = await api.client.get("/v1/mothers", headers=api.auth("frontdesk"))
    assert len(listed.json()["items"]) == 1  # the refused enrolment stored nothing


async def test_the_vitals_station_finishes_her_step_with_its_readings(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    called = await call(api, "VIT")
    entry = called["called"]["entry"]
    assert (await op(api, entry["id"], "start")).status_code == 200
    # The NST's result is not the vitals station's: refused, and the step is not finished.
    wrong = await op(api, entry["id"], "finish", readings=[{"kind": "nst", "result": "reactive"}])
    assert assert_problem(wrong, 422)["errors"][0]["field"] == "readings.0.kind"  # type: ignore[index]
    implausible = await op(
        api,
        entry["id"],
        "finish",
        readings=[{"kind": "blood_pressure", "value": 300, "value2": 90}],
    )
    assert_problem(implausible, 422)
    finished = await op(
        api,
        entry["id"],
        "finish",
        readings=[
            {"kind": "weight", "value": 126, "unit": "斤"},
            {"kind": "blood_pressure", "value": 142, "value2": 91},
            {"kind": "pulse", "value": 84},
        ],
    )
    assert finished.status_code == 200, finished.text
    assert finished.json()["state"] == "done"
    readings = await _list(api, her["mother"]["id"])
    assert [(m["kind"], m["value"], m["source"]) for m in readings] == [
        ("weight", 63.0, "station"),
        ("blood_pressure", 142.0, "station"),
        ("pulse", 84.0, "station"),
    ]
    assert {m["visit_id"] for m in readings} == {her["visit"]["id"]}


async def test_finishing_without_readings_works_as_before(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    entry = (await call(api, "VIT"))["called"]["entry"]
    await op(api, entry["id"], "start")
    response = await api.client.post(
        f"/v1/queue-entries/{entry['id']}/finish", headers=api.auth("station")
    )
    assert response.status_code == 200, response.text
    assert await _list(api, her["mother"]["id"]) == []


async def test_finishing_vitals_with_an_empty_readings_list_is_refused(api: Api) -> None:
    """``readings: []`` is a vitals step finished with nothing measured, most likely a client
    that lost them: a 422 naming ``readings``, and the step is not finished."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    entry = (await call(api, "VIT"))["called"]["entry"]
    await op(api, entry["id"], "start")
    empty = await op(api, entry["id"], "finish", readings=[])
    problem = assert_problem(empty, 422)
    assert problem["errors"][0]["field"] == "readings"  # type: ignore[index]
    assert "leave readings out" in problem["errors"][0]["detail"]  # type: ignore[index]
    finished = await op(api, entry["id"], "finish", readings=[{"kind": "pulse", "value": 80}])
    assert finished.status_code == 200, finished.text
    assert [m["kind"] for m in await _list(api, her["mother"]["id"])] == ["pulse"]


async def test_finishing_a_done_ticket_with_readings_is_the_same_409_as_without(
    api: Api,
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    entry = (await call(api, "VIT"))["called"]["entry"]
    await op(api, entry["id"], "start")
    assert (await op(api, entry["id"], "finish")).status_code == 200
    without = assert_problem(await op(api, entry["id"], "finish"), 409)
    for readings in ([{"kind": "pulse", "value": 80}], []):
        again = assert_problem(await op(api, entry["id"], "finish", readings=readings), 409)
        assert (again["type"], again["detail"]) == (without["type"], without["detail"])
    assert await _list(api, her["mother"]["id"]) == []  # nothing was recorded


async def test_the_timeline_joins_her_hl7_haemoglobin_and_ogtt(api: Api, lab: Lab) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother, visit = her["mother"], her["visit"]
    await _record(api, mother["id"], "doctor", {"kind": "weight", "value": 63})
    cbc = oru(
        control_id="CTL-HB",
        mrn=mother["mrn"],
        order=order_number(visit, "cbc"),
        obx=[
            "OBX|1|NM|718-7^Hemoglobin^LN||10.4|g/dL|11.0-15.0|L|||F",
            "OBX|2|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F",
        ],
    )
    assert await lab.hl7(cbc) == ("AA", "CTL-HB")
    ogtt = oru(
        control_id="CTL-OGTT",
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-2",
        code="OGTT^75 g OGTT^L",
        obx=[
            "OBX|1|NM|1558-6^Fasting glucose^LN||92|mg/dL|<92|N|||F",
            "OBX|2|NM|1504-0^Glucose 1 hour post 75 g glucose PO^LN||10.6|mmol/L|<10.0|H|||F",
            "OBX|3|NM|1518-0^Glucose 2 hours post 75 g glucose PO^LN||8.1|mmol/L|<8.5|N|||F",
        ],
    )
    assert await lab.hl7(ogtt) == ("AA", "CTL-OGTT")
    response = await api.client.get(
        f"/v1/mothers/{mother['id']}/timeline", headers=api.auth("butler1")
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    labs = [(i["kind"], i["value"], i["unit"], i["code"]) for i in items if i["type"] == "lab"]
    assert sorted(labs) == sorted(
        [
            ("haemoglobin", 104.0, "g/L", "718-7"),
            ("glucose_fasting", 5.1, "mmol/L", "1558-6"),  # 92 mg/dL
            ("ogtt_1h", 10.6, "mmol/L", "1504-0"),  # 1504-0 with a 75 g display
            ("ogtt_2h", 8.1, "mmol/L", "1518-0"),
        ]
    )
    hb = next(i for i in items if i["kind"] == "haemoglobin")
    assert (hb["gestational_age"], hb["flag"], hb["entered"]) == (
        "25+5",
        "L",
        {"value": 10.4, "unit": "g/dL"},
    )
    assert [i["kind"] for i in items if i["type"] == "measurement"] == ["weight"]


async def test_a_local_lab_code_the_map_does_not_know_is_counted_not_silently_dropped(
    api: Api, lab: Lab
) -> None:
    """A Chinese LIS sends its own codes: HGB (known now) is her haemoglobin on the timeline; an
    unknown local code whose display or code looks like an analyte of the timeline, in a unit the
    map knows, is counted with its report id (and logged with ids only) so the integration
    engineers extend LAB_CODES_FILE, instead of vanishing."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother, visit = her["mother"], her["visit"]
    cbc = oru(
        control_id="CTL-LOCAL",
        mrn=mother["mrn"],
        order=order_number(visit, "cbc"),
        obx=[
            "OBX|1|NM|HGB^血红蛋白^L||104|g/L|110-150|L|||F",
            "OBX|2|NM|X0815^血红蛋白(复检)^L||103|g/L|110-150|L|||F",
            "OBX|3|NM|GLU0^空腹血糖^L||5.3|mmol/L|3.9-6.1|N|||F",
            "OBX|4|NM|K^钾^L||4.1|mmol/L|3.5-5.5|N|||F",  # not a timeline analyte
            "OBX|5|NM|PLT^血小板^L||210|10*9/L|125-350|N|||F",
        ],
    )
    assert (await lab.hl7(cbc))[0] == "AA"
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("app.measurements").addHandler(handler)
    try:
        response = await api.client.get(
            f"/v1/mothers/{mother['id']}/timeline", headers=api.auth("doctor")
        )
    finally:
        logging.getLogger("app.measurements").removeHandler(handler)
    assert response.status_code == 200, response.text
    body = response.json()
    labs = [(i["kind"], i["value"], i["code"]) for i in body["items"] if i["type"] == "lab"]
    assert labs == [("haemoglobin", 104.0, "HGB")]
    assert body["unmapped_results"] == 2
    assert sorted(u["code"] for u in body["unmapped"]) == ["GLU0", "X0815"]
    hb = next(i for i in body["items"] if i["type"] == "lab")
    assert {u["report_id"] for u in body["unmapped"]} == {hb["report_id"]}
    logged = [r for r in records if r.getMessage() == "lab results not on the map"]
    assert logged
    # What the service wrote (the message and its extra fields, not the record's own clock and
    # process ids, where "103" can turn up by chance): ids and codes, never values.
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    written = {k: v for k, v in vars(logged[0]).items() if k not in standard}
    assert written["codes"] == ["GLU0", "X0815"]
    assert "103" not in logged[0].getMessage() + str(written)


async def test_the_desk_reads_her_readings_but_not_her_timeline_of_lab_values(api: Api) -> None:
    """The desk shows her charts (weight, blood pressure): it reads her readings; her lab
    values (the timeline) are the clinicians', the stations' and her butler's."""
    mother = await mother_with_butler(api, height_cm=160)
    listed = await api.client.get(
        f"/v1/mothers/{mother['id']}/measurements", headers=api.auth("frontdesk")
    )
    assert listed.status_code == 200, listed.text
    assert [m["kind"] for m in listed.json()["items"]] == ["height"]
    timeline = await api.client.get(
        f"/v1/mothers/{mother['id']}/timeline", headers=api.auth("frontdesk")
    )
    assert_problem(timeline, 403)
