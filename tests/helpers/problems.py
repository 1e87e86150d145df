"""Every error of the REST API is RFC 9457 problem+json: the one assertion tests make of it."""

from __future__ import annotations

import httpx

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body
