"""Edges of the butler feed: every change that alters her list changes the ETag; caches never
serve a revoked token or an old version; the feed never has a silent gap."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.feed import assignments, task
from tests.helpers.mothers import enrol
from tests.helpers.visits import book, open_session


async def _fresh(api: Api, app: FastAPI, who: str = "butler1") -> Any:
    app.state.notifier._versions.clear()
    return await assignments(api, who)


async def test_the_no_show_sweep_changes_the_etag(
    api: Api, app: FastAPI, clock: FrozenClock
) -> None:
    session = await open_session(api, day="2026-11-28")
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    visit = (await book(api, mother["id"], session["id"])).json()
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler1"].id)
    first = await _fresh(api, app)
    assert [i["kind"] for i in first.json()["items"]] == ["visit"]
    clock.advance(timedelta(hours=3))  # 13:00, same clinic day; the session ended
    swept = await api.client.post(
        "/v1/visits/no-show-sweep", headers=api.auth("frontdesk"), json={}
    )
    assert swept.json()["marked_no_show"] == [visit["id"]]
    app.state.notifier._versions.clear()
    full = await assignments(api)
    assert full.json()["items"] == []  # the answer changed ...
    again = await assignments(api, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200, "stale 304: sweep did not bump the version"


async def test_moving_todays_visit_away_changes_the_etag(api: Api, app: FastAPI) -> None:
    today = await open_session(api, day="2026-11-28")
    later = await open_session(api, day="2026-12-01")
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    visit = (await book(api, mother["id"], today["id"])).json()
    first = await _fresh(api, app)
    assert [i["kind"] for i in first.json()["items"]] == ["visit"]
    moved = await api.client.post(
        f"/v1/visits/{visit['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": later["id"], "reason": "she travels"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["accompanying_butler_id"] == str(api.staff.butlers["butler1"].id)
    app.state.notifier._versions.clear()
    assert (await assignments(api)).json()["items"] == []
    again = await assignments(api, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200, "stale 304: reschedule did not bump the version"


async def test_a_report_moved_to_reconciliation_changes_the_etag(
    api: Api, app: FastAPI, clock: FrozenClock
) -> None:
    from tests.helpers.lab import Lab
    from tests.helpers.messages import oru
    from tests.helpers.visits import checked_in_mother, order_number

    lab = Lab(api, clock)
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="R1", mrn=mother["mrn"], order=order_number(visit))
    await lab.hl7(body)
    first = await _fresh(api, app)
    (pickup,) = [i for i in first.json()["items"] if i["kind"] == "report_pickup"]
    # An update naming another patient is held beside it: her report stays as it was.
    await lab.hl7(body.replace("R1", "R2").replace(mother["mrn"], "SOMEONE-ELSE"))
    app.state.notifier._versions.clear()
    assert "report_pickup" in [i["kind"] for i in (await assignments(api)).json()["items"]]
    # The desk detaches it: it leaves her butler's list, and the ETag says so.
    detached = await api.client.post(
        f"/v1/reports/{pickup['id']}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "the lab says the sample was another woman's"},
    )
    assert detached.status_code == 200, detached.text
    app.state.notifier._versions.clear()
    kinds = [i["kind"] for i in (await assignments(api)).json()["items"]]
    assert "report_pickup" not in kinds
    again = await assignments(api, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200, "stale 304: the old mother's butlers were not touched"


async def test_tasks_follow_the_primary_butler(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    await task(api, mother["id"])
    changed = await api.client.post(
        f"/v1/mothers/{mother['id']}/primary-butler",
        headers=api.auth("frontdesk"),
        json={"butler_id": str(api.staff.butlers["butler2"].id), "reason": "moved on"},
    )
    assert changed.status_code == 200, changed.text
    old = (await assignments(api, "butler1")).json()["items"]
    new = (await assignments(api, "butler2")).json()["items"]
    print("old primary sees", [(i["kind"], i["name"]) for i in old])
    print("new primary sees", [(i["kind"], i["name"]) for i in new])
    assert old == [], "former primary still sees her (task, name, MRN)"


async def test_a_long_poll_is_not_fooled_by_a_stale_version_cache(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.feed.repository import FeedRepository

    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    etag = (await _fresh(api, app)).headers["etag"]
    app.state.notifier._versions.clear()
    real = FeedRepository.version
    fired = {"n": 0}

    async def racing(self: FeedRepository, butler_id: Any) -> int:
        value = await real(self, butler_id)
        if fired["n"] == 0:  # a change commits while our SELECT's answer is in flight
            fired["n"] = 1
            await task(api, mine["id"])
        return value

    monkeypatch.setattr(FeedRepository, "version", racing)
    first = await assignments(api, **{"If-None-Match": etag})
    assert first.status_code == 304  # legitimately racy
    monkeypatch.setattr(FeedRepository, "version", real)
    started = time.monotonic()
    poll = await api.client.get(
        "/v1/me/assignments",
        params={"wait": 3},
        headers={**api.auth("butler1"), "If-None-Match": etag},
    )
    took = time.monotonic() - started
    print("status", poll.status_code, "took", round(took, 2))
    assert took < 1, "long-poll slept through an already committed change"


async def test_the_fast_path_leaves_an_encoded_wait_to_the_route(api: Api, app: FastAPI) -> None:
    etag = (await _fresh(api, app)).headers["etag"]
    await assignments(api, **{"If-None-Match": etag})  # warm both caches
    for qs in ("w%61it=2", "wait=0&wait=2"):
        started = time.monotonic()
        r = await api.client.get(
            f"/v1/me/assignments?{qs}", headers={**api.auth("butler1"), "If-None-Match": etag}
        )
        took = time.monotonic() - started
        print(qs, r.status_code, round(took, 3))
    app.state.notifier._versions.clear()
    started = time.monotonic()
    r = await api.client.get(
        "/v1/me/assignments?w%61it=2", headers={**api.auth("butler1"), "If-None-Match": etag}
    )
    print("route path", r.status_code, round(time.monotonic() - started, 3))


async def test_a_revocation_racing_a_verification_is_not_cached(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.auth.repository import AuthRepository

    real = AuthRepository.token_principal_row
    state = {"inside": False, "done": False}

    async def racing(self: AuthRepository, digest: str) -> Any:
        row = await real(self, digest)
        if not state["done"] and not state["inside"]:
            state["inside"] = True
            out = await api.client.post("/v1/auth/logout", headers=api.auth("butler1"))
            print("logout", out.status_code)
            state["done"] = True
            state["inside"] = False
        return row

    monkeypatch.setattr(AuthRepository, "token_principal_row", racing)
    r1 = await assignments(api)
    print("request that raced the logout", r1.status_code)
    monkeypatch.setattr(AuthRepository, "token_principal_row", real)
    r2 = await assignments(api)
    assert r2.status_code == 401, "a logged-out token keeps working from the cache"


async def test_the_purge_never_punches_a_hole_in_the_feed(
    api: Api, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from app.feed.changes import purge_feed, touch

    butler = api.staff.butlers["butler1"].id
    t = clock.now()
    async with session_factory() as s:
        # Two concurrent writers: the one whose request started later took the row lock first.
        await touch(s, butler, kind="a", now=t + timedelta(seconds=5))  # seq 1
        await touch(s, butler, kind="b", now=t)  # seq 2 (its request began earlier)
        await touch(s, butler, kind="c", now=t + timedelta(seconds=6))  # seq 3
        await s.commit()
    async with session_factory() as s:
        await purge_feed(s, before=t + timedelta(seconds=1))
        await s.commit()
    r = await api.client.get("/v1/me/events", params={"after": 1}, headers=api.auth("butler1"))
    print(r.status_code, r.json())
    seqs = [e["seq"] for e in r.json().get("events", [])]
    assert r.status_code == 410 or seqs[:1] == [2], "gap: seq 2 silently missing"


async def test_cursor_zero_and_ahead(api: Api) -> None:
    r0 = await api.client.get("/v1/me/events", params={"after": 0}, headers=api.auth("butler1"))
    print("after=0 empty", r0.status_code, r0.json())
    r5 = await api.client.get("/v1/me/events", params={"after": 5}, headers=api.auth("butler1"))
    print("after=5 ahead", r5.status_code)
    rbig = await api.client.get(
        "/v1/me/events", params={"after": 10**20}, headers=api.auth("butler1")
    )
    print("after huge", rbig.status_code)
    assert r0.status_code == 200


async def test_a_hand_attached_report_reaches_the_primary_too(
    api: Api, app: FastAPI, clock: FrozenClock
) -> None:
    from tests.helpers.lab import Lab
    from tests.helpers.messages import oru
    from tests.helpers.visits import order_number

    lab = Lab(api, clock)
    b1 = str(api.staff.butlers["butler1"].id)
    mother = await enrol(api, primary_butler_id=b1)
    await api.client.post(
        f"/v1/butlers/{b1}/leaves",
        headers=api.auth("admin"),
        json={"starts_on": "2026-11-28", "ends_on": "2026-11-28", "reason": "ill"},
    )
    await open_session(api, day="2026-11-28")
    visit = (
        await api.client.post(
            "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
        )
    ).json()
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler2"].id)
    critical = ["OBX|1|NM|718-7^Hgb^LN||62|g/L|110-150|LL|||F"]
    await lab.hl7(oru(control_id="T1", mrn="TYPO", order=order_number(visit), obx=critical))
    first = await _fresh(api, app, "butler1")
    (queued,) = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    cbc = next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "cbc")
    r = await api.client.post(
        f"/v1/reports/{queued['report']['id']}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "typo confirmed", "override": True},
    )
    assert r.status_code == 200, r.text
    app.state.notifier._versions.clear()
    kinds = [i["kind"] for i in (await assignments(api, "butler1")).json()["items"]]
    print("primary now sees", kinds)
    again = await assignments(api, "butler1", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200, "stale 304 for the primary: new alert/report hidden"


async def test_a_far_future_due_time_is_422(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    r = await api.client.post(
        f"/v1/mothers/{mother['id']}/tasks",
        headers=api.auth("frontdesk"),
        json={"title": "far away", "due_at": "9999-12-31T23:00:00-05:00"},
    )
    print("far due_at", r.status_code)
    assert r.status_code < 500


@pytest.mark.postgres_only
async def test_transactions_touching_butlers_in_opposite_orders_do_not_deadlock(
    api: Api, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> None:
    from sqlalchemy import select

    from app.feed.changes import touch
    from app.feed.models import FeedState

    a, b = api.staff.butlers["butler1"].id, api.staff.butlers["butler2"].id
    first, second = session_factory(), session_factory()
    try:
        # Each holds a row lock on the other's first butler until commit, were bumps immediate.
        for session, order in ((first, (a, b)), (second, (b, a))):
            for butler_id in order:
                await touch(session, butler_id, kind="probe", now=clock.now())
        await asyncio.wait_for(asyncio.gather(first.commit(), second.commit()), timeout=10)
    finally:
        await first.close()
        await second.close()
    async with session_factory() as session:
        versions = dict(
            (await session.execute(select(FeedState.butler_id, FeedState.version))).all()
        )
    assert versions == {a: 2, b: 2}


def test_long_waits_end_spread_out_and_short_ones_on_time() -> None:
    from app.feed.fast_path import hold_for

    holds = [hold_for(30) for _ in range(500)]
    assert all(24 <= h <= 30 for h in holds)
    assert max(holds) - min(holds) > 4  # spread over seconds, not all at once
    assert {hold_for(5) for _ in range(20)} == {5.0}
