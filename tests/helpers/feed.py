"""The butler's side: tasks for her mothers and her own list."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers.api import Api

DUE = "2026-11-29T02:00:00Z"


async def task(api: Api, mother_id: str, title: str = "Bring the admission form") -> Any:
    response = await api.client.post(
        f"/v1/mothers/{mother_id}/tasks",
        headers=api.auth("frontdesk"),
        json={"title": title, "due_at": DUE},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def assignments(api: Api, who: str = "butler1", **headers: str) -> httpx.Response:
    return await api.client.get("/v1/me/assignments", headers={**api.auth(who), **headers})
