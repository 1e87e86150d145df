"""Butler accounts made through the API, as an admin makes them."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api

ALL_WEEK = [{"weekday": d, "starts_at": "07:00", "ends_at": "19:00"} for d in range(7)]


async def new_butler(
    api: Api,
    username: str,
    *,
    skills: list[str],
    capacity: int = 10,
    roster: Any = None,
    languages: list[str] | None = None,
) -> str:
    user = await api.client.post(
        "/v1/users",
        headers=api.auth("admin"),
        json={
            "username": username,
            "display_name": username,
            "role": "butler",
            "password": "long-enough-password",
        },
    )
    butler = await api.client.post(
        "/v1/butlers",
        headers=api.auth("admin"),
        json={
            "user_id": user.json()["id"],
            "display_name": username,
            "skills": skills,
            "languages": languages or ["zh-CN"],
            "max_caseload": capacity,
            "roster": ALL_WEEK if roster is None else roster,
        },
    )
    assert butler.status_code == 201, butler.text
    butler_id: str = butler.json()["id"]
    return butler_id
