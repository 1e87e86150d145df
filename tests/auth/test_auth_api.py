"""Login, tokens that can be revoked and expire, role checks, integration clients."""

from __future__ import annotations

from datetime import timedelta

from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY, PASSWORD
from tests.helpers.problems import assert_problem


async def login(api: Api, username: str, password: str = PASSWORD) -> str:
    response = await api.client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_gives_a_working_token(api: Api) -> None:
    token = await login(api, "frontdesk")
    me = await api.client.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["role"] == "front_desk"
    assert me.json()["name"] == "frontdesk"  # the username, as the audit keeps it
    assert me.json()["display_name"]  # the name a screen's top bar shows
    assert me.json()["display_name"] != "frontdesk"


async def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    wrong = await api.client.post(
        "/v1/auth/login", json={"username": "frontdesk", "password": "nope-nope-nope"}
    )
    unknown = await api.client.post(
        "/v1/auth/login", json={"username": "nobody", "password": "nope-nope-nope"}
    )
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_logout_revokes_the_token(api: Api) -> None:
    token = await login(api, "doctor")
    assert (await api.client.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
    assert_problem(await api.client.get("/v1/auth/me", headers=bearer(token)), 401)


async def test_admin_revokes_every_token_of_a_lost_phone(api: Api) -> None:
    first = await login(api, "butler1")
    revoked = await api.client.post(
        f"/v1/users/{api.staff.users['butler1'].id}/revoke-tokens", headers=api.auth("admin")
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked"] == 2  # the fixture's token and the login's
    assert_problem(await api.client.get("/v1/auth/me", headers=bearer(first)), 401)
    assert_problem(await api.client.get("/v1/auth/me", headers=api.auth("butler1")), 401)


async def test_disabling_an_account_locks_it_out(api: Api) -> None:
    user_id = api.staff.users["station"].id
    path = f"/v1/users/{user_id}"
    assert_problem(await api.client.patch(path, headers=api.auth("admin"), json={}), 428)
    etag = (await api.client.get(path, headers=api.auth("admin"))).headers["etag"]
    response = await api.client.patch(
        path, headers={**api.auth("admin"), "If-Match": etag}, json={"is_active": False}
    )
    assert response.status_code == 200
    assert_problem(
        await api.client.patch(
            path, headers={**api.auth("admin"), "If-Match": etag}, json={"is_active": True}
        ),
        412,
    )
    assert_problem(await api.client.get("/v1/auth/me", headers=api.auth("station")), 401)
    refused = await api.client.post(
        "/v1/auth/login", json={"username": "station", "password": PASSWORD}
    )
    assert_problem(refused, 401)


async def test_tokens_expire(api: Api, clock: FrozenClock) -> None:
    token = await login(api, "frontdesk")
    clock.advance(timedelta(hours=12, minutes=1))
    body = assert_problem(await api.client.get("/v1/auth/me", headers=bearer(token)), 401)
    assert "expired" in str(body["detail"])


async def test_a_garbage_token_is_refused(api: Api) -> None:
    assert_problem(await api.client.get("/v1/auth/me", headers=bearer("pbt_forged")), 401)


async def test_roles_are_checked(api: Api) -> None:
    body = assert_problem(await api.client.get("/v1/users", headers=api.auth("frontdesk")), 403)
    assert body["required_roles"] == ["admin"]
    assert_problem(await api.client.get("/v1/mothers", headers=api.auth("station")), 403)


async def test_the_lab_client_authenticates_with_its_api_key(api: Api) -> None:
    me = await api.client.get("/v1/auth/me", headers={"X-API-Key": LAB_KEY})
    assert me.status_code == 200
    assert me.json() == {
        "kind": "client",
        "id": str(api.staff.lab_client.id),  # type: ignore[union-attr]
        "name": "Test LIS",
        "role": "lab_system",
        "butler_id": None,
        "station_code": None,
        "display_name": None,
    }
    assert_problem(await api.client.get("/v1/mothers", headers={"X-API-Key": LAB_KEY}), 403)
    assert_problem(await api.client.get("/v1/auth/me", headers={"X-API-Key": "pbk_wrong"}), 401)


async def test_admin_creates_an_api_client_whose_key_works_once_shown(api: Api) -> None:
    created = await api.client.post(
        "/v1/api-clients", headers=api.auth("admin"), json={"name": "Second LIS"}
    )
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    listed = await api.client.get("/v1/api-clients", headers=api.auth("admin"))
    assert key not in listed.text
    assert (await api.client.get("/v1/auth/me", headers={"X-API-Key": key})).status_code == 200
    client_id = created.json()["id"]
    await api.client.post(f"/v1/api-clients/{client_id}/deactivate", headers=api.auth("admin"))
    assert_problem(await api.client.get("/v1/auth/me", headers={"X-API-Key": key}), 401)


async def test_admin_creates_users_with_unique_names(api: Api) -> None:
    body = {
        "username": "nurse.li",
        "display_name": "Nurse Li",
        "role": "front_desk",
        "password": "a-long-enough-password",
    }
    created = await api.client.post("/v1/users", headers=api.auth("admin"), json=body)
    assert created.status_code == 201, created.text
    assert "password" not in created.text
    assert_problem(await api.client.post("/v1/users", headers=api.auth("admin"), json=body), 409)
    token = await login(api, "nurse.li", "a-long-enough-password")
    assert (await api.client.get("/v1/auth/me", headers=bearer(token))).status_code == 200
