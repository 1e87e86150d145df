"""Every read and write of a mother's data leaves an audit record that nobody can change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.audit.service import ACTION_LENGTH, audit_row
from tests.helpers.api import Api
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem


async def events(factory: async_sessionmaker[AsyncSession]) -> list[AuditEvent]:
    async with factory() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def test_reads_and_writes_are_audited_with_actor_and_request_id(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    read = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("butler1"))
    await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={"risk_grade": "yellow", "risk_reason": "anaemia"},
    )
    await api.client.get("/v1/mothers", headers=api.auth("frontdesk"))

    trail = [
        (e.action, e.actor_name, e.role, e.resource_id, e.outcome)
        for e in await events(session_factory)
    ]
    assert trail == [
        ("mother.create", "frontdesk", "front_desk", mother["id"], "success"),
        ("mother.read", "butler1", "butler", mother["id"], "success"),
        ("mother.update", "doctor", "doctor", mother["id"], "success"),
        ("mother.list", "frontdesk", "front_desk", mother["id"], "success"),
    ]
    recorded = await events(session_factory)
    assert recorded[1].request_id == read.headers["x-request-id"]
    assert recorded[2].detail == {"fields": ["risk_grade"]}
    assert recorded[3].detail is None


async def test_a_refused_access_is_audited_even_though_the_request_fails(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler2"].id))
    assert_problem(
        await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("butler1")), 404
    )
    denied = [e for e in await events(session_factory) if e.outcome == "denied"]
    assert [(e.action, e.actor_name, e.resource_id) for e in denied] == [
        ("mother.get", "butler1", mother["id"])
    ]


async def test_admins_query_the_trail_and_others_cannot(api: Api) -> None:
    mother = await enrol(api)
    await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("doctor"))
    response = await api.client.get(
        "/v1/audit-events",
        headers=api.auth("admin"),
        params={"resource_type": "mother", "resource_id": mother["id"], "action": "mother.read"},
    )
    assert response.status_code == 200
    assert [e["actor_name"] for e in response.json()["items"]] == ["doctor"]
    assert_problem(await api.client.get("/v1/audit-events", headers=api.auth("frontdesk")), 403)
    naive = await api.client.get(
        "/v1/audit-events",
        headers=api.auth("admin"),
        params={"occurred_from": "2026-11-28T00:00:00"},
    )
    assert_problem(naive, 422)


def test_the_api_offers_no_way_to_change_the_trail() -> None:
    from app.main import api_routes

    writes = [
        r.path
        for r in api_routes()
        if r.path.startswith("/v1/audit") and r.methods - {"GET", "HEAD"}
    ]
    assert writes == []


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"]
)
async def test_the_database_refuses_to_change_the_trail(
    api: Api, session_factory: async_sessionmaker[AsyncSession], statement: str
) -> None:
    await enrol(api)
    async with session_factory() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement))
    assert len(await events(session_factory)) == 1


async def test_a_role_refusal_is_audited(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert_problem(await api.client.get("/v1/mothers", headers=api.auth("station")), 403)
    denied = [e for e in await events(session_factory) if e.outcome == "denied"]
    assert [(e.action, e.actor_name, e.resource_type) for e in denied] == [
        ("GET /v1/mothers", "station", "route")
    ]


async def test_an_action_longer_than_its_column_is_cut_and_kept_whole_in_the_detail(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A refused role names the route; a long path must not turn the 403 into a 500 (on
    PostgreSQL a value longer than VARCHAR(60) is an error, on SQLite it passed unseen)."""
    action = "POST /v1/mothers/{mother_id}/health-plan/versions/{version}/signatures"
    row = audit_row(None, action, "route", None, occurred_at=datetime.now(UTC), request_id="r1")
    assert len(row["action"]) == ACTION_LENGTH == 60
    assert row["action"].endswith("…")
    assert row["detail"] == {"action": action}
    async with session_factory() as session:
        session.add(AuditEvent(**row))
        await session.commit()
    assert [e.detail for e in await events(session_factory)] == [{"action": action}]
    short = audit_row(
        None, "GET /v1/mothers", "route", None, occurred_at=datetime.now(UTC), request_id=None
    )
    assert (short["action"], short["detail"]) == ("GET /v1/mothers", None)
