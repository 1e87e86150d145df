"""Idempotency-Key on creating POSTs (SPEC.md section 4)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.auth.dependencies import idempotent
from app.core.clock import FrozenClock
from app.core.idempotency import IdempotencyRecord, IdempotencyStatus, fingerprint
from app.main import api_routes
from app.mothers.models import Mother
from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.problems import assert_problem


async def count_mothers(factory: async_sessionmaker[AsyncSession]) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Mother)) or 0)


async def test_a_replay_returns_the_first_answer_and_creates_nothing(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "enrol-0001"}
    body = mother_body()
    first = await api.client.post("/v1/mothers", headers=headers, json=body)
    again = await api.client.post("/v1/mothers", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await count_mothers(session_factory) == 1


async def test_the_same_key_with_another_body_is_422(api: Api) -> None:
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "enrol-0002"}
    await api.client.post("/v1/mothers", headers=headers, json=mother_body(serial="201"))
    other = await api.client.post("/v1/mothers", headers=headers, json=mother_body(serial="202"))
    body = assert_problem(other, 422)
    assert body["type"] == "/problems/idempotency-key-reused"


async def test_keys_belong_to_one_client(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Two desks choosing the same key do not see each other's answers."""
    body = mother_body(serial="301")
    first = await api.client.post(
        "/v1/mothers", headers={**api.auth("frontdesk"), "Idempotency-Key": "k"}, json=body
    )
    second = await api.client.post(
        "/v1/mothers", headers={**api.auth("admin"), "Idempotency-Key": "k"}, json=body
    )
    assert first.status_code == 201
    assert_problem(second, 409)  # a real second enrolment attempt: duplicate MRN
    assert await count_mothers(session_factory) == 1


async def test_a_failed_request_frees_its_key(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "enrol-0003"}
    body = mother_body(serial="401")
    body["pregnancy"]["lmp_date"] = "2026-12-25"  # in the future: refused
    assert_problem(await api.client.post("/v1/mothers", headers=headers, json=body), 422)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    # The retry is evaluated again, not answered from a stored failure.
    again = await api.client.post("/v1/mothers", headers=headers, json=body)
    assert_problem(again, 422)
    assert "idempotent-replayed" not in again.headers


async def test_a_key_in_progress_is_409_then_expires(
    api: Api, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    body = mother_body(serial="501")
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "enrol-0004"}
    # A first request that claimed the key and is still running (or crashed).
    async with session_factory() as session:
        session.add(
            IdempotencyRecord(
                scope=f"user:{api.staff.users['frontdesk'].id}",
                key="enrol-0004",
                fingerprint=fingerprint("POST", "/v1/mothers", "", json.dumps(body).encode()),
                status=IdempotencyStatus.IN_PROGRESS,
                created_at=clock.now(),
                locked_until=clock.now() + timedelta(seconds=60),
                expires_at=clock.now() + timedelta(hours=48),
            )
        )
        await session.commit()
    raw = json.dumps(body).encode()
    send = {**headers, "content-type": "application/json"}
    busy = await api.client.post("/v1/mothers", headers=send, content=raw)
    assert_problem(busy, 409)
    assert busy.headers["retry-after"] == "1"
    clock.advance(timedelta(seconds=61))  # the first holder died: its claim lapses
    retried = await api.client.post("/v1/mothers", headers=send, content=raw)
    assert retried.status_code == 201, retried.text


@pytest.mark.postgres_only
async def test_concurrent_duplicates_create_one_mother(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "burst"}
    body = mother_body(serial="601")
    responses = await asyncio.gather(
        *(api.client.post("/v1/mothers", headers=headers, json=body) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert await count_mothers(session_factory) == 1


# Its answer carries secrets shown once; storing it for replays would keep them (retries are
# safe anyway: client names are unique).
SECRET_BEARING = {"/v1/api-clients"}


def test_every_creating_post_honours_idempotency_key() -> None:
    creating = [
        r
        for r in api_routes()
        if "POST" in r.methods and r.status_code == 201 and r.path not in SECRET_BEARING
    ]
    assert creating, "no creating routes found"
    missing = [
        route.path
        for route in creating
        if idempotent not in {d.call for d in route.dependant.dependencies}
    ]
    assert missing == []


async def test_a_replay_is_audited_as_a_read(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**api.auth("frontdesk"), "Idempotency-Key": "audit-me"}
    body = mother_body(serial="701")
    first = await api.client.post("/v1/mothers", headers=headers, json=body)
    replay = await api.client.post("/v1/mothers", headers=headers, json=body)
    async with session_factory() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "idempotent_replay")
            )
        )
    assert [(e.resource_type, e.resource_id, e.request_id) for e in events] == [
        ("mother", first.json()["id"], replay.headers["x-request-id"])
    ]


@pytest.mark.postgres_only
async def test_keys_do_not_exhaust_the_connection_pool(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Claiming a key must not need a second connection while the request holds one."""
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/v1/mothers",
                headers={**api.auth("frontdesk"), "Idempotency-Key": f"pool-{i}"},
                json=mother_body(serial=f"{900 + i}", phone=f"1380000{900 + i:04d}"),
            )
            for i in range(16)  # the test pool holds 5 + 5 connections
        )
    )
    assert [r.status_code for r in responses] == [201] * 16
    assert await count_mothers(session_factory) == 16
