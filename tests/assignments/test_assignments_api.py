"""Primary butlers, reassignment, release, cover for visit days, and access that follows them."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assignments.models import AssignmentRole, CareAssignment
from app.butlers.models import Butler
from app.core.clock import FrozenClock
from app.notifications.models import OutboxMessage
from tests.helpers.api import Api
from tests.helpers.butlers import new_butler
from tests.helpers.factories import mother_body
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.visits import book, open_session


async def set_capacity(factory: async_sessionmaker[AsyncSession], capacity: int) -> None:
    async with factory() as session:
        await session.execute(update(Butler).values(max_caseload=capacity))
        await session.commit()


async def test_enrolment_chooses_and_explains(api: Api) -> None:
    mother = await enrol(api)
    decision = mother["assignment"]
    butler1 = str(api.staff.butlers["butler1"].id)
    assert decision["butler_id"] == butler1  # both empty: the tie goes to the smaller id
    assert (decision["load_before"], decision["load_after"], decision["capacity"]) == (0, 1, 10)
    assert decision["reasons"][-1].startswith("lowest relative caseload among 2 eligible")
    second = await enrol(api, serial="003", phone="13900139000")
    assert second["assignment"]["butler_id"] == str(api.staff.butlers["butler2"].id)


async def test_skills_decide_and_no_fit_is_a_409_naming_the_rules(api: Api) -> None:
    body = mother_body()
    body["pregnancy"]["risk_grade"] = "purple"  # nobody has infection_control
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    problem = assert_problem(response, 409)
    assert problem["type"] == "/problems/no-butler-available"
    assert {e["rule"] for e in problem["exclusions"]} == {"missing_skill"}  # type: ignore[union-attr]
    listed = await api.client.get("/v1/mothers", headers=api.auth("frontdesk"))
    assert listed.json()["items"] == []  # nothing half-written
    specialist = await new_butler(api, "butler.ic", skills=["infection_control"])
    created = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert created.json()["assignment"]["butler_id"] == specialist


async def test_the_front_desks_choice_is_checked(api: Api) -> None:
    plain = await new_butler(api, "butler.plain", skills=[])
    body = mother_body(primary_butler_id=plain)
    body["pregnancy"]["risk_grade"] = "red"
    problem = assert_problem(
        await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body), 409
    )
    assert problem["type"] == "/problems/butler-does-not-fit"
    body["pregnancy"]["risk_grade"] = "green"
    ok = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert ok.json()["assignment"]["butler_id"] == plain
    assert "chosen by the front desk" in ok.json()["assignment"]["reasons"][0]


async def test_reassignment_keeps_history_and_moves_access(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    path = f"/v1/mothers/{mother['id']}"
    changed = await api.client.post(
        f"{path}/primary-butler",
        headers=api.auth("frontdesk"),
        json={"butler_id": str(api.staff.butlers["butler2"].id), "reason": "she asked to change"},
    )
    assert changed.status_code == 200, changed.text
    history = changed.json()["care_team"]["history"]
    assert [(h["butler_id"], h["ends_at"] is None) for h in history] == [
        (str(api.staff.butlers["butler1"].id), False),
        (str(api.staff.butlers["butler2"].id), True),
    ]
    assert history[0]["ended_reason"] == "she asked to change"
    assert_problem(await api.client.get(path, headers=api.auth("butler1")), 404)  # former primary
    assert (await api.client.get(path, headers=api.auth("butler2"))).status_code == 200
    record = (await api.client.get(path, headers=api.auth("frontdesk"))).json()
    assert record["primary_butler_id"] == str(api.staff.butlers["butler2"].id)
    assert record["version"] == 2
    again = await api.client.post(
        f"{path}/primary-butler",
        headers=api.auth("frontdesk"),
        json={"butler_id": str(api.staff.butlers["butler2"].id), "reason": "again"},
    )
    assert_problem(again, 409)


async def test_release_dry_run_changes_nothing_then_moves_only_her_mothers(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    b1, b2 = (str(api.staff.butlers[n].id) for n in ("butler1", "butler2"))
    hers = [
        await enrol(api, primary_butler_id=b1, serial=f"1{i:02d}", phone=f"1380000010{i}")
        for i in range(3)
    ]
    other = await enrol(api, primary_butler_id=b2, serial="199", phone="13800000199")
    third = await new_butler(api, "butler.three", skills=["high_risk"])

    plan = await api.client.post(
        f"/v1/butlers/{b1}/release",
        headers=api.auth("frontdesk"),
        json={"reason": "maternity leave", "dry_run": True},
    )
    assert plan.status_code == 200, plan.text
    assert (plan.json()["moved"], plan.json()["stuck"]) == (3, 0)
    async with session_factory() as session:
        still = await session.scalar(
            select(func.count())
            .select_from(CareAssignment)
            .where(CareAssignment.butler_id == uuid.UUID(b1), CareAssignment.ends_at.is_(None))
        )
    assert still == 3  # the dry run changed nothing

    done = await api.client.post(
        f"/v1/butlers/{b1}/release",
        headers=api.auth("frontdesk"),
        json={"reason": "maternity leave"},
    )
    targets = Counter(m["to"]["butler_id"] for m in done.json()["moves"])
    assert sum(targets.values()) == 3
    assert set(targets) <= {b2, third}
    assert b1 not in targets
    for m in hers:
        record = (
            await api.client.get(f"/v1/mothers/{m['id']}", headers=api.auth("frontdesk"))
        ).json()
        assert record["primary_butler_id"] != b1
    untouched = await api.client.get(
        f"/v1/mothers/{other['id']}/care-team", headers=api.auth("frontdesk")
    )
    assert len(untouched.json()["history"]) == 1  # the other butler's mother did not move


async def test_a_risk_change_that_breaks_the_skill_rule_flags_her(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={"risk_grade": "purple", "risk_reason": "syphilis positive"},
    )
    flagged = (
        await api.client.get("/v1/assignments/flagged", headers=api.auth("frontdesk"))
    ).json()
    (item,) = flagged["items"]
    assert item["mother_id"] == mother["id"]
    assert "infection_control" in item["flagged_reason"]
    mine = (await api.client.get("/v1/me/mothers", headers=api.auth("butler1"))).json()
    assert mine["items"][0]["flagged_reason"] == item["flagged_reason"]


async def test_a_cover_accompanies_when_the_primary_is_on_leave(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    b1, b2 = (str(api.staff.butlers[n].id) for n in ("butler1", "butler2"))
    mother = await enrol(api, primary_butler_id=b1)
    leave = await api.client.post(
        f"/v1/butlers/{b1}/leaves",
        headers=api.auth("admin"),
        json={"starts_on": "2026-12-01", "ends_on": "2026-12-03", "reason": "training"},
    )
    assert leave.status_code == 201, leave.text
    session = await open_session(api)  # Tuesday 2026-12-01
    visit = (await book(api, mother["id"], session["id"])).json()
    assert visit["accompanying_butler_id"] == b2
    async with session_factory() as db:
        topics = {
            (m.topic, str(m.butler_id))
            for m in await db.scalars(
                select(OutboxMessage).where(OutboxMessage.topic.like("assignment.cover%"))
            )
        }
    assert topics == {("assignment.cover", b2), ("assignment.cover_for_your_mother", b1)}

    path = f"/v1/mothers/{mother['id']}"
    assert_problem(await api.client.get(path, headers=api.auth("butler2")), 404)  # not yet
    clock.advance(timedelta(days=3))  # Tuesday 10:00 in Shanghai
    record = await api.client.get(path, headers=api.auth("butler2"))
    assert record.status_code == 200
    assert record.json()["accompanying_today"] == {
        "visit_id": visit["id"],
        "butler_id": b2,
        "is_cover": True,
    }
    mine = (await api.client.get("/v1/me/mothers", headers=api.auth("butler2"))).json()
    assert [(m["mother_id"], m["role"]) for m in mine["items"]] == [(mother["id"], "cover")]
    clock.advance(timedelta(days=1))  # the day after the visit
    assert_problem(await api.client.get(path, headers=api.auth("butler2")), 404)
    assert (await api.client.get(path, headers=api.auth("butler1"))).status_code == 200


async def test_a_busy_primary_gets_a_cover_for_the_overlapping_visit(api: Api) -> None:
    b1, b2 = (str(api.staff.butlers[n].id) for n in ("butler1", "butler2"))
    first = await enrol(api, primary_butler_id=b1, serial="301", phone="13800000301")
    second = await enrol(api, primary_butler_id=b1, serial="302", phone="13800000302")
    session = await open_session(api)
    v1 = (await book(api, first["id"], session["id"], preferred_time="08:00")).json()
    v2 = (await book(api, second["id"], session["id"], preferred_time="09:00")).json()
    assert v1["accompanying_butler_id"] == b1
    assert v2["accompanying_butler_id"] == b2  # b1 is walking the first mother then
    await api.client.post(
        f"/v1/visits/{v1['id']}/cancel", headers=api.auth("frontdesk"), json={"reason": "ill"}
    )
    moved = await api.client.post(
        f"/v1/visits/{v2['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": session["id"], "preferred_time": "10:00", "reason": "later"},
    )
    assert moved.json()["accompanying_butler_id"] == b1  # free again: back to her own butler
    team = (
        await api.client.get(f"/v1/mothers/{second['id']}/care-team", headers=api.auth("frontdesk"))
    ).json()
    covers = [h for h in team["history"] if h["role"] == "cover"]
    assert [(c["butler_id"], c["ends_at"] is not None) for c in covers] == [(b2, True)]


async def test_caseload_view(api: Api) -> None:
    b1 = str(api.staff.butlers["butler1"].id)
    await enrol(api, primary_butler_id=b1)
    body = mother_body(serial="402", phone="13800000402", primary_butler_id=b1)
    body["pregnancy"]["risk_grade"] = "red"
    await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    rows = (await api.client.get("/v1/caseloads", headers=api.auth("frontdesk"))).json()["items"]
    mine = next(r for r in rows if r["butler_id"] == b1)
    assert (mine["load"], mine["capacity"], mine["mothers_by_grade"]) == (
        4,
        10,
        {"green": 1, "red": 1},
    )


@pytest.mark.postgres_only
async def test_fifty_concurrent_enrolments_fill_forty_units_exactly(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await set_capacity(session_factory, 20)  # two butlers: 40 weighted units
    bodies = [mother_body(serial=f"{i:03d}", phone=f"1380000{i:04d}") for i in range(50)]
    responses = await asyncio.gather(
        *(api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=b) for b in bodies)
    )
    assert Counter(r.status_code for r in responses) == Counter({201: 40, 409: 10})
    for r in responses:
        if r.status_code == 409:
            assert r.json()["type"] == "/problems/no-butler-available"
    async with session_factory() as session:
        loads = dict(
            (
                await session.execute(
                    select(CareAssignment.butler_id, func.count())
                    .where(
                        CareAssignment.role == AssignmentRole.PRIMARY,
                        CareAssignment.ends_at.is_(None),
                    )
                    .group_by(CareAssignment.butler_id)
                )
            ).all()
        )
        doubled = await session.scalar(
            select(func.count()).select_from(
                select(CareAssignment.mother_id)
                .where(
                    CareAssignment.role == AssignmentRole.PRIMARY, CareAssignment.ends_at.is_(None)
                )
                .group_by(CareAssignment.mother_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert sorted(loads.values()) == [20, 20]
    assert doubled == 0
