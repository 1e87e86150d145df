"""Invariants under real concurrency, held by the database (run on PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.mothers.domain import DatingMethod, RiskGrade
from app.mothers.models import Mother, Pregnancy, PregnancyStatus
from app.notifications.models import OutboxMessage
from app.visits.models import ExamOrder, Visit
from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.mothers import enrol
from tests.helpers.visits import open_session


@pytest.mark.postgres_only
async def test_concurrent_enrolments_of_one_mrn_create_one_mother(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    bodies = [mother_body(mrn="MRN-RACE", serial=f"{700 + i}") for i in range(12)]
    responses = await asyncio.gather(
        *(api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=b) for b in bodies)
    )
    assert Counter(r.status_code for r in responses) == Counter({201: 1, 409: 11})
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(Mother).where(Mother.mrn == "MRN-RACE")
        )
    assert count == 1


@pytest.mark.postgres_only
async def test_concurrent_writes_with_one_etag_let_exactly_one_win(api: Api) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}"
    headers = {**api.auth("frontdesk"), "If-Match": '"1"'}
    responses = await asyncio.gather(
        *(api.client.patch(path, headers=headers, json={"name": f"名字{i}"}) for i in range(10))
    )
    assert Counter(r.status_code for r in responses) == Counter({200: 1, 412: 9})
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (await api.client.get(path, headers=api.auth("frontdesk"))).json()
    assert current["version"] == 2
    assert current["name"] == winner["name"]


async def test_the_database_allows_one_active_pregnancy_per_mother(
    api: Api, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    mother_id = uuid.UUID((await enrol(api))["id"])

    def episode(status: PregnancyStatus, edd: date) -> Pregnancy:
        return Pregnancy(
            mother_id=mother_id,
            status=status,
            lmp_date=None,
            edd_date=edd,
            dating_method=DatingMethod.REPORTED,
            gravida=2,
            para=0,
            risk_grade=RiskGrade.GREEN,
            care_plan_code="cn-2018",
            created_at=clock.now(),
        )

    async with session_factory() as session:
        session.add(episode(PregnancyStatus.ACTIVE, date(2027, 3, 1)))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with session_factory() as session:  # a closed episode beside the active one is fine
        session.add(episode(PregnancyStatus.CLOSED, date(2025, 3, 1)))
        await session.commit()


@pytest.mark.postgres_only
async def test_concurrent_check_ins_make_one_visit_and_one_set_of_orders(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day="2026-11-28")
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    # No booking: every scan races to create the walk-in visit.
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
            )
            for _ in range(6)
        )
    )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(not r.json()["already_checked_in"] for r in responses) == 1
    async with session_factory() as db:
        visits = await db.scalar(select(func.count()).select_from(Visit))
        orders = list(await db.scalars(select(ExamOrder.exam_code)))
        messages = await db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == "visit.checked_in")
        )
    assert visits == 1
    assert sorted(orders) == sorted(set(orders))
    # One set: her first visit's orders once (every-visit exams, the booking panel, the
    # window's), however many desks scanned at once.
    assert {"vitals", "consultation", "hiv", "syphilis", "ogtt"} <= set(orders)
    assert messages == 1


@pytest.mark.postgres_only
async def test_concurrent_bookings_never_overfill_an_hour(api: Api) -> None:
    session = await open_session(api, starts="08:00", ends="09:00", per_hour=3)
    mothers = [await enrol(api, serial=f"{800 + i}", phone=f"138000008{i:02d}") for i in range(8)]
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/v1/visits",
                headers=api.auth("frontdesk"),
                json={"mother_id": m["id"], "session_id": session["id"]},
            )
            for m in mothers
        )
    )
    assert Counter(r.status_code for r in responses) == Counter({201: 3, 409: 5})
    listed = await api.client.get(
        "/v1/clinic-sessions",
        headers=api.auth("frontdesk"),
        params={"from": "2026-12-01", "to": "2026-12-01"},
    )
    assert listed.json()["items"][0]["booked"] == 3
