"""What her butler reads of the plan, on both databases (the probe's F1, F3, F4, F8):
a plan whose reason has gone is under review and its items from that reason paused; titles
name no diagnosis; the assessment that just happened is not a task to book it; the same
follow-up is not given twice; a backwards GA range names its field."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.feed.models import Task
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import ogtt_obx, oru
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, checked_in_mother, open_session, order_number

DIAGNOSES = ("anaemia", "diabetes", "gdm", "贫血", "糖尿病", "high risk")


def _hb(value: int, flag: str) -> str:
    return (
        f"OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN^HGB^血红蛋白^L||{value}|"
        f"g/L^g/L^UCUM|110-150|{flag}|||F"
    )


async def _due(api: Api, mother_id: str) -> dict[str, Any]:
    due = await api.client.get(
        f"/v1/mothers/{mother_id}/health-plan/due", headers=api.auth("butler1")
    )
    assert due.status_code == 200, due.text
    return due.json()  # type: ignore[no-any-return]


async def _plan(api: Api, mother_id: str, who: str = "doctor") -> dict[str, Any]:
    read = await api.client.get(f"/v1/mothers/{mother_id}/health-plan", headers=api.auth(who))
    assert read.status_code == 200, read.text
    return read.json()  # type: ignore[no-any-return]


async def test_iron_advice_leaves_the_butlers_list_when_the_anaemia_flag_is_withdrawn(
    api: Api, lab: Lab
) -> None:
    mother, visit = await checked_in_mother(api)
    cbc = {
        "mrn": mother["mrn"],
        "order": order_number(visit),
        "filler": "F-CBC",
        "code": "58410-2^CBC panel - Blood by Automated count^LN^BLD-RT^血常规^L",
    }
    assert await lab.hl7(oru(control_id="H1", obx=[_hb(95, "L")], **cbc)) == ("AA", "H1")
    made = await api.client.post(
        f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"), json={}
    )
    assert made.status_code == 201, made.text
    signed = await api.client.post(
        f"/v1/mothers/{mother['id']}/health-plan/versions/1/sign",
        headers=api.auth("doctor") | {"If-Match": '"1"'},
    )
    assert signed.status_code == 200, signed.text
    before = await _due(api, mother["id"])
    assert before["under_review"] is False
    titles = {i["code"]: i["title"] for i in before["items"]}
    assert titles["iron_advice"] == "补铁 Iron advice"  # no "(anaemia, moderate)" on her phone
    for title in titles.values():
        assert not any(d in title.lower() for d in DIAGNOSES), title
    # The clinician's view keeps the reason apart.
    items = {i["code"]: i for i in made.json()["latest"]["sections"]["follow_ups"]["items"]}
    assert items["iron_advice"]["reason"] == "anaemia, moderate"
    assert items["iron_advice"]["from_flags"] == ["anaemia"]

    # The lab corrects the Hb to a normal value: the anaemia flag is withdrawn.
    corrected = oru(control_id="H2", obr25="C", obx=[_hb(125, "N")], **cbc)
    assert await lab.hl7(corrected) == ("AA", "H2")
    after = await _due(api, mother["id"])
    assert after["under_review"] is True
    note = after["under_review_note"]
    assert "reviewed" in note
    assert not any(d in note.lower() for d in DIAGNOSES)
    codes = {i["code"] for i in after["items"]}
    assert not codes & {"iron_advice", "repeat_hb"}, codes  # its reason is gone
    # The butler's read asked a clinician to review it (once), as the clinician's read does.
    worklist = (await api.client.get("/v1/worklist", headers=api.auth("doctor"))).json()["items"]
    assert len([i for i in worklist if i["kind"] == "health_plan.review"]) == 1
    assert "Anaemia no longer flagged" in (await _plan(api, mother["id"]))["stale_reasons"]


async def _gdm_mother(api: Api, lab: Lab) -> dict[str, Any]:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, height_cm=160, pre_pregnancy_weight_kg=55)
    mother, visit = her["mother"], her["visit"]
    ogtt = oru(
        control_id="G1",
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-OGTT",
        code="OGTT^75 g OGTT^L",
        obx=ogtt_obx(5.3, 8.6, 7.9),
    )
    assert await lab.hl7(ogtt) == ("AA", "G1")
    return mother  # type: ignore[no-any-return]


async def _assess(api: Api, mother_id: str) -> dict[str, Any]:
    done = await api.client.post(
        f"/v1/mothers/{mother_id}/nutrition-assessments",
        headers=api.auth("nutritionist"),
        json={"diet": "rice three times a day", "sign": True},
    )
    assert done.status_code == 201, done.text
    return done.json()  # type: ignore[no-any-return]


async def _open_tasks(
    session_factory: async_sessionmaker[AsyncSession], mother_id: str
) -> list[str]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(Task.title).where(
                    Task.mother_id == uuid.UUID(mother_id), Task.completed_at.is_(None)
                )
            )
        )


async def test_the_assessment_is_the_nutritionist_item_and_a_follow_up_is_not_given_twice(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await _gdm_mother(api, lab)
    await _assess(api, mother["id"])
    plan = await _plan(api, mother["id"])
    follow = {i["code"]: i for i in plan["latest"]["sections"]["follow_ups"]["items"]}
    consult = follow["nutritionist_consultation"]
    assert consult["title"] == "营养门诊 See the nutritionist"
    assert consult["satisfied"]["what"] == "nutrition assessment"  # recorded as done
    tasks = await _open_tasks(session_factory, mother["id"])
    assert not [t for t in tasks if "nutritionist" in t.lower()], tasks
    assert not any(d in t.lower() for t in tasks for d in DIAGNOSES), tasks
    due = {i["code"] for i in (await _due(api, mother["id"]))["items"]}
    assert "nutritionist_consultation" not in due
    assert "glucose_monitoring" in due
    # A second assessment: the glucose-monitoring task she has open is not given again.
    await _assess(api, mother["id"])
    again = await _open_tasks(session_factory, mother["id"])
    assert sorted(again) == sorted(tasks), again
    assert len([t for t in again if t.startswith("血糖监测")]) == 1


async def test_a_backwards_ga_range_names_the_field_and_sources_carry_no_caveat(
    api: Api, lab: Lab
) -> None:
    mother = await _gdm_mother(api, lab)
    made = await api.client.post(
        f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"), json={}
    )
    assert made.status_code == 201, made.text
    for section in made.json()["latest"]["sections"].values():
        for item in section.get("items", []):
            assert "verify" not in item["source"].lower(), item
    energy = {i["code"]: i for i in made.json()["latest"]["sections"]["nutrition"]["items"]}
    gdm_energy = energy["energy_second"]
    assert gdm_energy["source_verified"] is False
    assert "printed text" in gdm_energy["source_note"]
    bad = await api.client.post(
        f"/v1/mothers/{mother['id']}/health-plan/versions",
        headers=api.auth("doctor") | {"If-Match": '"1"'},
        json={
            "note": "x",
            "changes": [
                {
                    "section": "follow_ups",
                    "code": "walk",
                    "set": {"title": "Walk", "ga_from": 200, "ga_to": 100},
                }
            ],
        },
    )
    problem = assert_problem(bad, 422)
    assert problem["errors"][0]["field"] == "changes.0.set.ga_from"  # type: ignore[index]
