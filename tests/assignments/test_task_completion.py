"""Completing one of her tasks from the butler's phone (issue 18, probe): a retry with the
same note (or none, when none was given) answers 200 as it stands; with another note, or
without the note given first, a 409 (as a repeated pick-up or delivery), so the first note is
never silently dropped. The audit row says what was sent. Another butler's task is a 404 that
leaves a denied row naming the mother."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from tests.helpers.api import Api
from tests.helpers.feed import task
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem


async def _complete(
    api: Api, task_id: str, body: dict[str, Any] | None, who: str = "butler1"
) -> Any:
    path = f"/v1/me/tasks/{task_id}/complete"
    headers = api.auth(who)
    if body is None:
        return await api.client.post(path, headers=headers)
    return await api.client.post(path, headers=headers, json=body)


async def _rows(
    factory: async_sessionmaker[AsyncSession], task_id: str, outcome: str
) -> list[AuditEvent]:
    async with factory() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.action == "task.complete",
                    AuditEvent.resource_id == task_id,
                    AuditEvent.outcome == outcome,
                )
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
            )
        )


async def _her_task(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    return mother, await task(api, mother["id"])


async def test_a_repeat_with_another_note_is_a_409_and_the_task_is_unchanged(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    _, created = await _her_task(api)
    first = await _complete(api, created["id"], None)
    assert first.status_code == 200, first.text
    assert first.json()["completion_note"] is None
    same = await _complete(api, created["id"], None)
    assert same.status_code == 200
    assert same.json()["completed_at"] == first.json()["completed_at"]
    problem = assert_problem(await _complete(api, created["id"], {"note": "second note"}), 409)
    assert "completed already" in str(problem["detail"])
    assert "no note" in str(problem["detail"])
    rows = await _rows(session_factory, created["id"], "success")
    assert [r.detail for r in rows] == [
        {"note_given": False, "repeat": False},
        {"note_given": False, "repeat": True},
    ]


async def test_a_repeat_with_the_same_note_is_200_and_another_is_a_409(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    _, created = await _her_task(api)
    first = await _complete(api, created["id"], {"note": "called her, all well"})
    assert first.json()["completion_note"] == "called her, all well"
    again = await _complete(api, created["id"], {"note": "called her, all well"})
    assert again.status_code == 200
    assert again.json()["completion_note"] == "called her, all well"
    for body in ({"note": "second note"}, None):
        problem = assert_problem(await _complete(api, created["id"], body), 409)
        assert "another note" in str(problem["detail"])
    read = await _complete(api, created["id"], {"note": "called her, all well"})
    assert read.json()["completion_note"] == "called her, all well"
    rows = await _rows(session_factory, created["id"], "success")
    assert [r.detail for r in rows] == [
        {"note_given": True, "repeat": False},
        {"note_given": True, "repeat": True},
        {"note_given": True, "repeat": True},
    ]


async def test_another_butlers_task_is_a_404_and_the_refusal_is_audited(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, created = await _her_task(api)
    refused = await _complete(api, created["id"], {"note": "done"}, who="butler2")
    assert_problem(refused, 404)
    denied = await _rows(session_factory, created["id"], "denied")
    assert [(r.role, r.mother_id, r.actor_name) for r in denied] == [
        ("butler", uuid.UUID(mother["id"]), "butler2")
    ]
    # Nothing changed: her own butler completes it.
    mine = await _complete(api, created["id"], None)
    assert mine.status_code == 200
    assert mine.json()["completion_note"] is None
    # An unknown task is a 404 as before (nothing to name).
    assert_problem(await _complete(api, str(uuid.uuid4()), None, who="butler2"), 404)
