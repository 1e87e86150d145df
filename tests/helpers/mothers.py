"""Mothers enrolled through the API."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.factories import mother_body


async def enrol(api: Api, who: str = "frontdesk", **overrides: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/mothers", headers=api.auth(who), json=mother_body(**overrides)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/mothers/{body['id']}"
    assert response.headers["etag"] == '"1"'
    return body


async def mother_with_butler(
    api: Api, serial: str = "002", butler: str = "butler1", **kw: Any
) -> dict[str, Any]:
    return await enrol(
        api, primary_butler_id=str(api.staff.butlers[butler].id), serial=serial, **kw
    )
