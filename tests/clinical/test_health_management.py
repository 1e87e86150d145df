"""One mother's health management, end to end through the API, both databases (issue 16).

王芳 enrols at 25+5 with her height and pre-pregnancy weight (BMI 21.5: normal, WS/T 801—2022),
the vitals station records her weight (in 斤, as Chinese scales show it), blood pressure and
pulse when it finishes her vitals step; the lab system sends her 75 g OGTT as an HL7 v2.5
ORU^R01 with a 1-hour value of 10.6 mmol/L (IADPSG 2010: ≥ 10.0 → gestational diabetes); the
GDM flag and glucose monitoring are on her pregnancy and the nutritionist's worklist asks for a
consultation; the nutrition station calls her after vitals, the nutritionist records her
assessment (diet, activity, supplements; BMI, weight-gain status and the diabetes read by the
service) and signs the plan it produces, with a follow-up call in 3 days; her butler sees that
task in her assignments and the plan's items due (glucose monitoring among them); the doctor
reviews the OGTT report, and his advice reaches the butler's pick-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.core.settings import Settings
from app.main import create_app
from tests.helpers.api import Api
from tests.helpers.feed import assignments
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.queues import arrive, call, op
from tests.helpers.visits import TODAY, open_session, order_number


async def _get(api: Api, path: str, who: str) -> Any:
    response = await api.client.get(path, headers=api.auth(who))
    assert response.status_code == 200, f"{path}: {response.text}"
    return response.json()


def _ogtt(
    mrn: str, order: str, *, control: str = "LIS-OGTT-0001", obr25: str = "F", h1: str = "10.6"
) -> str:
    """As a Chinese LIS sends it: v2.5, local order code, the 1 h value by LOINC 1504-0 with a
    "75 g" display (as many senders do), values in mmol/L, the OBX-8 flag set."""
    flag = "H" if float(h1) >= 10.0 else "N"
    return oru(
        control_id=control,
        mrn=mrn,
        order=order,
        filler="F-OGTT-1",
        code="OGTT75^75g口服葡萄糖耐量试验^L",
        obr25=obr25,
        obx=[
            "OBX|1|NM|1558-6^空腹血糖 Fasting glucose^LN||4.8|mmol/L|<5.1|N|||F",
            f"OBX|2|NM|1504-0^1小时血糖 Glucose 1 hour post 75 g glucose PO^LN||{h1}|mmol/L"
            f"|<10.0|{flag}|||{'C' if obr25 == 'C' else 'F'}",
            "OBX|3|NM|1518-0^2小时血糖 Glucose 2 hours post 75 g glucose PO^LN||8.1|mmol/L"
            "|<8.5|N|||F",
        ],
    )


async def test_one_mother_from_enrolment_to_her_butlers_follow_up(api: Api, lab: Lab) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    # Enrolment with her height and pre-pregnancy weight (55 kg at 160 cm: BMI 21.48).
    arrived = await arrive(
        api, height_cm=160, pre_pregnancy_weight_kg=55, extra_exams=["nutrition_assessment"]
    )
    mother, visit = arrived["mother"], arrived["visit"]
    mid = mother["id"]
    baseline = await _get(api, f"/v1/mothers/{mid}/weight-gain", "doctor")
    assert baseline["table"] == "wst-801-2022", baseline
    assert baseline["group"] == "normal", baseline
    assert round(baseline["bmi"], 2) == 21.48

    # The vitals station finishes her vitals step with its readings: 121 斤 = 60.5 kg.
    vit = await call(api, "VIT")
    entry = vit["called"]["entry"]["id"]
    assert (await op(api, entry, "start")).status_code == 200
    finished = await op(
        api,
        entry,
        "finish",
        readings=[
            {"kind": "weight", "value": 121, "unit": "斤"},
            {"kind": "blood_pressure", "value": 118, "value2": 76},
            {"kind": "pulse", "value": 82},
        ],
    )
    assert finished.status_code == 200, finished.text
    readings = (await _get(api, f"/v1/mothers/{mid}/measurements", "doctor"))["items"]
    weight = next(r for r in readings if r["kind"] == "weight")
    assert weight["value"] == 60.5
    assert weight["source"] == "station"
    gain = await _get(api, f"/v1/mothers/{mid}/weight-gain", "doctor")
    reading = gain["readings"][-1]
    assert reading["gain_kg"] == 5.5
    assert reading["low_kg"] <= 5.5 <= reading["high_kg"]
    assert reading["status"] == "within"

    # The lab's OGTT: 1 h 10.6 ≥ 10.0 → gestational diabetes.
    assert await lab.hl7(_ogtt(mother["mrn"], order_number(visit, "ogtt"))) == (
        "AA",
        "LIS-OGTT-0001",
    )
    flags = {f["code"] for f in (await _get(api, f"/v1/mothers/{mid}/flags", "doctor"))["items"]}
    assert {"gdm", "glucose_monitoring"} <= flags, flags
    firing = next(
        f
        for f in (await _get(api, f"/v1/mothers/{mid}/rule-firings", "doctor"))["items"]
        if f["outcome"] == "gdm"
    )
    assert firing["inputs"]["over"] == {"ogtt_1h": 10.6}, firing  # the inputs that fired it
    assert "IADPSG 2010" in firing["explanation"]
    timeline = (await _get(api, f"/v1/mothers/{mid}/timeline", "doctor"))["items"]
    assert {"glucose_fasting", "ogtt_1h", "ogtt_2h"} <= {e["kind"] for e in timeline}, timeline
    consult = [
        i
        for i in (await _get(api, "/v1/worklist", "nutritionist"))["items"]
        if i["mother_id"] == mid
    ]
    assert consult, "the nutritionist is asked to see her"

    # The nutrition station calls her (after vitals); the nutritionist assesses and signs.
    nut = await call(api, "NUT")
    assert nut["called"] is not None, nut
    nut_entry = nut["called"]["entry"]["id"]
    assert (await op(api, nut_entry, "start")).status_code == 200
    response = await api.client.post(
        f"/v1/mothers/{mid}/nutrition-assessments",
        headers=api.auth("nutritionist"),
        json={
            "diet": "三餐规律，主食以白米饭为主 / three meals, white rice at each",
            "activity": "walks 20 minutes after dinner",
            "supplements": ["folic acid 0.4 mg"],
            "visit_id": visit["id"],
            "follow_ups": [{"title": "Call her about her food diary", "due_in_days": 3}],
            "sign": True,
        },
    )
    assert response.status_code == 201, response.text
    assessment = response.json()
    assert assessment["bmi_group"] == "normal"
    assert assessment["gwg_status"] == "within"
    assert assessment["diabetes"] == "gdm", assessment
    assert assessment["plan_signed"] is True
    assert assessment["finished_queue_entry_id"] == nut_entry

    plan = await _get(api, f"/v1/mothers/{mid}/health-plan", "doctor")
    assert plan["signed_version"] == assessment["plan_version"]
    signed = plan["latest"]
    assert signed["signed_by_role"] == "nutritionist"
    items = {i["code"]: i for s in signed["sections"].values() for i in s["items"]}
    assert "1800-2100 kcal a day (diabetes)" in items["energy_second"]["title"]  # GDM energy
    assert items["weight_total"]["title"].endswith("8-14 kg")  # WS/T 801, normal BMI
    assert "glucose_monitoring" in items
    assert "fetal_movement_counting" in items

    # She has been seen: the consultation leaves the nutritionist's list, and the butler's
    # task to book it is done.
    still = [
        i
        for i in (await _get(api, "/v1/worklist", "nutritionist"))["items"]
        if i["mother_id"] == mid
    ]
    assert still == []
    # Her butler: the follow-up task in her assignments, and the plan's items due.
    mine = (await assignments(api)).json()
    titles = [i["title"] for i in mine["items"] if i["kind"] == "task" and i["mother_id"] == mid]
    assert "Call her about her food diary" in titles, titles
    assert not [t for t in titles if t.startswith("Book her nutritionist appointment")], titles
    due = await _get(api, f"/v1/mothers/{mid}/health-plan/due", "butler1")
    assert any("glucose" in i["code"] for i in due["items"]), due
    other = await api.client.get(f"/v1/mothers/{mid}/health-plan/due", headers=api.auth("butler2"))
    assert other.status_code == 404

    # The doctor reviews the OGTT report; the advice travels with the butler's pick-up.
    to_review = (await _get(api, "/v1/reports-to-review", "doctor"))["items"]
    report_id = next(r["report_id"] for r in to_review if r["mother_id"] == mid)
    reviewed = await api.client.post(
        f"/v1/reports/{report_id}/review",
        headers=api.auth("doctor"),
        json={
            "interpretation": "GDM by IADPSG: 1 h 10.6 mmol/L.",
            "advice_for_mother": "饮食控制，每日监测血糖 / diet and daily glucose checks",
            "follow_ups": [{"kind": "repeat_test", "exam_code": "fasting_glucose", "in_days": 14}],
        },
    )
    assert reviewed.status_code == 201, reviewed.text
    mine = (await assignments(api)).json()
    pickup = next(i for i in mine["items"] if i["id"] == report_id)
    assert pickup["kind"] == "report_pickup"
    assert pickup["advice"]["advice"].startswith("饮食控制"), pickup
    repeat = [i for i in mine["items"] if i["kind"] == "task" and "fasting" in i["title"].lower()]
    assert repeat, mine
    assert repeat[0]["at"].startswith("2026-12-12")  # due in 14 days


@pytest.mark.parametrize(
    "setting",
    [
        "measurement_limits_file",
        "lab_codes_file",
        "clinical_rules_file",
        "gwg_tables_file",
        "health_plan_nutrition_file",
        "health_plan_fetal_monitoring_file",
    ],
)
def test_a_hospital_table_that_does_not_hold_together_stops_start_up(
    setting: str, tmp_path: Path
) -> None:
    """Each health-management table a hospital may replace is checked when the service starts,
    not at her first reading."""
    broken = tmp_path / "table.json"
    broken.write_text(json.dumps({"version": "local-1", "rows": []}))
    settings = Settings(database_url="sqlite+aiosqlite://", **{setting: str(broken)})
    with pytest.raises((ValueError, KeyError, TypeError)):
        create_app(settings)
    create_app(Settings(database_url="sqlite+aiosqlite://"))  # the built-in tables hold


async def _her_gdm(api: Api, lab: Lab, control: str = "LIS-OGTT-0001") -> tuple[Any, Any]:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    arrived = await arrive(api, height_cm=160, pre_pregnancy_weight_kg=55)
    mother, visit = arrived["mother"], arrived["visit"]
    assert (await lab.hl7(_ogtt(mother["mrn"], order_number(visit, "ogtt"))))[0] == "AA"
    flags = (await _get(api, f"/v1/mothers/{mother['id']}/flags", "doctor"))["items"]
    assert {"gdm", "glucose_monitoring"} <= {f["code"] for f in flags}
    return mother, visit


async def _open(api: Api, mother_id: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await _get(api, f"/v1/mothers/{mother_id}/{path}", "doctor"))[
        "items"
    ]
    return items


async def _live_gdm(api: Api, mother_id: str) -> list[dict[str, Any]]:
    return [
        f
        for f in await _open(api, mother_id, "rule-firings")
        if f["outcome"] == "gdm" and f["state"] != "withdrawn"
    ]


async def test_a_second_correction_with_the_same_status_is_read_again(api: Api, lab: Lab) -> None:
    """C then C: the report's status does not change, its values do; the rules read them."""
    mother, visit = await _her_gdm(api, lab)
    order = order_number(visit, "ogtt")
    assert (await lab.hl7(_ogtt(mother["mrn"], order, control="C2", obr25="C")))[0] == "AA"
    assert len(await _live_gdm(api, mother["id"])) == 1  # the same values: nothing doubles
    assert (await lab.hl7(_ogtt(mother["mrn"], order, control="C3", obr25="C", h1="9.6")))[
        0
    ] == "AA"
    assert await _live_gdm(api, mother["id"]) == []
    assert await _open(api, mother["id"], "flags") == []


