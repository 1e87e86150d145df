"""Her own page: a per-day, revocable link (only its digest stored), read with no login,
showing her tickets, her call, her place and what comes next, with nothing that names her."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.visits.models import HerVisitLink
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, call, record_drink, serve
from tests.helpers.visits import TODAY, open_session


async def _link(api: Api, visit_id: str, who: str = "frontdesk") -> Any:
    return await api.client.post(f"/v1/visits/{visit_id}/her-link", headers=api.auth(who))


def _token(link: dict[str, Any]) -> str:
    url: str = link["url"]
    assert url.startswith("/console/her.html#k=")
    return url.removeprefix("/console/her.html#k=")


async def _page(api: Api, token: str, **headers: str) -> Any:
    return await api.client.get("/v1/her/visit", headers={"X-Her-Link": token, **headers})


async def test_the_desk_makes_her_link_and_her_page_shows_no_name_or_id(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101", name="王小琪")
    visit_id = her["visit"]["id"]
    made = await _link(api, visit_id)
    assert made.status_code == 200, made.text
    link = made.json()
    token = _token(link)
    assert len(token) >= 32
    assert link["absolute_url"].endswith(link["url"])
    assert link["absolute_url"].startswith("http")
    assert link["qr_svg"].startswith("<svg")
    assert link["expires_at"] == "2026-11-28T16:00:00Z"  # midnight in Shanghai
    assert made.headers["cache-control"] == "no-store"
    async with session_factory() as session:
        [row] = list(await session.scalars(select(HerVisitLink)))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(getattr(row, c.key)) for c in HerVisitLink.__table__.columns}

    page = await _page(api, token)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["date"] == TODAY
    assert body["called"] is None
    vit = next(t for t in body["tickets"] if t["station"] == "VIT")
    assert vit["status"] == "waiting"
    assert vit["position"] == 1
    assert vit["station_name"]
    for secret in ("王小琪", "王*琪", her["mother"]["mrn"], her["mother"]["id"], visit_id, "1380"):
        assert secret not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"

    called = await call(api, "VIT")
    assert called["called"]["entry"]["ticket"] == vit["ticket"]
    now = (await _page(api, token)).json()
    assert now["called"]["ticket"] == vit["ticket"]
    assert now["called"]["room"] == 1
    # Called at vitals, her places elsewhere still say where she stands there once free.
    waiting = [t for t in now["tickets"] if t["status"] == "waiting"]
    assert waiting
    assert all(t["position"] == 1 for t in waiting), waiting


async def test_her_position_is_the_boards(api: Api) -> None:
    await open_session(api, day=TODAY)
    await arrive(api, serial="101", name="王小琪")
    second = await arrive(api, serial="102", butler="butler2", name="李娜")
    token = _token((await _link(api, second["visit"]["id"])).json())
    body = (await _page(api, token)).json()
    vit = next(t for t in body["tickets"] if t["station"] == "VIT")
    board = (await api.client.get("/v1/stations/VIT/board")).json()
    assert [t["ticket"] for t in board["next"]].index(vit["ticket"]) + 1 == vit["position"] == 2


async def test_after_the_fasting_draw_next_is_her_timed_draw_with_its_time(
    api: Api, clock: FrozenClock
) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, serial="101")
    token = _token((await _link(api, her["visit"]["id"])).json())
    for station in ("VIT", "URI"):
        await serve(api, station)
    fasting = await serve(api, "LAB")
    assert (await record_drink(api, fasting["id"], clock.now())).status_code == 200
    body = (await _page(api, token)).json()
    done = [t for t in body["tickets"] if t["status"] == "done"]
    assert {t["station"] for t in done} == {"VIT", "URI", "LAB"}
    draw = next(t for t in body["tickets"] if t["station"] == "LAB" and t["status"] == "waiting")
    assert draw["due_at"] == "2026-11-28T03:00:00Z"
    assert draw["not_before"] == "2026-11-28T02:55:00Z"
    assert draw["position"] is None  # not callable before then
    assert body["next"]["due_at"] == "2026-11-28T03:00:00Z"
    assert "1-hour" in " ".join(body["next"]["exams"])


async def test_a_new_link_revokes_the_old_and_delete_revokes_it(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    visit_id = her["visit"]["id"]
    first = _token((await _link(api, visit_id)).json())
    second = _token((await _link(api, visit_id)).json())
    body = assert_problem(await _page(api, first), 404)
    assert body["type"] == "/problems/her-link-unknown"
    assert (await _page(api, second)).status_code == 200
    revoked = await api.client.delete(f"/v1/visits/{visit_id}/her-link", headers=api.auth("admin"))
    assert revoked.status_code == 204
    assert_problem(await _page(api, second), 404)
    again = await api.client.delete(
        f"/v1/visits/{visit_id}/her-link", headers=api.auth("frontdesk")
    )
    assert again.status_code == 204
    assert_problem(await _link(api, visit_id, "doctor"), 403)
    assert_problem(await _link(api, visit_id, "butler1"), 403)
    async with session_factory() as session:
        rows = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("her_link.%"))
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
            )
        )
    actions = [(r.action, r.actor_kind, r.role) for r in rows]
    assert actions == [
        ("her_link.create", "user", "front_desk"),
        ("her_link.revoke", "user", "front_desk"),  # replaced by the second
        ("her_link.create", "user", "front_desk"),
        ("her_link.read", "client", "her_link"),  # read as the link, not a user
        ("her_link.revoke", "user", "admin"),
    ]
    assert all(r.resource_id == visit_id for r in rows)


async def test_a_link_works_on_its_day_only(api: Api, clock: FrozenClock) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    token = _token((await _link(api, her["visit"]["id"])).json())
    clock.advance(timedelta(hours=13, minutes=59))  # 23:59 in Shanghai
    assert (await _page(api, token)).status_code == 200
    clock.advance(timedelta(minutes=1))
    assert_problem(await _page(api, token), 404)


async def test_unknown_links_are_404_and_a_guesser_is_slowed(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    token = _token((await _link(api, her["visit"]["id"])).json())
    assert_problem(await api.client.get("/v1/her/visit"), 404)
    for i in range(19):
        assert_problem(await _page(api, f"guess-{i}"), 404)
    assert_problem(await _page(api, "guess-last"), 429)
    # From the same address (the clinic's Wi-Fi), a valid link still opens her page: only
    # misses are limited, or one old slip could lock out every family in the waiting room.
    assert (await _page(api, token)).status_code == 200


async def test_her_page_has_an_etag_and_a_long_poll(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101")
    token = _token((await _link(api, her["visit"]["id"])).json())
    first = await _page(api, token)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-store"  # one URL, every mother
    assert first.headers["vary"] == "X-Her-Link"
    assert (await _page(api, token, **{"If-None-Match": etag})).status_code == 304
    started = time.monotonic()
    quiet = await api.client.get(
        "/v1/her/visit", params={"wait": 1}, headers={"X-Her-Link": token, "If-None-Match": etag}
    )
    assert quiet.status_code == 304
    assert 0.9 < time.monotonic() - started < 3

    async def call_soon() -> None:
        await asyncio.sleep(0.3)
        await call(api, "VIT")

    started = time.monotonic()
    poll, _ = await asyncio.gather(
        api.client.get(
            "/v1/her/visit",
            params={"wait": 20},
            headers={"X-Her-Link": token, "If-None-Match": etag},
        ),
        call_soon(),
    )
    assert poll.status_code == 200
    assert time.monotonic() - started < 3
    assert poll.json()["called"]["station"] == "VIT"
