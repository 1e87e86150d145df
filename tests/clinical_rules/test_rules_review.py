"""The clinical review's defects in the rules (issue 16), through the real routes, both
databases.

Cases (case → expected → source):
- HL7 fasting 5.09 / 5.1 mmol/L, 91 / 92 mg/dL; 1 h 179 / 180 mg/dL; 2 h 152 / 153 mg/dL
  → no GDM / GDM (mg/dL compared with the mg/dL thresholds as written, never rounded)
  → IADPSG 2010, CSOG/CMA 2022
- fasting 125 / 126 mg/dL → no overt / overt diabetes suggested → CSOG/CMA 2022, WHO 2013
- Hb 110 / 109.95 g/L → none / anaemia mild (a doctor's item, priority 2); 85 → moderate
  (1); 65 → severe (0); a worse grade on a later report → a new item → WHO 2011, CMA 2014
- weight outside, outside (referral) → within → outside, outside → a second referral task
- a dismissed gestational-hypertension suggestion does not come back on later readings; two
  new raised readings 4 h apart suggest it again → CSOG 2020
- a severe reading while her primary butler is on leave pages the cover at her side today
- the rules failing on a blood pressure reading → a CRITICAL doctor's item (check it now)
- butler task titles name no condition (the diagnosis stays on the clinicians' list)
- a reading reported by the mother at home says so in the firing
- a confirmed risk grade's history carries who confirmed it and their note
- twins' weight gain lists her readings (weight, gain) without band or status
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clinical import service as clinical_service
from app.core.clock import FrozenClock
from app.feed.models import Task
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session, order_number


async def _get(api: Api, path: str, who: str = "doctor", **params: Any) -> Any:
    response = await api.client.get(path, headers=api.auth(who), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _record(
    api: Api, mother_id: str, *readings: dict[str, Any], who: str = "doctor", **extra: Any
) -> list[dict[str, Any]]:
    response = await api.client.post(
        f"/v1/mothers/{mother_id}/measurements",
        headers=api.auth(who),
        json={"readings": list(readings), **extra},
    )
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _worklist(api: Api, who: str = "doctor") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await _get(api, "/v1/worklist", who))["items"]
    return items


async def _tasks(factory: async_sessionmaker[AsyncSession], mother_id: str) -> list[Task]:
    async with factory() as session:
        rows = await session.scalars(
            select(Task).where(Task.mother_id == uuid.UUID(mother_id)).order_by(Task.created_at)
        )
        return list(rows)


async def _firings(api: Api, mother_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await _get(api, f"/v1/mothers/{mother_id}/rule-firings"))[
        "items"
    ]
    return items


# Thresholds, never rounded ------------------------------------------------------------------

NORMAL = {"fasting": ("4.6", "mmol/L"), "h1": ("7.9", "mmol/L"), "h2": ("6.9", "mmol/L")}


def _ogtt(mother: dict[str, Any], visit: dict[str, Any], **values: tuple[str, str]) -> str:
    v = {**NORMAL, **values}
    return oru(
        control_id="C1",
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-OGTT",
        code="OGTT^75 g OGTT^L",
        obx=[
            f"OBX|1|NM|1558-6^Fasting glucose^LN||{v['fasting'][0]}|{v['fasting'][1]}||N|||F",
            "OBX|2|NM|1504-0^Glucose 1 hour post 75 g glucose PO^LN||"
            f"{v['h1'][0]}|{v['h1'][1]}||N|||F",
            "OBX|3|NM|1518-0^Glucose 2 hours post 75 g glucose PO^LN||"
            f"{v['h2'][0]}|{v['h2'][1]}||N|||F",
        ],
    )


@pytest.mark.parametrize(
    ("values", "gdm"),
    [
        ({"fasting": ("5.09", "mmol/L")}, False),
        ({"fasting": ("5.1", "mmol/L")}, True),
        ({"fasting": ("91", "mg/dL")}, False),
        ({"fasting": ("92", "mg/dL")}, True),
        ({"h1": ("179", "mg/dL")}, False),
        ({"h1": ("180", "mg/dL")}, True),
        ({"h2": ("152", "mg/dL")}, False),
        ({"h2": ("153", "mg/dL")}, True),
        ({"h1": ("9.99", "mmol/L")}, False),
    ],
)
async def test_gdm_at_its_thresholds_as_written_in_each_unit(
    api: Api, lab: Lab, values: dict[str, tuple[str, str]], gdm: bool
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    assert (await lab.hl7(_ogtt(mother, her["visit"], **values)))[0] == "AA"
    flags = {f["code"] for f in (await _get(api, f"/v1/mothers/{mother['id']}/flags"))["items"]}
    assert ("gdm" in flags) is gdm, flags
    if gdm:
        (firing,) = [f for f in await _firings(api, mother["id"]) if f["outcome"] == "gdm"]
        unit = next(iter(values.values()))[1]
        assert unit in firing["explanation"]


@pytest.mark.parametrize(("fasting", "overt"), [("125", False), ("126", True)])
async def test_overt_diabetes_at_126_mg_dl(api: Api, lab: Lab, fasting: str, overt: bool) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    body = _ogtt(mother, her["visit"], fasting=(fasting, "mg/dL"))
    assert (await lab.hl7(body))[0] == "AA"
    rules = {f["rule_id"] for f in await _firings(api, mother["id"])}
    assert ("ogtt.overt" in rules) is overt


def _hb(
    mother: dict[str, Any], visit: dict[str, Any], value: str, control: str = "H1", obr25: str = "F"
) -> str:
    return oru(
        control_id=control,
        mrn=mother["mrn"],
        order=order_number(visit),
        obr25=obr25,
        obx=[f"OBX|1|NM|718-7^Hemoglobin^LN||{value}|g/L|110-150||||F"],
    )


@pytest.mark.parametrize(
    ("hb", "grade", "priority"),
    [("110", None, None), ("109.95", "mild", 2), ("85", "moderate", 1), ("65", "severe", 0)],
)
async def test_anaemia_is_graded_and_puts_an_item_on_the_doctors_list(
    api: Api, lab: Lab, hb: str, grade: str | None, priority: int | None
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    assert (await lab.hl7(_hb(mother, her["visit"], hb)))[0] == "AA"
    flags = (await _get(api, f"/v1/mothers/{mother['id']}/flags"))["items"]
    anaemia = [(f["code"], f["grade"]) for f in flags if f["code"] == "anaemia"]
    items = [i for i in await _worklist(api) if i["kind"] == "clinical.hb.anaemia"]
    if grade is None:
        assert anaemia == []
        assert items == []
        return
    assert anaemia == [("anaemia", grade)]
    (item,) = items
    assert item["priority"] == priority
    assert grade in item["title"]


# Weight gain: a second episode refers her again -------------------------------------------


async def test_a_second_weight_gain_episode_refers_her_again(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, height_cm=160, pre_pregnancy_weight_kg=55)
    mother_id = her["mother"]["id"]
    for kg in (75, 75):  # +20 kg at 25+5: above her band twice
        await _record(api, mother_id, {"kind": "weight", "value": kg, "unit": "kg"})
        clock.advance(timedelta(hours=1))
    assert len(await _tasks(session_factory, mother_id)) == 1
    await _record(api, mother_id, {"kind": "weight", "value": 60, "unit": "kg"})  # within
    (ended,) = [f for f in await _firings(api, mother_id) if f["rule_id"] == "gwg.referral"]
    assert ended["state"] == "withdrawn"
    assert "back within" in (ended["decision_note"] or "")
    for kg in (75, 75):
        clock.advance(timedelta(hours=1))
        await _record(api, mother_id, {"kind": "weight", "value": kg, "unit": "kg"})
    tasks = await _tasks(session_factory, mother_id)
    assert len(tasks) == 2
    # The first referral was real: its task is not withdrawn by the episode's end.
    assert not (tasks[0].completion_note or "").startswith("withdrawn")
    # The second referral is a task of its own, open, and the nutritionist has it on her list.
    assert tasks[1].completed_at is None
    assert tasks[1].id != tasks[0].id
    referrals = [
        i for i in await _worklist(api, "nutritionist") if i["kind"] == "clinical.gwg_referral"
    ]
    assert referrals


# A dismissed suggestion stands for the readings it read ----------------------------------


async def test_a_dismissed_hypertension_suggestion_does_not_come_back(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 142, "value2": 92})
    clock.advance(timedelta(hours=4))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 141, "value2": 91})
    (gh,) = [
        f for f in await _firings(api, mother_id) if f["outcome"] == "gestational_hypertension"
    ]
    dismissed = await api.client.post(
        f"/v1/rule-firings/{gh['id']}/decision",
        headers=api.auth("doctor"),
        json={"decision": "dismissed", "note": "white-coat: home readings normal"},
    )
    assert dismissed.status_code == 200, dismissed.text
    clock.advance(timedelta(hours=1))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 118, "value2": 76})
    clock.advance(timedelta(hours=1))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 143, "value2": 93})
    ghs = [f for f in await _firings(api, mother_id) if f["outcome"] == "gestational_hypertension"]
    assert [f["state"] for f in ghs] == ["dismissed"]
    # Two new raised readings 4 hours apart: a new suggestion, on those two.
    clock.advance(timedelta(hours=4))
    (last,) = await _record(api, mother_id, {"kind": "blood_pressure", "value": 145, "value2": 95})
    ghs = [f for f in await _firings(api, mother_id) if f["outcome"] == "gestational_hypertension"]
    assert sorted(f["state"] for f in ghs) == ["dismissed", "suggested"]
    (new,) = [f for f in ghs if f["state"] == "suggested"]
    assert new["inputs"]["readings"][-1]["id"] == last["id"]
    assert new["inputs"]["readings"][0]["systolic"] == 143


# The butler at her side today --------------------------------------------------------------


async def test_a_severe_reading_pages_the_cover_butler_at_her_side(api: Api) -> None:
    b1 = str(api.staff.butlers["butler1"].id)
    leave = await api.client.post(
        f"/v1/butlers/{b1}/leaves",
        headers=api.auth("admin"),
        json={"starts_on": TODAY, "ends_on": TODAY, "reason": "course"},
    )
    assert leave.status_code in (200, 201), leave.text
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    visit = await _get(api, f"/v1/visits/{her['visit']['id']}", "frontdesk")
    cover = visit["accompanying_butler_id"]
    assert cover is not None
    assert cover != b1
    await _record(api, her["mother"]["id"], {"kind": "blood_pressure", "value": 165, "value2": 100})
    (alert,) = (await _get(api, "/v1/alerts"))["items"]
    assert alert["butler_id"] == cover


# A failure of the rules on a blood pressure ------------------------------------------------


async def test_the_rules_failing_on_a_blood_pressure_is_a_critical_item(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)

    async def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("rules broke")

    monkeypatch.setattr(clinical_service, "_evaluate_measurement", broken)
    await _record(api, her["mother"]["id"], {"kind": "blood_pressure", "value": 170, "value2": 112})
    (item,) = [i for i in await _worklist(api) if i["kind"] == "clinical.rules_failed"]
    assert item["priority"] == 0
    assert "blood pressure" in item["title"]
    assert "now" in item["title"]


# Neutral butler tasks ----------------------------------------------------------------------


async def test_the_butlers_task_names_no_diagnosis(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    assert (await lab.hl7(_ogtt(mother, her["visit"], h1=("10.6", "mmol/L"))))[0] == "AA"
    (task,) = await _tasks(session_factory, mother["id"])
    assert task.title == "Book her nutritionist appointment"
    (item,) = [
        i for i in await _worklist(api, "nutritionist") if i["kind"] == "clinical.nutrition_consult"
    ]
    assert "Gestational diabetes" in item["title"]


# A reading she took at home ----------------------------------------------------------------


async def test_a_home_reading_is_named_in_the_firing(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(
        api,
        mother_id,
        {"kind": "fetal_heart_rate", "value": 170},
        who="butler1",
        reported_by_mother=True,
    )
    (firing,) = [f for f in await _firings(api, mother_id) if f["rule_id"] == "fhr.abnormal"]
    assert "reported by the mother at home" in firing["explanation"]
    assert firing["inputs"]["reported_by_mother"] is True


# The risk history keeps the doctor's note -----------------------------------------------


async def test_a_confirmed_grade_keeps_who_confirmed_it_and_their_note(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother_id = her["mother"]["id"]
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 142, "value2": 92})
    clock.advance(timedelta(hours=4))
    await _record(api, mother_id, {"kind": "blood_pressure", "value": 141, "value2": 91})
    (risk,) = [f for f in await _firings(api, mother_id) if f["outcome"] == "risk:yellow"]
    decided = await api.client.post(
        f"/v1/rule-firings/{risk['id']}/decision",
        headers=api.auth("doctor"),
        json={"decision": "confirmed", "note": "yellow: raised twice, no proteinuria"},
    )
    assert decided.status_code == 200, decided.text
    history = str(await _get(api, f"/v1/mothers/{mother_id}/risk-history"))
    assert "yellow: raised twice, no proteinuria" in history
    assert "confirmed by doctor" in history


# Twins: her readings without a band ----------------------------------------------------


async def test_twins_weight_gain_lists_her_readings_without_a_band(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, height_cm=160, pre_pregnancy_weight_kg=55)
    mother_id = her["mother"]["id"]
    response = await api.client.post(
        f"/v1/mothers/{mother_id}/care-plan/indications",
        headers=api.auth("doctor"),
        json={"code": "multiple_pregnancy", "reason": "two gestational sacs on the early scan"},
    )
    assert response.status_code in (200, 201), response.text
    await _record(api, mother_id, {"kind": "weight", "value": 63, "unit": "kg"})
    wg = await _get(api, f"/v1/mothers/{mother_id}/weight-gain")
    assert wg["not_covered"]
    (reading,) = wg["readings"]
    assert (reading["weight_kg"], reading["gain_kg"]) == (63, 8)
    assert (reading["low_kg"], reading["high_kg"], reading["status"]) == (None, None, None)


async def test_anaemia_regraded_worse_keeps_the_doctors_item_and_raises_it(
    api: Api, lab: Lab
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    assert (await lab.hl7(_hb(mother, her["visit"], "105")))[0] == "AA"
    amended = _hb(mother, her["visit"], "85", control="H2", obr25="C")
    assert (await lab.hl7(amended))[0] == "AA"
    flags = (await _get(api, f"/v1/mothers/{mother['id']}/flags"))["items"]
    assert [(f["code"], f["grade"]) for f in flags if f["code"] == "anaemia"] == [
        ("anaemia", "moderate")
    ]
    (item,) = [i for i in await _worklist(api) if i["kind"] == "clinical.hb.anaemia"]
    assert item["priority"] == 1


async def test_a_worse_anaemia_suggests_the_higher_risk_colour(api: Api, lab: Lab) -> None:
    """Hb 105 suggests yellow; an amendment to Hb 55 suggests orange (NHFPC 2017: Hb 40-60),
    though the anaemia flag already stands."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    mother = her["mother"]
    assert (await lab.hl7(_hb(mother, her["visit"], "105")))[0] == "AA"
    suggested = [
        f["suggested_grade"]
        for f in await _firings(api, mother["id"])
        if f["suggested_grade"] and f["state"] == "suggested"
    ]
    assert suggested == ["yellow"]
    amended = _hb(mother, her["visit"], "55", control="H2", obr25="C")
    assert (await lab.hl7(amended))[0] == "AA"
    suggested = [
        f["suggested_grade"]
        for f in await _firings(api, mother["id"])
        if f["suggested_grade"] and f["state"] == "suggested"
    ]
    assert suggested == ["orange"]


# Severe blood pressure entered in kPa ------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "alert"),
    [(21.3, 13.3, True), (21.2, 14.5, False), (21.2, 14.6, True), (21.2, 14.7, True)],
)
async def test_a_severe_blood_pressure_in_kpa_raises_the_critical_alert(
    api: Api, systolic: float, diastolic: float, alert: bool
) -> None:
    """Stored in whole mmHg, half up, as a clinic records it (measurements): 21.3 kPa is
    159.76 → 160 mmHg, severe (>= 160/110, CSOG 2020); 21.2/14.5 kPa is 159/108.8 → 159/109,
    not severe; 14.6 kPa is 109.51 → 110 and 14.7 kPa 110.26 → 110: severe."""
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api)
    reading = {"kind": "blood_pressure", "value": systolic, "value2": diastolic, "unit": "kPa"}
    await _record(api, her["mother"]["id"], reading)
    alerts = (await _get(api, "/v1/alerts"))["items"]
    assert bool(alerts) is alert, alerts
