"""The clinical rules as they store, on both databases: readings through the measurements
route and an OGTT through an HL7 ORU^R01 on the lab route.

Cases (case → expected → source):
- OGTT 1 h 10.6 mmol/L (HL7) → gdm and glucose_monitoring flags, a nutritionist item and a
  butler task, a firing with its inputs; the same result sent again → nothing doubled; an
  amendment to normal values → withdrawn (flags cleared, the task completed as withdrawn)
  → IADPSG 2010 / CSOG-CMA 2022
- BP 160/100 on one reading → a critical alert about the reading, on the register and the
  doctors' list, closed by a doctor like a lab value; 159/109 → none → CSOG 2020
- BP 160/100 corrected to 130/80 → the alert voided, off the lists → the correction rule
- 142/92 and 141/91 four hours apart at 25+5 → gestational hypertension suggested; the doctor
  confirms it (the flag confirmed, who decided); the yellow risk suggestion confirmed changes
  her grade and the risk history names the firing → CSOG 2020, NHFPC 2017
- FHR 109 → a doctor's item; 110 → none → normal baseline 110-160
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.feed.models import Task
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session, order_number

CLOSE = {"read_back": "BP 160/100 mmHg", "action_taken": "Seen at once; repeat in 15 min."}


async def _record(api: Api, mother_id: str, *readings: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.post(
        f"/v1/mothers/{mother_id}/measurements",
        headers=api.auth("doctor"),
        json={"readings": list(readings)},
    )
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _get(api: Api, path: str, who: str = "doctor", **params: Any) -> Any:
    response = await api.client.get(path, headers=api.auth(who), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _worklist(api: Api, who: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await _get(api, "/v1/worklist", who))["items"]
    return items


def _ogtt(
    mother: dict[str, Any], visit: dict[str, Any], *, control: str, h1: str, obr25: str = "F"
) -> str:
    return oru(
        control_id=control,
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-OGTT",
        code="OGTT^75 g OGTT^L",
        obr25=obr25,
        obx=[
            "OBX|1|NM|1558-6^Fasting glucose^LN||4.6|mmol/L|<5.1|N|||F",
            f"OBX|2|NM|1504-0^Glucose 1 hour post 75 g glucose PO^LN||{h1}|mmol/L|<10.0|H|||F",
            "OBX|3|NM|1518-0^Glucose 2 hours post 75 g glucose PO^LN||7.9|mmol/L|<8.5|N|||F",
        ],
    )


async def _tasks(factory: async_sessionmaker[AsyncSession], mother_id: str) -> list[Task]:
    async with factory() as session:
        rows = await session.scalars(select(Task).where(Task.mother_id == uuid.UUID(mother_id)))
        return list(rows)


async def test_an_hl7_ogtt_flags_gdm_once_and_an_amendment_withdraws_it(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother, visit = her["mother"], her["visit"]
    assert await lab.hl7(_ogtt(mother, visit, control="C1", h1="10.6")) == ("AA", "C1")
    flags = (await _get(api, f"/v1/mothers/{mother['id']}/flags", "nutritionist"))["items"]
    assert sorted(f["code"] for f in flags) == ["gdm", "glucose_monitoring"]
    firings = (await _get(api, f"/v1/mothers/{mother['id']}/rule-firings"))["items"]
    (gdm,) = [f for f in firings if f["outcome"] == "gdm"]
    assert gdm["rule_id"] == "ogtt.gdm"
    assert gdm["state"] == "recorded"
    assert gdm["inputs"]["over"] == {"ogtt_1h": 10.6}
    assert "1 h 10.6 >= 10 mmol/L" in gdm["explanation"]
    consults = [
        i for i in await _worklist(api, "nutritionist") if i["kind"] == "clinical.nutrition_consult"
    ]
    assert len(consults) == 1
    (task,) = await _tasks(session_factory, mother["id"])
    assert task.title == "Book her nutritionist appointment"
    # The same result sent again: nothing doubles.
    assert await lab.hl7(_ogtt(mother, visit, control="C2", h1="10.6", obr25="C")) == ("AA", "C2")
    assert len(await _tasks(session_factory, mother["id"])) == 1
    live = [
        f
        for f in (await _get(api, f"/v1/mothers/{mother['id']}/rule-firings"))["items"]
        if f["state"] != "withdrawn"
    ]
    assert [f["outcome"] for f in live].count("gdm") == 1


async def test_an_ogtt_corrected_to_normal_values_withdraws_gdm_and_its_task(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother, visit = her["mother"], her["visit"]
    assert await lab.hl7(_ogtt(mother, visit, control="C1", h1="10.0")) == ("AA", "C1")
    assert len((await _get(api, f"/v1/mothers/{mother['id']}/flags"))["items"]) == 2
    # Corrected to 9.9: no longer GDM. (9.99 mmol/L would be no GDM either: a value is compared
    # as sent, never rounded; a value sent in mg/dL is compared with the mg/dL thresholds as
    # IADPSG 2010 writes them, so 180 mg/dL is GDM although it converts to 9.99 mmol/L.)
    assert await lab.hl7(_ogtt(mother, visit, control="C2", h1="9.9", obr25="C")) == ("AA", "C2")
    assert (await _get(api, f"/v1/mothers/{mother['id']}/flags"))["items"] == []
    (task,) = await _tasks(session_factory, mother["id"])
    assert task.completed_at is not None
    assert (task.completion_note or "").startswith("withdrawn")
    firings = (await _get(api, f"/v1/mothers/{mother['id']}/rule-firings"))["items"]
    assert {f["outcome"]: f["state"] for f in firings} == {
        "gdm": "withdrawn",
        "risk:yellow": "withdrawn",
    }
    consults = [
        i for i in await _worklist(api, "nutritionist") if i["kind"] == "clinical.nutrition_consult"
    ]
    assert consults == []
    assert not [
        i for i in await _worklist(api, "doctor") if i["kind"] == "clinical.risk_suggestion"
    ]


async def test_a_severe_blood_pressure_is_a_critical_alert_closed_like_a_lab_value(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 159, "value2": 109})
    assert (await _get(api, "/v1/alerts"))["items"] == []
    (bp,) = await _record(api, mother_id, {"kind": "blood_pressure", "value": 160, "value2": 100})
    (alert,) = (await _get(api, "/v1/alerts"))["items"]
    assert (alert["measurement_id"], alert["report_id"], alert["state"]) == (bp["id"], None, "open")
    assert "160/100" in alert["reason"]
    # Her butler's alert names the reading, not a diagnosis or a guideline quotation; the
    # doctors' item says it all, with her visit.
    assert "重度" not in alert["reason"]
    assert "CSOG" not in alert["reason"]
    assert len(alert["reason"]) < 80
    doctors = await _worklist(api, "doctor")
    assert [i["kind"] for i in doctors].count("alert.critical") == 1
    (item,) = [i for i in doctors if i["kind"] == "alert.critical"]
    assert "CSOG 2020" in item["title"]
    assert item["visit_id"] == bp["visit_id"]
    # Not closed in time: it climbs a tier like any critical value.
    clock.advance(timedelta(minutes=16))
    escalated = await api.client.post("/v1/alerts/escalate", headers=api.auth("admin"))
    assert escalated.status_code == 200, escalated.text
    (alert,) = (await _get(api, "/v1/alerts"))["items"]
    assert alert["tier_name"] == "obstetric_lead"
    closed = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "acknowledged"
    assert not [i for i in await _worklist(api, "doctor") if i["kind"].startswith("alert.")]


async def test_a_corrected_severe_reading_voids_its_alert(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    (bp,) = await _record(api, mother_id, {"kind": "blood_pressure", "value": 160, "value2": 100})
    response = await api.client.post(
        f"/v1/measurements/{bp['id']}/corrections",
        headers=api.auth("doctor"),
        json={"value": 130, "value2": 80, "reason": "typed 160 for 130"},
    )
    assert response.status_code == 201, response.text
    (alert,) = (await _get(api, "/v1/alerts", open="false"))["items"]
    assert alert["state"] == "voided"
    assert not [i for i in await _worklist(api, "doctor") if i["kind"] == "alert.critical"]
    firings = (await _get(api, f"/v1/mothers/{mother_id}/rule-firings"))["items"]
    assert [f["state"] for f in firings if f["rule_id"] == "bp.severe"] == ["withdrawn"]


async def test_two_raised_readings_4_hours_apart_suggest_hypertension_for_the_doctor(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 142, "value2": 92})
    clock.advance(timedelta(hours=3, minutes=59))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 141, "value2": 91})
    assert not (await _get(api, f"/v1/mothers/{mother_id}/rule-firings"))["items"]
    clock.advance(timedelta(minutes=1))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 141, "value2": 91})
    firings = (await _get(api, f"/v1/mothers/{mother_id}/rule-firings"))["items"]
    (gh,) = [f for f in firings if f["outcome"] == "gestational_hypertension"]
    assert gh["state"] == "suggested"
    assert gh["inputs"]["hours_apart"] == 4.0
    (risk,) = [f for f in firings if f["outcome"] == "risk:yellow"]
    (flag,) = (await _get(api, f"/v1/mothers/{mother_id}/flags"))["items"]
    assert (flag["code"], flag["suggested"]) == ("gestational_hypertension", True)
    nope = await api.client.post(
        f"/v1/rule-firings/{gh['id']}/decision",
        headers=api.auth("nutritionist"),
        json={"decision": "confirmed", "note": "x"},
    )
    assert nope.status_code == 403
    decided = await api.client.post(
        f"/v1/rule-firings/{gh['id']}/decision",
        headers=api.auth("doctor"),
        json={"decision": "confirmed", "note": "BP raised twice, no proteinuria"},
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["state"], decided.json()["decided_by_role"]) == ("confirmed", "doctor")
    (flag,) = (await _get(api, f"/v1/mothers/{mother_id}/flags"))["items"]
    assert flag["suggested"] is False
    assert flag["confirmed_by_name"]
    again = await api.client.post(
        f"/v1/rule-firings/{gh['id']}/decision",
        headers=api.auth("doctor"),
        json={"decision": "dismissed", "note": "changed my mind"},
    )
    assert again.status_code == 409
    graded = await api.client.post(
        f"/v1/rule-firings/{risk['id']}/decision",
        headers=api.auth("doctor"),
        json={"decision": "confirmed", "note": "yellow for gestational hypertension"},
    )
    assert graded.status_code == 200, graded.text
    record = await _get(api, f"/v1/mothers/{mother_id}")
    assert "yellow" in str(record)
    assert risk["id"] in str(record) or risk["id"] in str(
        await _get(api, f"/v1/mothers/{mother_id}/risk-history")
    )


async def test_a_fetal_heart_rate_below_110_alerts_the_doctor(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(api, mother_id, {"kind": "fetal_heart_rate", "value": 110})
    assert not [i for i in await _worklist(api, "doctor") if i["kind"] == "clinical.fhr.abnormal"]
    await _record(api, mother_id, {"kind": "fetal_heart_rate", "value": 109})
    items = [i for i in await _worklist(api, "doctor") if i["kind"] == "clinical.fhr.abnormal"]
    assert len(items) == 1
    assert "109 bpm is below 110-160" in items[0]["title"]
