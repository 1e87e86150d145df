"""Butler records: skills, languages, caseload limit, active flag and a weekly roster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api
from tests.helpers.problems import assert_problem

ROSTER = [
    {"weekday": 0, "starts_at": "08:00", "ends_at": "12:00"},
    {"weekday": 0, "starts_at": "13:00", "ends_at": "17:00"},
    {"weekday": 2, "starts_at": "08:00", "ends_at": "17:00"},
]


async def new_butler_account(api: Api, username: str = "butler.zhou") -> str:
    response = await api.client.post(
        "/v1/users",
        headers=api.auth("admin"),
        json={
            "username": username,
            "display_name": "周敏",
            "role": "butler",
            "password": "long-enough-password",
        },
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


async def test_admin_creates_a_butler_with_roster(api: Api) -> None:
    user_id = await new_butler_account(api)
    response = await api.client.post(
        "/v1/butlers",
        headers=api.auth("admin"),
        json={
            "user_id": user_id,
            "display_name": "周敏",
            "skills": ["infection_control", "high_risk", "high_risk"],
            "languages": ["zh-CN", "yue"],
            "max_caseload": 12,
            "roster": ROSTER,
        },
    )
    assert response.status_code == 201, response.text
    butler = response.json()
    assert butler["skills"] == ["high_risk", "infection_control"]
    assert [(s["weekday"], s["starts_at"]) for s in butler["roster"]] == [
        (0, "08:00:00"),
        (0, "13:00:00"),
        (2, "08:00:00"),
    ]
    again = await api.client.post(
        "/v1/butlers",
        headers=api.auth("admin"),
        json={"user_id": user_id, "display_name": "x", "max_caseload": 1},
    )
    assert_problem(again, 409)


async def test_only_butler_accounts_can_be_linked(api: Api) -> None:
    response = await api.client.post(
        "/v1/butlers",
        headers=api.auth("admin"),
        json={"user_id": str(api.staff.users["doctor"].id), "display_name": "x", "max_caseload": 1},
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "user_id"  # type: ignore[index]


@pytest.mark.parametrize(
    "roster",
    [
        [
            {"weekday": 1, "starts_at": "08:00", "ends_at": "12:00"},
            {"weekday": 1, "starts_at": "11:00", "ends_at": "14:00"},
        ],
        [{"weekday": 7, "starts_at": "08:00", "ends_at": "12:00"}],
        [{"weekday": 1, "starts_at": "12:00", "ends_at": "08:00"}],
    ],
)
async def test_bad_rosters_are_refused(api: Api, roster: list[dict[str, Any]]) -> None:
    butler_id = api.staff.butlers["butler1"].id
    response = await api.client.put(
        f"/v1/butlers/{butler_id}/roster",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"shifts": roster},
    )
    assert_problem(response, 422)


async def test_roster_and_profile_changes_need_if_match(api: Api) -> None:
    butler_id = api.staff.butlers["butler1"].id
    path = f"/v1/butlers/{butler_id}"
    read = await api.client.get(path, headers=api.auth("frontdesk"))
    etag = read.headers["etag"]
    roster = await api.client.put(
        f"{path}/roster", headers={**api.auth("admin"), "If-Match": etag}, json={"shifts": ROSTER}
    )
    assert roster.status_code == 200, roster.text
    stale = await api.client.patch(
        path, headers={**api.auth("admin"), "If-Match": etag}, json={"max_caseload": 3}
    )
    assert_problem(stale, 412)
    fresh = await api.client.patch(
        path,
        headers={**api.auth("admin"), "If-Match": roster.headers["etag"]},
        json={"max_caseload": 3, "is_active": False},
    )
    assert fresh.status_code == 200
    assert (fresh.json()["max_caseload"], fresh.json()["is_active"]) == (3, False)
    inactive = await api.client.get(
        "/v1/butlers", headers=api.auth("frontdesk"), params={"active": False}
    )
    assert [b["id"] for b in inactive.json()["items"]] == [str(butler_id)]


async def test_a_butler_sees_only_her_own_record(api: Api) -> None:
    own = api.staff.butlers["butler1"].id
    other = api.staff.butlers["butler2"].id
    assert (
        await api.client.get(f"/v1/butlers/{own}", headers=api.auth("butler1"))
    ).status_code == 200
    assert_problem(await api.client.get(f"/v1/butlers/{other}", headers=api.auth("butler1")), 404)
    listed = await api.client.get("/v1/butlers", headers=api.auth("butler1"))
    assert [b["id"] for b in listed.json()["items"]] == [str(own)]
    me = await api.client.get("/v1/butlers/me", headers=api.auth("butler1"))
    assert me.json()["id"] == str(own)
    assert_problem(await api.client.get("/v1/butlers/me", headers=api.auth("frontdesk")), 404)
    assert_problem(
        await api.client.patch(
            f"/v1/butlers/{own}",
            headers={**api.auth("butler1"), "If-Match": '"1"'},
            json={"max_caseload": 99},
        ),
        403,
    )


async def test_wall_clock_times_only(api: Api) -> None:
    butler_id = api.staff.butlers["butler1"].id
    for shift in (
        {"weekday": 1, "starts_at": "08:00", "ends_at": "12:00+08:00"},
        {"weekday": 1, "starts_at": "08:00+08:00", "ends_at": "12:00+08:00"},
    ):
        response = await api.client.put(
            f"/v1/butlers/{butler_id}/roster",
            headers={**api.auth("admin"), "If-Match": '"1"'},
            json={"shifts": [shift]},
        )
        assert_problem(response, 422)


async def test_a_deactivated_butler_loses_her_mothers(api: Api) -> None:
    from tests.helpers.mothers import enrol

    butler = api.staff.butlers["butler1"]
    mother = await enrol(api, primary_butler_id=str(butler.id))
    path = f"/v1/mothers/{mother['id']}"
    assert (await api.client.get(path, headers=api.auth("butler1"))).status_code == 200
    off = await api.client.patch(
        f"/v1/butlers/{butler.id}",
        headers={**api.auth("admin"), "If-Match": '"1"'},
        json={"is_active": False},
    )
    assert off.status_code == 200
    assert_problem(await api.client.get(path, headers=api.auth("butler1")), 404)
    listed = await api.client.get("/v1/mothers", headers=api.auth("butler1"))
    assert listed.json()["items"] == []


@pytest.mark.postgres_only
async def test_concurrent_writes_with_one_etag_let_exactly_one_win(api: Api) -> None:
    import asyncio
    from collections import Counter

    butler_id = api.staff.butlers["butler1"].id
    responses = await asyncio.gather(
        *(
            api.client.patch(
                f"/v1/butlers/{butler_id}",
                headers={**api.auth("admin"), "If-Match": '"1"'},
                json={"max_caseload": 20 + i},
            )
            for i in range(4)
        )
    )
    assert Counter(r.status_code for r in responses) == Counter({200: 1, 412: 3})
