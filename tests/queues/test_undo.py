"""Undo a mis-tap (issue 19, point 6): a room takes back its last call, start or finish within
two minutes, audited, when nothing since depends on it; otherwise a 409 problem saying why."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.queues.models import ExamStep, QueueEntry
from app.visits.models import ExamOrder
from tests.helpers.api import Api
from tests.helpers.queues import (
    arrive,
    call,
    entry_station_auth,
    op,
    record_drink,
    seen,
    serve,
    station_auth,
    visit_queue,
)
from tests.helpers.visits import TODAY, open_session


async def _undo(api: Api, entry_id: str, action: str, **headers: str) -> Any:
    return await api.client.post(
        f"/v1/queue-entries/{entry_id}/undo",
        headers=headers or entry_station_auth(api, entry_id),
        json={"action": action},
    )


def _refused(response: Any, reason: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["reason"] == reason, body
    assert body["detail"]
    return body


async def _queue(api: Api, code: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/stations/{code}/queue", headers=api.auth("frontdesk"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _only(api: Api, her: dict[str, Any], keep: set[str]) -> None:
    """Her day is cut down to these exams (the others cancelled)."""
    for order in her["visit"]["exam_orders"]:
        if order["exam_code"] not in keep:
            cancelled = await api.client.post(
                f"/v1/exam-orders/{order['id']}/cancel",
                headers=api.auth("doctor"),
                json={"reason": "done elsewhere"},
            )
            assert cancelled.status_code == 204, cancelled.text


async def _undo_events(factory: async_sessionmaker[AsyncSession], entry_id: str) -> list[Any]:
    async with factory() as session:
        rows = await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "queue.undo", AuditEvent.resource_id == entry_id
            )
        )
        return list(rows.all())


async def _entry(factory: async_sessionmaker[AsyncSession], entry_id: str) -> QueueEntry:
    async with factory() as session:
        entry = await session.scalar(select(QueueEntry).where(QueueEntry.id == _uuid(entry_id)))
        assert entry is not None
        return entry


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


async def test_an_undone_call_puts_her_back_where_she_was_and_is_audited(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    first = await arrive(api, serial="101", name="王小琪")
    clock.advance(timedelta(minutes=1))
    await arrive(api, serial="102", butler="butler2", name="李娜")
    before = [e["id"] for e in (await _queue(api, "VIT"))["waiting"]]
    called = (await call(api, "VIT"))["called"]["entry"]
    assert called["mother_id"] == first["mother"]["id"]
    clock.advance(timedelta(seconds=30))
    undone = await _undo(api, called["id"], "call")
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert (body["state"], body["room"], body["called_at"]) == ("waiting", None, None)
    after = await _queue(api, "VIT")
    assert [e["id"] for e in after["waiting"]] == before  # where she was: first
    assert after["serving"] == []
    [event] = await _undo_events(session_factory, called["id"])
    assert event.outcome == "success"
    assert event.mother_id == _uuid(first["mother"]["id"])
    assert event.detail["undone"] == "call"
    assert event.detail["room"] == 1
    assert event.detail["undone_at"].startswith("2026-11-28T02:01:00")
    # The second tap finds nothing to undo; the next call takes her again.
    _refused(await _undo(api, called["id"], "call"), "not-last-action")
    assert (await call(api, "VIT"))["called"]["entry"]["id"] == called["id"]


async def test_an_undone_start_calls_her_again(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    entry = (await call(api, "VIT"))["called"]["entry"]
    clock.advance(timedelta(seconds=20))
    assert (await op(api, entry["id"], "start")).status_code == 200
    clock.advance(timedelta(seconds=10))
    # A start is undone as a start, not as a call or a finish.
    _refused(await _undo(api, entry["id"], "finish"), "not-last-action")
    _refused(await _undo(api, entry["id"], "call"), "not-last-action")
    undone = await _undo(api, entry["id"], "start")
    assert undone.status_code == 200, undone.text
    assert (undone.json()["state"], undone.json()["started_at"]) == ("called", None)
    assert undone.json()["room"] == 1
    [event] = await _undo_events(session_factory, entry["id"])
    assert event.detail["undone"] == "start"
    assert (await op(api, entry["id"], "start")).status_code == 200


async def test_an_undone_finish_opens_the_exam_again_and_gives_back_what_it_opened(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    await _only(api, her, {"vitals", "consultation"})
    finished = await serve(api, "VIT")
    # Her vitals done, the doctor (last) is open to her now.
    doctor = [p for p in (await visit_queue(api, her["visit"]["id"]))["places"]]
    [doc] = [p for p in doctor if p["station_type"] == "doctor" and p["state"] == "waiting"]
    clock.advance(timedelta(seconds=40))
    undone = await _undo(api, finished["id"], "finish")
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert (body["state"], body["finished_at"], body["closed_at"]) == ("in_service", None, None)
    places = (await visit_queue(api, her["visit"]["id"]))["places"]
    assert doc["id"] not in {p["id"] for p in places if p["state"] == "waiting"}
    async with session_factory() as session:
        given_back = await session.get(QueueEntry, _uuid(doc["id"]))
        assert given_back is not None
        assert given_back.state == "cancelled"
        assert given_back.close_reason == f"the finish of {finished['ticket']} was undone"
        steps = list(
            (
                await session.scalars(
                    select(ExamStep).where(ExamStep.entry_id == _uuid(finished["id"]))
                )
            ).all()
        )
        assert steps
        assert {(s.state, s.done_at) for s in steps} == {("pending", None)}
        order = await session.get(ExamOrder, steps[0].order_id)
        assert order is not None
        assert (order.status, order.completed_at) == ("ordered", None)
    [event] = await _undo_events(session_factory, finished["id"])
    assert event.detail["undone"] == "finish"
    assert event.detail["given_back"] == [doc["id"]]
    assert _queue_has(await _queue(api, "VIT"), finished["id"], "serving")
    # Finished again: the doctor is open to her again.
    assert (await op(api, finished["id"], "finish")).status_code == 200
    places = (await visit_queue(api, her["visit"]["id"]))["places"]
    assert any(p["station_type"] == "doctor" and p["state"] == "waiting" for p in places)


def _queue_has(queue: dict[str, Any], entry_id: str, part: str) -> bool:
    return entry_id in {e["id"] for e in queue[part]}


@pytest.mark.parametrize("action", ["call", "start", "finish"])
async def test_two_minutes_to_undo(api: Api, clock: FrozenClock, action: str) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    await arrive(api, serial="102", butler="butler2")

    async def act() -> str:
        entry: str = (await call(api, "VIT"))["called"]["entry"]["id"]
        if action in ("start", "finish"):
            assert (await op(api, entry, "start")).status_code == 200
        if action == "finish":
            assert (await op(api, entry, "finish")).status_code == 200
        return entry

    entry = await act()
    clock.advance(timedelta(minutes=1, seconds=59))
    assert (await _undo(api, entry, action)).status_code == 200
    if action == "call":
        entry = await act()
    elif action == "start":
        assert (await op(api, entry, "start")).status_code == 200
    else:
        assert (await op(api, entry, "finish")).status_code == 200
    clock.advance(timedelta(minutes=2, seconds=1))
    body = _refused(await _undo(api, entry, action), "too-late")
    assert "more than 2 minutes ago" in body["detail"]


async def test_refused_when_something_since_depends_on_it(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    # Called again: the room called her on purpose.
    her = await arrive(api, serial="101")
    await _only(api, her, {"vitals", "consultation"})
    entry = (await call(api, "VIT"))["called"]["entry"]
    assert (await op(api, entry["id"], "recall")).status_code == 200
    _refused(await _undo(api, entry["id"], "call"), "depends")
    # Finished, then called by the doctor: her next exam began.
    assert (await op(api, entry["id"], "start")).status_code == 200
    assert (await op(api, entry["id"], "finish")).status_code == 200
    clock.advance(timedelta(seconds=10))
    doc = (await call(api, "DOC"))["called"]["entry"]
    assert doc["mother_id"] == her["mother"]["id"]
    body = _refused(await _undo(api, entry["id"], "finish"), "depends")
    assert doc["ticket"] in body["detail"]
    # Finished with readings: they depend on it.
    other = await arrive(api, serial="102", butler="butler2")
    await _only(api, other, {"vitals", "consultation"})
    second = (await call(api, "VIT"))["called"]["entry"]
    assert (await op(api, second["id"], "start")).status_code == 200
    finished = await op(
        api, second["id"], "finish", readings=[{"kind": "weight", "value": 61, "unit": "kg"}]
    )
    assert finished.status_code == 200, finished.text
    assert "Readings" in _refused(await _undo(api, second["id"], "finish"), "depends")["detail"]
    # The room called another since: its last action is that call.
    third = await arrive(api, serial="103")
    del third
    fourth = await arrive(api, serial="104", butler="butler2")
    del fourth
    a = (await call(api, "VIT"))["called"]["entry"]
    assert (await op(api, a["id"], "start")).status_code == 200
    assert (await op(api, a["id"], "finish")).status_code == 200
    clock.advance(timedelta(seconds=5))
    b = (await call(api, "VIT"))["called"]["entry"]
    body = _refused(await _undo(api, a["id"], "finish"), "not-last-action")
    assert b["ticket"] in body["detail"]
    # Nothing was undone by any of these.
    for entry_id in (entry["id"], second["id"], a["id"]):
        assert not await _undo_events(session_factory, entry_id)


async def test_a_fasting_draw_with_its_glucose_drink_recorded_stays_finished(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    fasting = await serve(api, "LAB")
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    body = _refused(await _undo(api, fasting["id"], "finish"), "depends")
    assert "glucose drink" in body["detail"]


async def test_a_station_undoes_only_at_its_own_station(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    entry = (await call(api, "VIT"))["called"]["entry"]
    elsewhere = await _undo(api, entry["id"], "call", **station_auth(api, "LAB"))
    assert elsewhere.status_code == 403, elsewhere.text
    assert elsewhere.json()["type"].endswith("wrong-station")
    assert (await _entry_state(api, entry["id"])) == "called"


async def _entry_state(api: Api, entry_id: str) -> str:
    queue = await _queue(api, "VIT")
    return next(e["state"] for e in queue["serving"] + queue["waiting"] if e["id"] == entry_id)


@pytest.mark.postgres_only
async def test_two_undos_at_once_undo_one_thing(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Two taps of undo at the same moment on a finish: one takes the finish back, the other
    is refused (not two steps back, not the finish undone twice)."""
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    await _only(api, her, {"vitals", "consultation"})
    for round_ in range(5):  # five rounds, each a real race between two requests
        entry = (await call(api, "VIT"))["called"]["entry"]
        before = 3 * round_  # the same place each round: three undone in each
        assert (await op(api, entry["id"], "start")).status_code == 200
        assert (await op(api, entry["id"], "finish")).status_code == 200
        clock.advance(timedelta(seconds=10))
        answers = await asyncio.gather(
            _undo(api, entry["id"], "finish"), _undo(api, entry["id"], "finish")
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409], [a.text for a in answers]
        _refused(next(a for a in answers if a.status_code == 409), "not-last-action")
        assert (await _entry(session_factory, entry["id"])).state == "in_service"
        assert len(await _undo_events(session_factory, entry["id"])) == before + 1
        # Then a start and a call undone at once: one each.
        answers = await asyncio.gather(
            _undo(api, entry["id"], "start"), _undo(api, entry["id"], "start")
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        answers = await asyncio.gather(
            _undo(api, entry["id"], "call"), _undo(api, entry["id"], "call")
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        assert (await _entry(session_factory, entry["id"])).state == "waiting"
        assert len(await _undo_events(session_factory, entry["id"])) == before + 3
        clock.advance(timedelta(seconds=10))


async def test_an_undone_fasting_draw_gives_her_places_back_where_she_was(
    api: Api, clock: FrozenClock
) -> None:
    """Her fasting draw finished, the glucose drink not yet recorded: she goes nowhere, her
    other places are held back. The finish undone: she holds them again, by her booked time."""
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    vid = her["visit"]["id"]
    before = {
        p["station"] for p in (await visit_queue(api, vid))["places"] if p["state"] == "waiting"
    }
    assert "VIT" in before
    fasting = await serve(api, "LAB")
    held = {
        p["station"] for p in (await visit_queue(api, vid))["places"] if p["state"] == "waiting"
    }
    assert "VIT" not in held  # she sits for her drink
    clock.advance(timedelta(seconds=30))
    undone = await _undo(api, fasting["id"], "finish")
    assert undone.status_code == 200, undone.text
    places = (await visit_queue(api, vid))["places"]
    assert {p["station"] for p in places if p["state"] == "waiting"} >= before - {"LAB"}
    assert any(p["id"] == fasting["id"] and p["state"] == "in_service" for p in places)
    lab = await _queue(api, "LAB")
    assert [e["id"] for e in lab["serving"]] == [fasting["id"]]
    assert lab["awaiting_start"] == []  # no drink to record: the draw is not over


@pytest.mark.postgres_only
async def test_an_undone_finish_never_cancels_a_call_made_between_its_read_and_its_write(
    api: Api,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race made deterministic: the undo reads the doctor's place her finish opened
    (waiting); the doctor's call takes it and commits; then the undo writes. The undo is
    refused and her call stands (it was cancelled under her, the undo a 200, before)."""
    from app.queues import undo as undo_module

    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    await _only(api, her, {"vitals", "consultation"})
    finished = await serve(api, "VIT")
    clock.advance(timedelta(seconds=20))
    read = undo_module._opened_by
    taken: list[uuid.UUID] = []

    async def read_then_doctor_calls(*args: Any) -> list[QueueEntry]:
        opened = await read(*args)
        [place] = opened
        assert place.state == "waiting"
        async with session_factory() as other, other.begin():  # the doctor's call, committed
            moved = await other.execute(
                update(QueueEntry)
                .where(QueueEntry.id == place.id, QueueEntry.state == "waiting")
                .values(state="called", room=1, called_at=clock.now())
            )
            assert getattr(moved, "rowcount", 0) == 1
        taken.append(place.id)
        return opened

    monkeypatch.setattr(undo_module, "_opened_by", read_then_doctor_calls)
    body = _refused(await _undo(api, finished["id"], "finish"), "depends")
    assert "called since" in body["detail"]
    [place_id] = taken
    async with session_factory() as session:
        place = await session.get(QueueEntry, place_id)
        assert place is not None
        assert (place.state, place.close_reason) == ("called", None)
        vitals = await session.get(QueueEntry, _uuid(finished["id"]))
        assert vitals is not None
        assert vitals.state == "done"
    assert not await _undo_events(session_factory, finished["id"])


@pytest.mark.postgres_only
async def test_an_undone_finish_and_the_next_exams_call_at_once_never_both(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Real concurrency: her vitals' finish undone while the doctor calls the place it opened.
    Either the undo wins (the place given back, the doctor calls nobody) or the call does (the
    undo refused): never the undo done and her call cancelled under the doctor."""
    outcomes: set[str] = set()
    await open_session(api, day=TODAY)
    for round_ in range(6):
        her = await arrive(api, serial=f"{110 + round_}", butler=f"butler{round_ % 2 + 1}")
        await _only(api, her, {"vitals", "consultation"})
        finished = await serve(api, "VIT")
        assert finished["mother_id"] == her["mother"]["id"]
        [place] = [
            p
            for p in (await visit_queue(api, her["visit"]["id"]))["places"]
            if p["station"] == "DOC" and p["state"] == "waiting"
        ]
        clock.advance(timedelta(seconds=10))
        undone, doctor = await asyncio.gather(
            _undo(api, finished["id"], "finish"),
            api.client.post(
                "/v1/stations/DOC/call-next", headers=station_auth(api, "DOC"), json={"room": 1}
            ),
        )
        assert doctor.status_code == 200, doctor.text
        called = doctor.json()["called"]
        async with session_factory() as session:
            vitals = await session.get(QueueEntry, _uuid(finished["id"]))
            at_doctor = await session.get(QueueEntry, _uuid(place["id"]))
            assert vitals is not None
            assert at_doctor is not None
            states = (vitals.state, at_doctor.state)
        if undone.status_code == 200:
            assert called is None, called
            assert states == ("in_service", "cancelled")
            outcomes.add("undo")
            assert (await op(api, finished["id"], "finish")).status_code == 200
            doc = await serve(api, "DOC")
        else:
            _refused(undone, "depends")
            assert called is not None
            assert called["entry"]["id"] == place["id"]
            assert states == ("done", "called")
            outcomes.add("call")
            seen_entry = called["entry"]
            seen(seen_entry)
            assert (await op(api, seen_entry["id"], "start")).status_code == 200
            doc = (await op(api, seen_entry["id"], "finish")).json()
        assert doc["mother_id"] == her["mother"]["id"]
        clock.advance(timedelta(seconds=10))
    assert outcomes  # which wins each round is the race's


async def test_a_room_undoes_only_its_own_action(api: Api, clock: FrozenClock) -> None:
    """The screen names its room: another room cannot take back room 1's call (nor does a
    retry from a screen since moved to another room)."""
    await open_session(api, day=TODAY)
    await arrive(api, serial="101")
    entry = (await call(api, "VIT"))["called"]["entry"]
    assert entry["room"] == 1
    clock.advance(timedelta(seconds=5))
    asked = await api.client.post(
        f"/v1/queue-entries/{entry['id']}/undo",
        headers=entry_station_auth(api, entry["id"]),
        json={"action": "call", "room": 2},
    )
    assert "room 1, not room 2" in _refused(asked, "not-last-action")["detail"]
    asked = await api.client.post(
        f"/v1/queue-entries/{entry['id']}/undo",
        headers=entry_station_auth(api, entry["id"]),
        json={"action": "call", "room": 1},
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "waiting"
