"""Verified tokens are cached, so a poll costs no token lookup; revocation ends that at once."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.problems import assert_problem


def count_token_lookups(app: FastAPI) -> dict[str, int]:
    seen = {"n": 0}

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM auth_tokens" in statement:
            seen["n"] += 1

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_a_cached_token_is_not_looked_up_again_until_revoked(api: Api, app: FastAPI) -> None:
    lookups = count_token_lookups(app)
    headers = api.auth("butler1")
    first = await api.client.get("/v1/me/assignments", headers=headers)
    etag = first.headers["etag"]
    assert lookups["n"] == 1
    for _ in range(5):
        poll = await api.client.get(
            "/v1/me/assignments", headers={**headers, "If-None-Match": etag}
        )
        assert poll.status_code == 304
    assert lookups["n"] == 1  # five polls, no token lookup
    revoked = await api.client.post(
        f"/v1/users/{api.staff.users['butler1'].id}/revoke-tokens", headers=api.auth("admin")
    )
    assert revoked.json()["revoked"] == 1
    assert_problem(await api.client.get("/v1/me/assignments", headers=headers), 401)


async def test_logout_ends_the_cached_token_too(api: Api) -> None:
    headers = api.auth("doctor")
    assert (await api.client.get("/v1/auth/me", headers=headers)).status_code == 200
    assert (await api.client.post("/v1/auth/logout", headers=headers)).status_code == 204
    assert_problem(await api.client.get("/v1/auth/me", headers=headers), 401)


async def test_an_idle_poll_costs_no_database_read_and_a_change_is_seen_at_once(
    api: Api, app: FastAPI
) -> None:
    queries = {"n": 0}

    def before(*_args: Any) -> None:
        queries["n"] += 1

    headers = api.auth("butler1")
    etag = (await api.client.get("/v1/me/assignments", headers=headers)).headers["etag"]
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
    for _ in range(5):
        poll = await api.client.get(
            "/v1/me/assignments", headers={**headers, "If-None-Match": etag}
        )
        assert poll.status_code == 304
        assert poll.headers["etag"] == etag
    assert queries["n"] == 0
    mother = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json=mother_body(primary_butler_id=str(api.staff.butlers["butler1"].id)),
    )
    assert mother.status_code == 201
    changed = await api.client.get("/v1/me/assignments", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200  # the version cache was cleared by the commit
