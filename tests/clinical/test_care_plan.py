"""The care plan a clinician would sign, API level, both databases (issue 20 points 1-4, 8, 10).

- a red-grade late booker first seen at 34+2 → the booking panel (HIV, syphilis, HBsAg, ABO/Rh,
  blood count, liver/kidney, urine) plus the OGTT as a catch-up and the high-risk NST; no NIPT
  → CSOG 2018 first visit; CSOG/CMA 2022 (OGTT after 28 weeks)
- her HIV result from another hospital, recorded by a doctor with source and date → not ordered;
  a result from before this pregnancy → 422; a butler cannot record it → 403
- a visit at 10+0 → no NT that day; the plan carries the NT (11+0-13+6), proposes a date inside
  it, and the visit at 12+0 orders the NT and nothing of the panel again → CSOG 2018
- a visit at 14+0 → NIPT offered, not ordered; her choice without consent → 422; with consent
  (recorded by the doctor) → ordered at her next visit, serum screening not → CSOG 2018; NHFPC 2016
- at term → one obstetric scan at 37+0, then a weekly NST without the scan → CSOG 2018
- 41+0 → the doctor gets "decide admission for induction"; 42+0 → an alert to doctor and desk,
  each once → CSOG 2014 induction guideline
- a haemoglobin of 105 g/L (not 110) → ferritin at her next visit → CMA 2014
- a doctor records twins → the chorionicity scan; an Rh-negative blood group → anti-D titre
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.careplan.registry import load_guidelines
from app.careplan.service import sweep_late_pregnancies
from app.core.clock import FrozenClock
from app.visits.models import ExamOrder
from tests.helpers.api import Api
from tests.helpers.factories import BOOKING_PANEL, mother_body, record_elsewhere
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.notices import assert_desk_can_say
from tests.helpers.problems import assert_problem

TODAY = date(2026, 11, 28)  # the test clock: 10:00 in Shanghai


async def open_today(api: Api, day: date) -> None:
    response = await api.client.post(
        "/v1/clinic-sessions",
        headers=api.auth("admin"),
        json={
            "session_date": day.isoformat(),
            "starts_at": "08:00",
            "ends_at": "17:00",
            "per_hour": 8,
        },
    )
    assert response.status_code == 201, response.text


async def enrol_at(api: Api, ga_days: int, grade: str = "green", **kw: Any) -> dict[str, Any]:
    """A mother at this gestational age today, dated by LMP."""
    lmp = TODAY - timedelta(days=ga_days)
    body = mother_body(
        primary_butler_id=str(api.staff.butlers["butler1"].id),
        pregnancy={
            "lmp_date": lmp.isoformat(),
            "gravida": 1,
            "para": 0,
            "risk_grade": grade,
            "risk_reason": "booking assessment",
        },
        **kw,
    )
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert response.status_code == 201, response.text
    mother: dict[str, Any] = response.json()
    return mother


async def check_in(api: Api, mother: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
    )
    assert response.status_code == 200, response.text
    visit: dict[str, Any] = response.json()
    return visit


def ordered(visit: dict[str, Any]) -> set[str]:
    return {o["exam_code"] for o in visit["exam_orders"]}


async def care_plan(api: Api, mother: dict[str, Any], who: str = "doctor") -> dict[str, Any]:
    response = await api.client.get(f"/v1/mothers/{mother['id']}/care-plan", headers=api.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def exam_in(plan: dict[str, Any], code: str) -> dict[str, Any]:
    for exam in plan["booking_panel"] + plan["indicated"]:
        if exam["code"] == code:
            return exam
    for window in plan["windows"]:
        for exam in window["exams"]:
            if exam["code"] == code:
                return exam
    raise AssertionError(f"{code} is not in her plan")


async def finish_the_day(
    api: Api, visit: dict[str, Any], factory: async_sessionmaker[AsyncSession]
) -> None:
    """The stations did every exam (their own flow is tested in tests/queues), then she left."""
    async with factory() as session:
        await session.execute(
            update(ExamOrder)
            .where(ExamOrder.visit_id == uuid.UUID(visit["id"]))
            .values(status="done")
        )
        await session.commit()
    response = await api.client.post(
        f"/v1/visits/{visit['id']}/complete", headers=api.auth("frontdesk")
    )
    assert response.status_code == 200, response.text


async def next_day(api: Api, clock: FrozenClock, days: int) -> date:
    clock.advance(timedelta(days=days))
    day = TODAY + timedelta(days=days)
    await open_today(api, day)
    return day


async def worklist_kinds(api: Api, who: str) -> list[str]:
    response = await api.client.get("/v1/worklist", headers=api.auth(who))
    assert response.status_code == 200, response.text
    return [i["kind"] for i in response.json()["items"]]


# 1. The booking panel at her first visit, whatever the week ------------------------------


async def test_a_late_booker_at_34_weeks_gets_the_booking_panel(api: Api) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 34 * 7 + 2, grade="red")
    visit = await check_in(api, mother)
    got = ordered(visit)
    assert {"hiv", "syphilis", "hbsag", "abo_rh", "cbc", "liver_kidney", "urine"} <= got
    assert "ogtt" in got  # the catch-up; its fasting draw is her fasting glucose
    assert "fasting_glucose" not in got
    assert "nst" in got  # red grade: NST from 32-34 weeks
    assert not {"nipt", "down_screening", "nt_scan"} & got
    plan = await care_plan(api, mother)
    assert {e["code"]: e["state"] for e in plan["booking_panel"]}["hiv"] == "ordered"
    assert "catch-up" in exam_in(plan, "ogtt")["reason"]


async def test_a_result_from_elsewhere_stands_in_for_the_booking_test(api: Api) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 34 * 7 + 2)
    path = f"/v1/mothers/{mother['id']}/care-plan/outside-results"
    hiv = {
        "exam_code": "hiv",
        "result_date": "2026-05-20",
        "source": "Haidian MCH, 2026-0411",
        "summary": "non-reactive",
    }
    assert_problem(await api.client.post(path, headers=api.auth("butler1"), json=hiv), 403)
    assert_problem(await api.client.post(path, headers=api.auth("frontdesk"), json=hiv), 403)
    before = {**hiv, "result_date": "2025-12-01"}  # before this pregnancy began
    refused = await api.client.post(path, headers=api.auth("doctor"), json=before)
    assert_problem(refused, 422)
    assert "before this pregnancy" in refused.json()["detail"]
    recorded = await api.client.post(path, headers=api.auth("doctor"), json=hiv)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["recorded_by"]
    visit = await check_in(api, mother)
    assert "hiv" not in ordered(visit)
    assert "syphilis" in ordered(visit)
    plan = await care_plan(api, mother)
    state = {e["code"]: e for e in plan["booking_panel"]}["hiv"]
    assert state["state"] == "recorded_elsewhere"
    assert "Haidian MCH" in state["reason"]


# 2. "Done" means done; an exam carries over while its range is open ----------------------


async def test_a_visit_at_10_weeks_carries_the_nt_to_11_0_to_13_6(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 70)  # 10+0
    first = await check_in(api, mother)
    assert "nt_scan" not in ordered(first)
    assert set(BOOKING_PANEL) - {"fasting_glucose"} <= ordered(first)
    await finish_the_day(api, first, session_factory)
    plan = await care_plan(api, mother)
    w06 = next(w for w in plan["windows"] if w["code"] == "w06")
    assert w06["status"] != "done"  # the visit completed, the NT is still to do
    nt = exam_in(plan, "nt_scan")
    assert nt["state"] == "upcoming"
    lmp = TODAY - timedelta(days=70)
    assert (nt["due_from"], nt["due_to"]) == (
        (lmp + timedelta(days=77)).isoformat(),
        (lmp + timedelta(days=97)).isoformat(),
    )
    proposal = plan["next_visit"]
    assert "nt_scan" in proposal["exams"]
    assert nt["due_from"] <= proposal["from_date"] <= proposal["to_date"] <= nt["due_to"]

    await next_day(api, clock, 14)  # 12+0
    second = await check_in(api, mother)
    assert "nt_scan" in ordered(second)
    assert not set(BOOKING_PANEL) & ordered(second)  # done at her first visit
    assert "us_early" not in ordered(second)


# 3. Offered, not ordered -----------------------------------------------------------------


async def test_a_14_week_visit_offers_nipt_and_orders_it_only_by_her_choice(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 98)  # 14+0
    await record_elsewhere(
        api.client, api.auth("doctor"), mother["id"], [*BOOKING_PANEL, "us_early"], on="2026-11-20"
    )
    first = await check_in(api, mother)
    assert not {"nipt", "down_screening", "prenatal_diagnosis"} & ordered(first)
    plan = await care_plan(api, mother)
    assert exam_in(plan, "nipt")["state"] == "offered"
    (screening,) = plan["choices"]
    assert screening["code"] == "prenatal_screening"
    assert screening["chosen"] is None
    assert {o["code"]: o["consent_required"] for o in screening["options"]}["nipt"] is True

    path = f"/v1/mothers/{mother['id']}/care-plan/choices"
    choice = {"choice": "prenatal_screening", "option": "nipt", "note": "after counselling"}
    assert_problem(await api.client.post(path, headers=api.auth("butler1"), json=choice), 403)
    no_consent = await api.client.post(path, headers=api.auth("doctor"), json=choice)
    assert_problem(no_consent, 422)
    assert "consent" in no_consent.json()["detail"]
    chosen = await api.client.post(
        path, headers=api.auth("doctor"), json={**choice, "consent": True}
    )
    assert chosen.status_code == 201, chosen.text
    plan = await care_plan(api, mother)
    assert plan["choices"][0]["chosen"] == "nipt"
    assert plan["choices"][0]["decided_by"]
    assert exam_in(plan, "down_screening")["state"] == "not_chosen"

    await finish_the_day(api, first, session_factory)
    await next_day(api, clock, 7)  # 15+0: serum screening's range is open, but not chosen
    second = await check_in(api, mother)
    assert "nipt" in ordered(second)
    assert "down_screening" not in ordered(second)


# 4. No duplicates ------------------------------------------------------------------------


async def test_one_scan_at_37_weeks_then_a_weekly_nst(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 37 * 7)
    await record_elsewhere(api.client, api.auth("doctor"), mother["id"])
    await record_elsewhere(
        api.client, api.auth("doctor"), mother["id"], ["us_anatomy", "ogtt", "gbs"], on="2026-11-01"
    )
    first = await check_in(api, mother)
    assert {"us_obstetric", "nst"} <= ordered(first)
    await finish_the_day(api, first, session_factory)
    await next_day(api, clock, 7)  # 38+0
    second = await check_in(api, mother)
    assert "nst" in ordered(second)
    assert "us_obstetric" not in ordered(second)


# 8. Late pregnancy -----------------------------------------------------------------------


async def test_41_weeks_asks_the_doctor_to_decide_induction_and_42_alerts(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 41 * 7)
    await record_elsewhere(api.client, api.auth("doctor"), mother["id"])
    await check_in(api, mother)
    assert "careplan.induction_decision" in await worklist_kinds(api, "doctor")
    assert "careplan.induction_decision" not in await worklist_kinds(api, "frontdesk")
    guidelines = load_guidelines()
    async with session_factory() as session:  # the dispatcher's daily rule, a week later
        clock.advance(timedelta(days=7))
        day = TODAY + timedelta(days=7)
        raised = await sweep_late_pregnancies(
            session, guidelines=guidelines, today=day, now=clock.now()
        )
        await session.commit()
    assert raised == 1  # the post-term alert; the induction decision is not raised twice
    assert (await worklist_kinds(api, "doctor")).count("careplan.induction_decision") == 1
    assert "careplan.post_term" in await worklist_kinds(api, "doctor")
    assert "careplan.post_term" in await worklist_kinds(api, "frontdesk")
    async with session_factory() as session:
        again = await sweep_late_pregnancies(
            session, guidelines=guidelines, today=day, now=clock.now()
        )
    assert again == 0


# 10. Results and indications that bring exams in -----------------------------------------


@pytest.mark.parametrize(("hb", "ferritin"), [("105", True), ("110", False)])
async def test_a_low_haemoglobin_brings_ferritin(
    api: Api,
    lab: Lab,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    hb: str,
    ferritin: bool,
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 20 * 7)
    first = await check_in(api, mother)
    cbc = next(o["order_number"] for o in first["exam_orders"] if o["exam_code"] == "cbc")
    body = oru(
        control_id="CTL-HB",
        mrn=mother["mrn"],
        order=cbc,
        obx=[f"OBX|1|NM|718-7^Hemoglobin^LN||{hb}|g/L|110-150|{'L' if int(hb) < 110 else 'N'}|||F"],
    )
    assert await lab.hl7(body) == ("AA", "CTL-HB")
    plan = await care_plan(api, mother)
    assert ("anaemia" in {i["code"] for i in plan["indications"]}) is ferritin
    await finish_the_day(api, first, session_factory)
    await next_day(api, clock, 7)
    second = await check_in(api, mother)
    assert ("ferritin" in ordered(second)) is ferritin


async def test_a_doctor_recorded_twin_pregnancy_brings_the_chorionicity_scan(api: Api) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 12 * 7)
    path = f"/v1/mothers/{mother['id']}/care-plan/indications"
    twins = {"code": "multiple_pregnancy", "reason": "two gestational sacs on the early scan"}
    assert_problem(await api.client.post(path, headers=api.auth("frontdesk"), json=twins), 403)
    unknown = await api.client.post(
        path, headers=api.auth("doctor"), json={**twins, "code": "full_moon"}
    )
    assert_problem(unknown, 422)
    assert (await api.client.post(path, headers=api.auth("doctor"), json=twins)).status_code == 201
    visit = await check_in(api, mother)
    assert "chorionicity" in ordered(visit)
    plan = await care_plan(api, mother)
    assert any(i["code"] == "multiple_pregnancy" for i in plan["indications"])


async def test_an_rh_negative_blood_group_adds_the_anti_d_titre(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 24 * 7)
    first = await check_in(api, mother)
    assert "rh_antibody" not in ordered(first)
    group = next(o["order_number"] for o in first["exam_orders"] if o["exam_code"] == "abo_rh")
    body = oru(
        control_id="CTL-RH",
        mrn=mother["mrn"],
        order=group,
        code="882-1^ABO+Rh^LN",
        obx=["OBX|1|ST|882-1^ABO and Rh group^LN||O Rh(D) negative||||||F"],
    )
    assert await lab.hl7(body) == ("AA", "CTL-RH")
    await finish_the_day(api, first, session_factory)
    await next_day(api, clock, 7)  # 25+0: the 24-28 week titre
    second = await check_in(api, mother)
    assert "rh_antibody" in ordered(second)


async def test_a_declined_exam_is_recorded_by_a_doctor_and_not_ordered(api: Api) -> None:
    await open_today(api, TODAY)
    mother = await enrol_at(api, 10 * 7)
    path = f"/v1/mothers/{mother['id']}/care-plan/declines"
    decline = {"exam_code": "hiv", "reason": "declined after counselling; will test elsewhere"}
    assert_problem(await api.client.post(path, headers=api.auth("butler1"), json=decline), 403)
    recorded = await api.client.post(path, headers=api.auth("doctor"), json=decline)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["item_key"] == "booking:hiv"
    twice = await api.client.post(path, headers=api.auth("doctor"), json=decline)
    assert_problem(twice, 409)
    visit = await check_in(api, mother)
    assert "hiv" not in ordered(visit)
    assert "syphilis" in ordered(visit)


async def test_booking_after_the_nt_closes_is_warned_with_the_plans_proposal(
    api: Api, clock: FrozenClock
) -> None:
    mother = await enrol_at(api, 70)  # 10+0
    await record_elsewhere(
        api.client, api.auth("doctor"), mother["id"], [*BOOKING_PANEL, "us_early"], on="2026-11-20"
    )
    late_day = TODAY + timedelta(days=29)  # 14+1: the NT closed at 13+6
    created = await api.client.post(
        "/v1/clinic-sessions",
        headers=api.auth("admin"),
        json={
            "session_date": late_day.isoformat(),
            "starts_at": "08:00",
            "ends_at": "12:00",
            "per_hour": 8,
        },
    )
    session_id = created.json()["items"][0]["id"]
    booked = await api.client.post(
        "/v1/visits",
        headers=api.auth("frontdesk"),
        json={"mother_id": mother["id"], "session_id": session_id},
    )
    assert booked.status_code == 201, booked.text
    (warning,) = [w for w in booked.json()["warnings"] if "proposes" in w]
    assert "Nuchal translucency scan closes at 13+6" in warning
    # The same with its code and values, which the desk says in Chinese.
    (notice,) = [n for n in booked.json()["notices"] if n["code"] == "after-proposal"]
    assert notice["text"] == warning
    assert notice["params"]["day"] == late_day.isoformat()
    assert "nt_scan" in notice["params"]["exams"].split(", ")
    assert_desk_can_say(notice)
