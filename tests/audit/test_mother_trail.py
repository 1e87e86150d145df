"""Her trail (issue 18): every row names the mother it concerns, whatever it is keyed by, and
GET /v1/audit-events?mother_id= finds them all; what the rows keep of free text; the lab as the
actor of what it brings; old rows filled by migration 0029."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.audit.service import audit_row
from app.core.migrations import downgrade, upgrade
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.visits import checked_in_mother, order_number


async def _trail(api: Api, mother_id: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.client.get(
            "/v1/audit-events",
            headers=api.auth("admin"),
            params={
                "mother_id": mother_id,
                "limit": 3,
                **params,
                **({"cursor": cursor} if cursor else {}),
            },
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["page"]["next_cursor"]
        if cursor is None:
            return items


async def _her_day(api: Api, lab: Lab) -> tuple[dict[str, Any], dict[str, Any]]:
    mother, visit = await checked_in_mother(api)
    body = oru(
        control_id="TRAIL-1",
        mrn=mother["mrn"],
        order=order_number(visit),
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||62|g/L|110-150|LL|||F"],
    )
    assert (await lab.hl7(body))[0] == "AA"
    return mother, visit


async def test_her_trail_holds_the_rows_keyed_by_her_visit_queue_places_reports_and_alerts(
    api: Api, lab: Lab
) -> None:
    mother, visit = await _her_day(api, lab)
    other = await enrol(api, serial="077")
    doctor = api.auth("doctor")
    await api.client.get(f"/v1/visits/{visit['id']}", headers=doctor)
    (report,) = (await api.client.get("/v1/reports", headers=doctor)).json()["items"]
    await api.client.get(f"/v1/reports/{report['id']}", headers=doctor)
    await api.client.get("/v1/alerts", headers=doctor)
    await api.client.get(f"/v1/mothers/{other['id']}", headers=doctor)

    trail = await _trail(api, mother["id"])
    kinds = {e["resource_type"] for e in trail}
    assert {"mother", "visit", "report", "alert"} <= kinds
    assert {e["mother_id"] for e in trail} == {mother["id"]}
    actions = {e["action"] for e in trail}
    assert {"visit.check_in", "visit.read", "report.read", "report.list", "alert.list"} <= actions
    # Paged as every list (three at a time here), nothing twice, nothing of the other mother.
    assert len({e["id"] for e in trail}) == len(trail) > 3
    assert other["id"] not in {e["resource_id"] for e in trail}
    assert [e["action"] for e in await _trail(api, other["id"])] == ["mother.create", "mother.read"]
    # The filters combine: her reads of the visit alone.
    only = await _trail(api, mother["id"], resource_type="visit", action="visit.read")
    assert [(e["resource_id"], e["actor_name"]) for e in only] == [(visit["id"], "doctor")]


async def test_only_admins_read_her_trail_and_a_malformed_id_is_refused(api: Api) -> None:
    mother = await enrol(api)
    for who in ("frontdesk", "doctor", "butler1"):
        assert_problem(
            await api.client.get(
                "/v1/audit-events", headers=api.auth(who), params={"mother_id": mother["id"]}
            ),
            403,
        )
    assert_problem(
        await api.client.get(
            "/v1/audit-events", headers=api.auth("admin"), params={"mother_id": "not-an-id"}
        ),
        422,
    )


async def test_the_lab_is_the_actor_of_the_report_it_attaches_to_her(api: Api, lab: Lab) -> None:
    mother, _ = await _her_day(api, lab)
    (received,) = await _trail(api, mother["id"], action="report.receive")
    assert (received["actor_kind"], received["role"]) == ("client", "lab_system")
    assert received["resource_type"] == "report"
    assert received["detail"]["attached"] is True
    assert set(received["detail"]) == {"message_id", "attached"}


async def test_a_held_report_is_on_the_trail_without_a_mother(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = oru(
        control_id="TRAIL-HELD",
        mrn="MRN-NOBODY",
        order="NO-SUCH-ORDER",
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||120|g/L|110-150|N|||F"],
    )
    assert (await lab.hl7(body))[0] == "AA"
    async with session_factory() as session:
        rows = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "report.receive"))
        )
    assert [(r.mother_id, r.detail and r.detail["attached"]) for r in rows] == [(None, False)]


async def test_a_completed_task_records_that_a_note_was_given_never_its_text(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    task = await api.client.post(
        f"/v1/mothers/{mother['id']}/tasks",
        headers=api.auth("frontdesk"),
        json={"title": "Call her about the iron", "due_at": "2026-11-29T02:00:00Z"},
    )
    note = "她说她怀孕后一直头晕 / she says she has been dizzy since"
    done = await api.client.post(
        f"/v1/me/tasks/{task.json()['id']}/complete",
        headers=api.auth("butler1"),
        json={"note": note},
    )
    assert done.status_code == 200, done.text
    async with session_factory() as session:
        (row,) = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "task.complete")
        )
        raw = await session.scalar(
            text("SELECT count(*) FROM audit_events WHERE CAST(detail AS TEXT) LIKE :n"),
            {"n": "%dizzy%"},
        )
    assert (row.resource_type, str(row.mother_id)) == ("task", mother["id"])
    assert row.detail == {"note_given": True, "repeat": False}
    assert raw == 0


def test_a_row_about_something_of_hers_that_does_not_name_her_is_refused() -> None:
    """A call that forgot to say whose visit it is fails, instead of a row nobody can find."""
    now = datetime.now(UTC)
    with pytest.raises(TypeError, match="must name its mother"):
        audit_row(None, "visit.read", "visit", uuid.uuid4(), occurred_at=now, request_id=None)
    hers = uuid.uuid4()
    row = audit_row(None, "mother.read", "mother", hers, occurred_at=now, request_id=None)
    assert row["mother_id"] == hers
    told = audit_row(
        None, "visit.read", "visit", uuid.uuid4(), occurred_at=now, request_id=None, mother_id=hers
    )
    assert told["mother_id"] == hers
    station = audit_row(
        None, "station.update", "station", uuid.uuid4(), occurred_at=now, request_id=None
    )
    assert station["mother_id"] is None


async def test_migration_0029_fills_the_mother_of_rows_written_before_it(
    api: Api, lab: Lab, database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Rows from before the column: hers by the resource id, by what their detail recorded,
    or by the visit, queue place, report or alert they are keyed by; the rest stay empty."""
    mother, _ = await _her_day(api, lab)
    await api.client.get("/v1/reports", headers=api.auth("doctor"))
    await api.client.get("/v1/alerts", headers=api.auth("doctor"))
    await api.client.post(
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "TRL", "name": "Trail room", "station_type": "vitals"},
    )
    async with session_factory() as session:
        before = {(e.id, e.mother_id) for e in await session.scalars(select(AuditEvent))}
    assert any(m is None for _, m in before)  # the station's row
    await asyncio.to_thread(downgrade, database_url, "0028")
    await asyncio.to_thread(upgrade, database_url)
    async with session_factory() as session:
        after = {(e.id, e.mother_id) for e in await session.scalars(select(AuditEvent))}
        kinds = {
            e.resource_type
            for e in await session.scalars(
                select(AuditEvent).where(AuditEvent.mother_id == uuid.UUID(mother["id"]))
            )
        }
    # Every row the app wrote with her id is filled again with it (and none gains one).
    assert after == before
    assert {"mother", "visit", "report", "alert"} <= kinds
    async with session_factory() as session:  # still append-only after the fill
        with pytest.raises(Exception, match="append-only"):
            await session.execute(text("DELETE FROM audit_events"))


async def test_a_role_refused_on_her_records_route_is_on_her_trail(api: Api) -> None:
    """A butler is not allowed her flags: the refusal names the mother tried (probe, issue 18)."""
    mother = await enrol(api)
    refused = await api.client.get(f"/v1/mothers/{mother['id']}/flags", headers=api.auth("butler1"))
    assert_problem(refused, 403)
    denied = [e for e in await _trail(api, mother["id"]) if e["outcome"] == "denied"]
    assert [(e["action"], e["resource_id"]) for e in denied] == [
        ("GET /v1/mothers/{mother_id}/flags", mother["id"])
    ]