async def test_a_cancelled_ogtt_withdraws_her_gdm(api: Api, lab: Lab) -> None:
    mother, visit = await _her_gdm(api, lab)
    order = order_number(visit, "ogtt")
    assert (await lab.hl7(_ogtt(mother["mrn"], order, control="X1", obr25="X")))[0] == "AA"
    assert await _live_gdm(api, mother["id"]) == []
    assert await _open(api, mother["id"], "flags") == []
    mine = (await assignments(api)).json()["items"]
    assert not [i for i in mine if i["kind"] == "task" and "nutritionist" in i["title"]]


async def test_a_detached_report_takes_its_review_and_follow_ups_with_it(
    api: Api, lab: Lab
) -> None:
    """Reviewed with a follow-up, then found to be another patient's: the review no longer
    stands, the follow-up leaves her butler's list, the GDM flag goes, the doctors are told."""
    mother, _visit = await _her_gdm(api, lab)
    to_review = (await _get(api, "/v1/reports-to-review", "doctor"))["items"]
    report_id = next(r["report_id"] for r in to_review if r["mother_id"] == mother["id"])
    reviewed = await api.client.post(
        f"/v1/reports/{report_id}/review",
        headers=api.auth("doctor"),
        json={
            "interpretation": "GDM.",
            "advice_for_mother": "diet",
            "follow_ups": [{"kind": "call_mother", "in_days": 3}],
        },
    )
    assert reviewed.status_code == 201, reviewed.text
    task_id = reviewed.json()["follow_ups"][0]["task_id"]
    before = (await assignments(api)).json()["items"]
    assert any(i["id"] == task_id for i in before)
    detached = await api.client.post(
        f"/v1/reports/{report_id}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "another patient's OGTT: same name, other MRN"},
    )
    assert detached.status_code == 200, detached.text
    after = (await assignments(api)).json()["items"]
    assert not any(i["id"] == task_id for i in after), after
    # The report is no longer hers: the doctor still reads its history, the review marked
    # withdrawn and naming her as the mother it was for; her history lists it withdrawn too.
    (kept,) = (await _get(api, f"/v1/reports/{report_id}/reviews", "doctor"))["items"]
    assert (kept["withdrawn"], kept["of_current_mother"]) == (True, False)
    assert kept["mother_id"] == mother["id"]
    history = (await _get(api, f"/v1/mothers/{mother['id']}/reviews", "doctor"))["items"]
    assert [(r["current"], r["withdrawn"]) for r in history] == [(False, True)]
    assert await _live_gdm(api, mother["id"]) == []
    told = [
        i
        for i in (await _get(api, "/v1/worklist", "doctor"))["items"]
        if i["kind"] == "review.withdrawn"
    ]
    assert len(told) == 1
    assert "another patient" not in told[0]["title"]  # no free text, no other patient
