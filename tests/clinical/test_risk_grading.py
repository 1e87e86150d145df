"""Risk grading by 《孕产妇妊娠风险评估与管理工作规范》 (NHFPC 2017), API level, both databases.

- purple beside orange → both visible (colour orange, purple true, both labels), infection control
  on every station's queue, the orange and purple tasks on the doctor's list → 附件2; 妊娠风险管理
- red → referral to the designated centre and the district report, acknowledged with who and a
  note → 妊娠风险管理 (红色: 转诊; 橙色/红色: 报送辖区妇幼保健机构)
- age 34 (35 tomorrow) → the grade as given; 35 today → at least yellow, raised by the system
  → 附件2 黄色 基本情况 年龄≥35岁
- age 39 (40 tomorrow) → yellow; 40 today → at least orange, with the district report
  → 附件2 橙色 基本情况 年龄≥40岁
- a managed case (orange) misses her visit → a trace item (追踪); a green one → none → 专案管理
- every visit prompts a doctor to re-assess; the doctor's assessment closes it and records who
  decided; a front desk cannot assess → 妊娠风险动态评估
- labels as the rules word them: 橙色 较高风险 (orange, higher risk) → 工作规范 五色分级
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.mothers.repository import MotherRepository
from app.mothers.risk import prompt_reassessment
from app.visits.models import Visit
from tests.helpers.api import Api
from tests.helpers.butlers import new_butler
from tests.helpers.factories import mother_body, national_id
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.visits import book, check_in, open_session

TODAY = date(2026, 11, 28)


async def worklist(api: Api, who: str = "doctor") -> list[dict[str, Any]]:
    response = await api.client.get("/v1/worklist", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def kinds_of(items: list[dict[str, Any]], mother: dict[str, Any]) -> set[str]:
    return {i["kind"] for i in items if i["mother_id"] == mother["id"]}


async def assess(api: Api, mother: dict[str, Any], who: str = "doctor", **body: Any) -> Any:
    current = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("doctor"))
    return await api.client.post(
        f"/v1/mothers/{mother['id']}/risk-assessments",
        headers={**api.auth(who), "If-Match": current.headers["etag"]},
        json=body,
    )


async def test_purple_stands_beside_orange(api: Api) -> None:
    await new_butler(api, "butler.ic", skills=["high_risk", "infection_control"])
    mother = await enrol(api)
    response = await assess(
        api,
        mother,
        grade="orange",
        purple=True,
        factors=["placenta praevia", "HBsAg positive"],
        reason="booking assessment",
    )
    assert response.status_code == 201, response.text
    result = response.json()
    pregnancy = result["pregnancy"]
    assert (pregnancy["risk_grade"], pregnancy["purple"]) == ("orange", True)
    assert pregnancy["infection_control"] is True
    assert pregnancy["managed_case"] is True
    assert pregnancy["risk_label"] == (
        "橙色 较高风险 (orange, higher risk) + 紫色 传染性疾病 (purple, infectious disease)"
    )
    assert result["tasks"] == ["risk.district_report", "risk.pmtct"]
    (decision,) = result["decisions"]
    assert decision["factors"] == ["placenta praevia", "HBsAg positive"]
    assert (decision["changed_by_name"], decision["changed_by_role"]) == ("doctor", "doctor")
    assert kinds_of(await worklist(api), mother) >= {"risk.district_report", "risk.pmtct"}
    # Every station sees the infection-control flag.
    session = await open_session(api, day=TODAY.isoformat())
    await book(api, mother["id"], session["id"])
    checked_in = await check_in(api, mrn=mother["mrn"])
    assert checked_in.status_code == 200, checked_in.text
    queue = await api.client.get("/v1/stations/VIT/queue", headers=api.auth("station"))
    (entry,) = [e for e in queue.json()["waiting"] if e["mother_id"] == mother["id"]]
    assert entry["infection_control"] is True
    # Lists filter the old way: 'purple' finds her, and so does her colour.
    for grade in ("purple", "orange"):
        listed = await api.client.get(
            "/v1/mothers", headers=api.auth("frontdesk"), params={"risk_grade": grade}
        )
        assert [m["id"] for m in listed.json()["items"]] == [mother["id"]]


async def test_red_brings_the_referral_and_the_district_report(api: Api) -> None:
    mother = await enrol(api)
    green = await worklist(api)
    assert kinds_of(green, mother) == set()
    current = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("doctor"))
    raised = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("doctor"), "If-Match": current.headers["etag"]},
        json={"risk_grade": "red", "risk_reason": "severe pre-eclampsia"},
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["pregnancy"]["risk_label"] == "红色 高风险 (red, high risk)"
    items = [i for i in await worklist(api) if i["mother_id"] == mother["id"]]
    assert {i["kind"] for i in items} == {"risk.referral", "risk.district_report"}
    referral = next(i for i in items if i["kind"] == "risk.referral")
    assert "转诊" in referral["title"]
    done = await api.client.post(
        f"/v1/worklist/{referral['id']}/acknowledge",
        headers=api.auth("doctor"),
        json={"note": "referred to the municipal critical maternal care centre"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "doctor:doctor"
    assert done.json()["acknowledged_note"].startswith("referred to")
    assert kinds_of(await worklist(api), mother) == {"risk.district_report"}


def born_years_ago(years: int, *, days_later: int = 0) -> date:
    return TODAY.replace(year=TODAY.year - years) + timedelta(days=days_later)


async def enrol_aged(api: Api, born: date, serial: str, grade: str = "green") -> dict[str, Any]:
    body = mother_body(national_id=national_id(born=born, serial=serial), phone=f"13800000{serial}")
    body["pregnancy"]["risk_grade"] = grade
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert response.status_code == 201, response.text
    mother: dict[str, Any] = response.json()
    return mother


async def test_age_35_is_at_least_yellow(api: Api) -> None:
    almost = await enrol_aged(api, born_years_ago(35, days_later=1), "501")
    assert (almost["age"], almost["pregnancy"]["risk_grade"]) == (34, "green")
    today = await enrol_aged(api, born_years_ago(35), "502")
    assert (today["age"], today["pregnancy"]["risk_grade"]) == (35, "yellow")
    assert any("age≥35" in note for note in today["risk_notes"])
    history = await api.client.get(
        f"/v1/mothers/{today['id']}/risk-history", headers=api.auth("doctor")
    )
    changes = history.json()["changes"]
    assert [(c["to_grade"], c["decision"], c["changed_by_name"]) for c in changes] == [
        ("green", "initial", "frontdesk"),
        ("yellow", "rule", "system"),
    ]
    assert "NHFPC 2017" in changes[1]["reason"]


async def test_age_40_is_at_least_orange(api: Api) -> None:
    almost = await enrol_aged(api, born_years_ago(40, days_later=1), "601")
    assert (almost["age"], almost["pregnancy"]["risk_grade"]) == (39, "yellow")
    today = await enrol_aged(api, born_years_ago(40), "602")
    assert (today["age"], today["pregnancy"]["risk_grade"]) == (40, "orange")
    assert kinds_of(await worklist(api), today) == {"risk.district_report"}
    assert kinds_of(await worklist(api), almost) == set()
    # A doctor's lower grade is recorded as decided, and the floor raises it again.
    lowered = await assess(api, today, grade="green", purple=False, reason="no other factor")
    assert lowered.status_code == 201, lowered.text
    assert lowered.json()["pregnancy"]["risk_grade"] == "orange"
    assert [(d["to_grade"], d["decision"]) for d in lowered.json()["decisions"]] == [
        ("green", "changed"),
        ("orange", "rule"),
    ]


async def test_a_managed_case_who_misses_her_visit_is_traced(api: Api, clock: FrozenClock) -> None:
    session = await open_session(api)  # Tuesday 08:00-12:00
    orange = await enrol(api, serial="701", phone="13800000701")
    green = await enrol(api, serial="702", phone="13800000702")
    current = await api.client.get(f"/v1/mothers/{orange['id']}", headers=api.auth("doctor"))
    await api.client.patch(
        f"/v1/mothers/{orange['id']}",
        headers={**api.auth("doctor"), "If-Match": current.headers["etag"]},
        json={"risk_grade": "orange", "risk_reason": "placenta praevia"},
    )
    missed = (await book(api, orange["id"], session["id"])).json()
    await book(api, green["id"], session["id"])
    clock.advance(timedelta(days=3, hours=3))  # Tuesday 13:00
    swept = await api.client.post(
        "/v1/visits/no-show-sweep", headers=api.auth("frontdesk"), json={}
    )
    assert len(swept.json()["marked_no_show"]) == 2
    for who in ("frontdesk", "doctor"):
        items = await worklist(api, who)
        traces = [i for i in items if i["kind"] == "risk.trace"]
        assert [(i["mother_id"], i["visit_id"]) for i in traces] == [(orange["id"], missed["id"])]
        assert "追踪" in traces[0]["title"]


async def test_every_visit_prompts_a_reassessment_that_a_doctors_decision_closes(
    api: Api, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    mother = await enrol(api)
    session = await open_session(api, day=TODAY.isoformat())
    visit = (await book(api, mother["id"], session["id"])).json()
    async with session_factory() as db:
        pregnancy = await MotherRepository(db).active_pregnancy(uuid.UUID(mother["id"]))
        row = await db.get(Visit, uuid.UUID(visit["id"]))
        assert pregnancy is not None
        assert row is not None
        await prompt_reassessment(db, pregnancy=pregnancy, visit=row, now=clock.now())
        await db.commit()
    (prompt,) = [i for i in await worklist(api) if i["kind"] == "risk.reassess"]
    assert (prompt["mother_id"], prompt["visit_id"]) == (mother["id"], visit["id"])
    assert_problem(
        await assess(
            api, mother, who="frontdesk", grade="green", purple=False, reason="looks fine"
        ),
        403,
    )
    confirmed = await assess(api, mother, grade="green", purple=False, reason="no risk factor")
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["prompts_closed"] == 1
    assert confirmed.json()["decisions"][0]["decision"] == "confirmed"
    closed = [
        i
        for i in (
            await api.client.get("/v1/worklist", headers=api.auth("doctor"), params={"open": False})
        ).json()["items"]
        if i["id"] == prompt["id"]
    ]
    assert closed[0]["acknowledged_by"] == "doctor:doctor"
    assert "confirmed 绿色 低风险" in closed[0]["acknowledged_note"]
    assert [i for i in await worklist(api) if i["kind"] == "risk.reassess"] == []
