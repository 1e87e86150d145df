"""Stations calling at the same moment, on PostgreSQL: nobody twice, nothing twice, nobody left."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.principal import Principal, PrincipalKind
from app.queues.catalogue import load_catalogue
from app.queues.models import EntryState, ExamStep, QueueEntry, Station
from app.queues.policy import Ctx, QueuePolicy
from app.queues.routing import route
from app.visits.models import ExamOrder
from sim.population import checked_in_visit, clinic_session
from tests.helpers.api import Api
from tests.helpers.queues import op, seen, station_auth

CLINIC_TZ = ZoneInfo("Asia/Shanghai")
MOTHERS = 60
# No timed exam (OGTT) and nothing after a meal (NST): every exam can be done at once, so the
# only thing that holds a mother back is being busy at another station.
SHORT_VISIT = ["vitals", "cbc", "urine", "us_obstetric"]
FULL_VISIT = [*SHORT_VISIT, "consultation"]  # the doctor last, once the rest is done
# One caller per room: every room of every station these exams need (8 in all).
ROOMS = [
    ("VIT", 1),
    ("LAB", 1),
    ("LAB", 2),
    ("URI", 1),
    ("US", 1),
    ("US", 2),
    ("DOC", 1),
    ("DOC", 2),
]
# Every call-next counts, served or not; far more than the ~300 services plus idle polling
# need, so hitting it means someone was left waiting for good.
MAX_CALLS = 6000


def exams_of(i: int) -> list[str]:
    return SHORT_VISIT if i % 3 == 0 else FULL_VISIT


async def populate(session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock) -> int:
    """60 mothers checked in this morning and routed into their queues; returns the orders."""
    now = clock.now()
    actor = Principal(kind=PrincipalKind.USER, id=uuid.uuid4(), name="test", role="admin")
    ctx = Ctx(now=now, tz=CLINIC_TZ, actor=actor, policy=QueuePolicy())
    async with session_factory() as session:
        stations = {s.code: s.servers for s in (await session.scalars(select(Station))).all()}
        for code, room in ROOMS:
            assert room <= stations[code]
        assert len(set(ROOMS)) == 8
        catalogue = await load_catalogue(session)
        clinic = await clinic_session(
            session,
            ctx.today,
            opens=(now - timedelta(hours=2)).astimezone(CLINIC_TZ).time(),
            closes=(now + timedelta(hours=6)).astimezone(CLINIC_TZ).time(),
            now=now,
        )
        for i in range(MOTHERS):
            visit = await checked_in_visit(
                session,
                number=i + 1,
                clinic=clinic,
                exams=exams_of(i),
                catalogue=catalogue,
                gestational_week=28,
                scheduled_at=now - timedelta(minutes=90) + timedelta(minutes=i),
                arrived_at=now - timedelta(minutes=MOTHERS - i),
                walk_in=False,
            )
            await route(session, visit, ctx)
        await session.commit()
    return sum(len(exams_of(i)) for i in range(MOTHERS))


async def live_entries(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.state.in_(EntryState.LIVE))
        )
    return int(count or 0)


@pytest.mark.postgres_only
async def test_stations_calling_in_parallel_serve_everyone_once_and_one_place_at_a_time(
    api: Api, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    orders = await populate(session_factory, clock)
    assert orders >= 200
    assert await live_entries(session_factory) > 0

    # Mothers between a call and the finish being sent, by the room that holds them. The
    # clock is frozen, so called_at/finished_at are all equal and cannot show an overlap:
    # this map, checked on every call, is what proves she is never at two stations at once.
    held: dict[str, tuple[str, int]] = {}
    served: list[tuple[str, str, int]] = []  # (entry id, station, room)
    calls = 0

    async def station(code: str, room: int) -> None:
        nonlocal calls
        while True:
            calls += 1
            if calls > MAX_CALLS:
                pytest.fail(f"still work left after {MAX_CALLS} calls: someone is never called")
            response = await api.client.post(
                f"/v1/stations/{code}/call-next",
                headers=station_auth(api, code),
                json={"room": room},
            )
            # Each caller owns its room, so not even a 409 (room busy) is expected.
            assert response.status_code == 200, response.text
            called = response.json()["called"]
            if called is None:
                if not await live_entries(session_factory):
                    return
                await asyncio.sleep(0.01)
                continue
            entry = called["entry"]
            seen(entry)
            assert (entry["station"], entry["room"], entry["state"]) == (code, room, "called")
            mother = entry["mother_id"]
            assert mother not in held, f"{mother} called at {code}/{room} while at {held[mother]}"
            held[mother] = (code, room)
            started = await op(api, entry["id"], "start")
            assert started.status_code == 200, started.text
            del held[mother]  # before the finish is sent: once it commits she may be called
            finished = await op(api, entry["id"], "finish")
            assert finished.status_code == 200, finished.text
            assert finished.json()["state"] == "done"
            served.append((entry["id"], code, room))

    await asyncio.gather(*(station(code, room) for code, room in ROOMS))

    assert not held
    assert len(served) == orders  # one service per order here: each exam is at its own station
    assert len({entry_id for entry_id, _, _ in served}) == len(served)
    async with session_factory() as session:
        steps = (
            await session.execute(select(ExamStep.id, ExamStep.state, ExamStep.entry_id))
        ).all()
        order_states = Counter((await session.scalars(select(ExamOrder.status))).all())
        entries = {e.id: e for e in (await session.scalars(select(QueueEntry))).all()}
    assert len(steps) == orders
    assert Counter(state for _, state, _ in steps) == Counter({"done": orders})
    assert order_states == Counter({"done": orders})
    # Every step was finished by one entry, which is done, and no entry did two steps.
    assert all(
        entry_id is not None and entries[entry_id].state == "done" for _, _, entry_id in steps
    )
    assert len({entry_id for _, _, entry_id in steps}) == orders
    # Nobody was called and let go or moved: every entry was served, once per kind of service.
    assert Counter(e.state for e in entries.values()) == Counter({"done": orders})
    per_service = Counter((e.visit_id, e.station_type) for e in entries.values())
    assert set(per_service.values()) == {1}
    assert {str(e.id) for e in entries.values()} == {entry_id for entry_id, _, _ in served}
    # Every room did its share (the parallel rooms are both used).
    rooms = Counter((code, room) for _, code, room in served)
    assert set(rooms) == set(ROOMS)
