"""Her health plan through the API, on both databases: generated, changed as new versions
(If-Match), signed by a doctor or the nutritionist and never changed after (the database
refuses it too), her butler's items due; the nutrition assessment with its tasks and the
nutrition exam it finishes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.feed.models import Task
from app.healthplan.models import HealthPlanVersion, NutritionAssessment
from app.queues.models import EntryState, QueueEntry
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import ogtt_obx, oru
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, call, serve
from tests.helpers.visits import TODAY, checked_in_mother, open_session, order_number


async def _generate(api: Api, mother_id: str, who: str = "doctor", etag: str | None = None) -> Any:
    headers = api.auth(who) | ({"If-Match": etag} if etag else {})
    return await api.client.post(f"/v1/mothers/{mother_id}/health-plan", headers=headers, json={})


async def _change(api: Api, mother_id: str, etag: str | None, *changes: dict[str, Any]) -> Any:
    headers = api.auth("doctor") | ({"If-Match": etag} if etag else {})
    return await api.client.post(
        f"/v1/mothers/{mother_id}/health-plan/versions",
        headers=headers,
        json={"note": "reviewed with her", "changes": list(changes)},
    )


async def _sign(api: Api, mother_id: str, version: int, etag: str | None, who: str) -> Any:
    headers = api.auth(who) | ({"If-Match": etag} if etag else {})
    return await api.client.post(
        f"/v1/mothers/{mother_id}/health-plan/versions/{version}/sign", headers=headers
    )


WALK = {
    "section": "follow_ups",
    "code": "walk_daily",
    "set": {"title": "散步 Walk 30 minutes after dinner", "ga_from": 0, "for_butler": True},
}


async def test_a_plan_is_generated_changed_and_signed_every_version_kept(api: Api) -> None:
    mother = await mother_with_butler(api, height_cm=160, pre_pregnancy_weight_kg=64)
    none_yet = await api.client.get(  # before one is generated: no versions, not an error
        f"/v1/mothers/{mother['id']}/health-plan/versions", headers=api.auth("doctor")
    )
    assert none_yet.status_code == 200, none_yet.text
    assert none_yet.json()["items"] == []
    made = await _generate(api, mother["id"])
    assert made.status_code == 201, made.text
    assert made.headers["etag"] == '"1"'
    plan = made.json()
    assert plan["signed_version"] is None
    latest = plan["latest"]
    assert latest["kind"] == "generated"
    assert not latest["signed"]
    # 25+5 today, BMI 25.0 (overweight under WS/T 801—2022).
    assert latest["inputs"]["bmi_group"] == "overweight"
    assert latest["inputs"]["gwg_table"] == "wst-801-2022"
    assert latest["sections"]["weight"]["total_kg"] == [7.0, 11.0]
    assert latest["sections"]["nutrition"]["trimester"] == "second"

    assert_problem(await _change(api, mother["id"], None, WALK), 428)
    changed = await _change(api, mother["id"], '"1"', WALK)
    assert changed.status_code == 201, changed.text
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["latest"]["change_note"] == "reviewed with her"
    assert_problem(await _change(api, mother["id"], '"1"', WALK), 412)  # stale copy
    bad = await _change(
        api, mother["id"], '"2"', {"section": "follow_ups", "code": "nope", "remove": True}
    )
    problem = assert_problem(bad, 422)
    assert problem["errors"][0]["field"] == "changes.0.code"  # type: ignore[index]

    assert_problem(await _sign(api, mother["id"], 1, '"1"', "doctor"), 409)  # not the newest
    assert_problem(await _sign(api, mother["id"], 2, None, "doctor"), 428)
    assert_problem(await _sign(api, mother["id"], 2, '"2"', "butler1"), 403)
    signed = await _sign(api, mother["id"], 2, '"2"', "nutritionist")
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_version"] == 2
    assert signed.json()["latest"]["signed_by_role"] == "nutritionist"
    assert_problem(await _sign(api, mother["id"], 2, '"2"', "doctor"), 409)  # signed already

    versions = await api.client.get(
        f"/v1/mothers/{mother['id']}/health-plan/versions", headers=api.auth("doctor")
    )
    assert [v["version"] for v in versions.json()["items"]] == [2, 1]
    first = await api.client.get(
        f"/v1/mothers/{mother['id']}/health-plan/versions/1", headers=api.auth("nutritionist")
    )
    assert "walk_daily" not in {i["code"] for i in first.json()["sections"]["follow_ups"]["items"]}


async def test_the_database_refuses_to_change_a_signed_version(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api)
    await _generate(api, mother["id"])
    assert (await _sign(api, mother["id"], 1, '"1"', "doctor")).status_code == 200
    async with session_factory() as session:
        with pytest.raises((IntegrityError, DBAPIError)):
            await session.execute(
                text("UPDATE health_plan_versions SET change_note = 'edited' WHERE version = 1")
            )
        await session.rollback()
        with pytest.raises((IntegrityError, DBAPIError)):
            await session.execute(text("DELETE FROM health_plan_versions WHERE version = 1"))
        await session.rollback()
    # A draft's content never changes either: a change is a new version.
    await _generate(api, mother["id"], etag='"1"')
    async with session_factory() as session:
        with pytest.raises((IntegrityError, DBAPIError)):
            await session.execute(
                text("UPDATE health_plan_versions SET sections = '{}' WHERE version = 2")
            )
        await session.rollback()


async def test_her_butler_sees_the_signed_plans_items_due_and_no_other_butler_does(
    api: Api,
) -> None:
    mother = await mother_with_butler(api)
    await _generate(api, mother["id"])
    await _change(api, mother["id"], '"1"', WALK)
    due = await api.client.get(
        f"/v1/mothers/{mother['id']}/health-plan/due", headers=api.auth("butler1")
    )
    assert due.status_code == 200, due.text
    assert due.json()["items"] == []
    assert due.json()["signed_version"] is None
    await _sign(api, mother["id"], 2, '"2"', "doctor")
    due = await api.client.get(
        f"/v1/mothers/{mother['id']}/health-plan/due", headers=api.auth("butler1")
    )
    body = due.json()
    assert body["gestational_age"] == "25+5"
    codes = {i["code"] for i in body["items"]}
    assert "walk_daily" in codes
    assert not codes & {"energy_second", "protein_second"}  # the nutritionist's, not the butler's
    other = await api.client.get(
        f"/v1/mothers/{mother['id']}/health-plan/due", headers=api.auth("butler2")
    )
    assert_problem(other, 404)
    assert_problem(
        await api.client.get(
            f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("butler1")
        ),
        403,
    )


async def test_the_nutrition_assessment_makes_the_nutrition_section_tasks_and_signs(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api, height_cm=160, pre_pregnancy_weight_kg=47.36)
    response = await api.client.post(
        f"/v1/mothers/{mother['id']}/nutrition-assessments",
        headers=api.auth("nutritionist"),
        json={
            "diet": "三餐规律, 主食以白米饭为主; little milk",
            "activity": "walks 20 minutes a day",
            "supplements": ["folic acid 0.4 mg", "calcium 600 mg"],
            "follow_ups": [{"title": "Ask her for a 3-day food diary", "due_in_days": 3}],
            "sign": True,
        },
    )
    assert response.status_code == 201, response.text
    done = response.json()
    assert done["bmi"] == 18.5
    assert done["bmi_group"] == "normal"
    assert done["plan_version"] == 1
    assert done["plan_signed"] is True
    assert done["assessed_by_role"] == "nutritionist"
    assert len(done["task_ids"]) == 1
    plan = (
        await api.client.get(f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"))
    ).json()
    assert plan["signed_version"] == 1
    assessment = plan["latest"]["sections"]["nutrition"]["assessment"]
    assert assessment["supplements"] == ["folic acid 0.4 mg", "calcium 600 mg"]
    async with session_factory() as session:
        task = (
            await session.scalars(select(Task).where(Task.mother_id == uuid.UUID(mother["id"])))
        ).one()
        assert task.title == "Ask her for a 3-day food diary"
        assert task.butler_id is not None
        row = (await session.scalars(select(NutritionAssessment))).one()
        version = await session.get(HealthPlanVersion, row.plan_version_id)
        assert version is not None
        assert version.signed_by_name is not None
    # A doctor may assess too; a butler may not.
    assert_problem(
        await api.client.post(
            f"/v1/mothers/{mother['id']}/nutrition-assessments",
            headers=api.auth("butler1"),
            json={"diet": "x"},
        ),
        403,
    )
    listed = await api.client.get(
        f"/v1/mothers/{mother['id']}/nutrition-assessments", headers=api.auth("frontdesk")
    )
    assert len(listed.json()["items"]) == 1


async def test_the_assessment_finishes_her_nutrition_exam_after_vitals(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    arrived = await arrive(api, extra_exams=["nutrition_assessment"])  # queues like the others
    mother, visit = arrived["mother"], arrived["visit"]
    # Vitals before the nutrition assessment: the nutrition station cannot call her yet.
    early = await call(api, "NUT")
    assert early["called"] is None, early
    await serve(api, "VIT")
    called = await call(api, "NUT")
    assert called["called"] is not None, called
    entry_id = called["called"]["entry"]["id"]
    response = await api.client.post(
        f"/v1/mothers/{mother['id']}/nutrition-assessments",
        headers=api.auth("nutritionist"),
        json={"diet": "balanced", "visit_id": visit["id"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["finished_queue_entry_id"] == entry_id
    async with session_factory() as session:
        entry = await session.get(QueueEntry, uuid.UUID(entry_id))
        assert entry is not None
        assert entry.state == EntryState.DONE
    # Without an exam under way the assessment stands alone.
    again = await api.client.post(
        f"/v1/mothers/{mother['id']}/nutrition-assessments",
        headers=api.auth("doctor"),
        json={"diet": "balanced"},
    )
    assert again.status_code == 201, again.text
    assert again.json()["finished_queue_entry_id"] is None


# Regeneration keeps the clinicians' edits and the assessment (and needs If-Match) ------------


async def test_regenerating_needs_if_match_and_keeps_edits_and_the_assessment(api: Api) -> None:
    mother = await mother_with_butler(api, height_cm=160, pre_pregnancy_weight_kg=64)
    assert (await _generate(api, mother["id"])).status_code == 201
    energy = {"section": "nutrition", "code": "energy_second", "set": {"title": "Energy 2000"}}
    assert (await _change(api, mother["id"], '"1"', WALK, energy)).status_code == 201
    assessed = await api.client.post(
        f"/v1/mothers/{mother['id']}/nutrition-assessments",
        headers=api.auth("nutritionist"),
        json={"diet": "rice twice a day", "supplements": ["folic acid 0.4 mg"]},
    )
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["plan_version"] == 3
    plan = (
        await api.client.get(f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"))
    ).json()
    # The assessment kept the clinician's items too.
    nutrition = {i["code"]: i for i in plan["latest"]["sections"]["nutrition"]["items"]}
    assert nutrition["energy_second"]["title"] == "Energy 2000"
    follow_ups = {i["code"] for i in plan["latest"]["sections"]["follow_ups"]["items"]}
    assert "walk_daily" in follow_ups

    assert_problem(await _generate(api, mother["id"]), 428)  # a plan exists: say which copy
    assert_problem(await _generate(api, mother["id"], etag='"2"'), 412)
    again = await _generate(api, mother["id"], etag='"3"')
    assert again.status_code == 201, again.text
    latest = again.json()["latest"]
    assert latest["version"] == 4
    assert latest["kind"] == "generated"
    nutrition = {i["code"]: i for i in latest["sections"]["nutrition"]["items"]}
    assert nutrition["energy_second"]["title"] == "Energy 2000"
    assert nutrition["energy_second"]["changed_by"] == "doctor (doctor)"
    assert {i["code"] for i in latest["sections"]["follow_ups"]["items"]} >= {"walk_daily"}
    kept = latest["sections"]["nutrition"]["assessment"]
    assert kept["diet"] == "rice twice a day"
    assert kept["kept_from_version"] == 3
    assert latest["inputs"]["regenerated_from_version"] == 3
    assert set(latest["inputs"]["kept_items"]) == {
        "nutrition.energy_second",
        "follow_ups.walk_daily",
    }


async def test_signing_an_older_version_is_a_409_naming_the_newest(api: Api) -> None:
    mother = await mother_with_butler(api)
    await _generate(api, mother["id"])
    await _change(api, mother["id"], '"1"', WALK)
    # She read the plan (ETag "2") and signs version 1: a newer version exists.
    problem = assert_problem(await _sign(api, mother["id"], 1, '"2"', "doctor"), 409)
    assert "version 2" in str(problem["detail"])
    assert problem["latest_version"] == 2
    assert_problem(await _sign(api, mother["id"], 2, '"1"', "doctor"), 412)  # a stale copy


async def test_removing_and_setting_one_item_in_one_change_is_a_422_naming_it(api: Api) -> None:
    mother = await mother_with_butler(api)
    await _generate(api, mother["id"])
    await _change(api, mother["id"], '"1"', WALK)
    both = await _change(
        api,
        mother["id"],
        '"2"',
        {"section": "follow_ups", "code": "walk_daily", "remove": True},
        WALK,
    )
    problem = assert_problem(both, 422)
    assert "walk_daily" in problem["errors"][0]["detail"]  # type: ignore[index]


# A signed plan goes stale when her data changes --------------------------------------------------


async def _ogtt_gdm(api: Api, lab: Lab) -> dict[str, Any]:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, height_cm=160, pre_pregnancy_weight_kg=55)
    return her


async def test_a_signed_plan_goes_stale_when_gdm_is_flagged_and_asks_once_for_a_review(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    her = await _ogtt_gdm(api, lab)
    mother, visit = her["mother"], her["visit"]
    await _generate(api, mother["id"])
    assert (await _sign(api, mother["id"], 1, '"1"', "nutritionist")).status_code == 200
    clock.advance(timedelta(minutes=40))
    fresh = (
        await api.client.get(f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"))
    ).json()
    assert fresh["stale"] is False
    assert fresh["stale_reasons"] == []
    ogtt = oru(
        control_id="C1",
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-OGTT",
        code="OGTT^75 g OGTT^L",
        obx=ogtt_obx(4.6, 10.6, 7.9),
    )
    assert await lab.hl7(ogtt) == ("AA", "C1")
    for _ in range(2):  # read twice: one item
        read = await api.client.get(
            f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor")
        )
        body = read.json()
        assert body["stale"] is True, body
        assert "GDM flagged after signing" in body["stale_reasons"]
    for who in ("doctor", "nutritionist"):
        items = (await api.client.get("/v1/worklist", headers=api.auth(who))).json()["items"]
        reviews = [i for i in items if i["kind"] == "health_plan.review"]
        assert len(reviews) == 1, items
        assert reviews[0]["mother_id"] == mother["id"]
        # Who it is about, on the screen: her MRN and her masked name (loaded in one query).
        assert reviews[0]["mother_mrn"] == mother["mrn"]
        name = mother["name"]
        assert reviews[0]["mother_masked_name"] == name[0] + "*" * (len(name) - 2) + name[-1]
    # A new version signed: no longer stale, the review leaves the lists.
    again = await _generate(api, mother["id"], etag='"1"')
    assert again.status_code == 201, again.text
    assert (await _sign(api, mother["id"], 2, '"2"', "nutritionist")).status_code == 200
    body = (
        await api.client.get(f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor"))
    ).json()
    assert body["stale"] is False
    assert "glucose_monitoring" in {
        i["code"] for i in body["latest"]["sections"]["follow_ups"]["items"]
    }
    items = (await api.client.get("/v1/worklist", headers=api.auth("doctor"))).json()["items"]
    assert not [i for i in items if i["kind"] == "health_plan.review"]


# Anaemia from the lab brings the iron advice ------------------------------------------------------


HB_105 = (
    "OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN^HGB^血红蛋白^L||105|g/L^g/L^UCUM|"
    "110-150|L|||F"
)


async def test_a_mild_anaemia_from_the_lab_puts_iron_advice_with_its_source_in_the_plan(
    api: Api, lab: Lab
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(
        control_id="CBC-1",
        mrn=mother["mrn"],
        order=order_number(visit),
        code="58410-2^CBC panel - Blood by Automated count^LN^BLD-RT^血常规^L",
        obx=[HB_105],
    )
    assert await lab.hl7(body) == ("AA", "CBC-1")
    made = await _generate(api, mother["id"])
    assert made.status_code == 201, made.text
    items = {i["code"]: i for i in made.json()["latest"]["sections"]["follow_ups"]["items"]}
    iron = items["iron_advice"]
    assert iron["inputs"]["anaemia_grade"] == "mild"
    assert "supplement" in iron["detail"].lower()
    assert "dietary iron" in iron["detail"].lower()
    assert "CMA 2014" in iron["source"]
    assert "WHO 2012" in iron["source"]
    assert "repeat_hb" in items


@pytest.mark.parametrize(
    "assignment",
    [
        "kind = 'changed'",
        "change_note = 'edited'",
        "created_by_name = 'someone else'",
        "created_by_role = 'nutritionist'",
        "created_by_id = NULL",
        "created_at = created_at || ''",
    ],
)
async def test_the_database_refuses_to_change_what_an_unsigned_version_proposed(
    api: Api, session_factory: async_sessionmaker[AsyncSession], assignment: str
) -> None:
    mother = await mother_with_butler(api)
    await _generate(api, mother["id"])
    async with session_factory() as session:
        if assignment.startswith("created_at"):  # a moment later, in each dialect's terms
            later = "created_at + interval '1 minute'"
            if session.get_bind().dialect.name == "sqlite":
                later = "'2030-01-01 00:00:00.000000'"
            assignment = f"created_at = {later}"
        with pytest.raises((IntegrityError, DBAPIError)):
            await session.execute(
                text(f"UPDATE health_plan_versions SET {assignment} WHERE version = 1")  # noqa: S608 - constants
            )
        await session.rollback()
    # Signing (the signature columns, once) is still the one update allowed.
    assert (await _sign(api, mother["id"], 1, '"1"', "doctor")).status_code == 200


@pytest.mark.postgres_only
async def test_concurrent_reads_of_a_stale_plan_ask_once_for_a_review(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    """Eight reads at once of a plan gone stale: one review item, not one a read (the plan's
    row is locked while the item is checked and raised)."""
    her = await _ogtt_gdm(api, lab)
    mother, visit = her["mother"], her["visit"]
    await _generate(api, mother["id"])
    assert (await _sign(api, mother["id"], 1, '"1"', "nutritionist")).status_code == 200
    clock.advance(timedelta(minutes=40))
    ogtt = oru(
        control_id="C2",
        mrn=mother["mrn"],
        order=order_number(visit, "ogtt"),
        filler="F-OGTT2",
        code="OGTT^75 g OGTT^L",
        obx=ogtt_obx(5.3, 8.6, 7.9),
    )
    assert await lab.hl7(ogtt) == ("AA", "C2")
    reads = await asyncio.gather(
        *(
            api.client.get(f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth(who))
            for who in ["doctor", "nutritionist"] * 4
        )
    )
    assert {r.status_code for r in reads} == {200}
    assert all(r.json()["stale"] for r in reads)
    items = (await api.client.get("/v1/worklist", headers=api.auth("doctor"))).json()["items"]
    assert len([i for i in items if i["kind"] == "health_plan.review"]) == 1, items
