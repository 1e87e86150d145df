"""Every error of the REST API is RFC 9457 problem+json."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from app.core.logging import JsonFormatter
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem


async def test_unknown_route_is_a_problem(api: Api) -> None:
    assert_problem(await api.client.get("/v1/nothing-here"), 404)


async def test_wrong_method_is_a_problem(api: Api) -> None:
    body = assert_problem(await api.client.delete("/healthz"), 405)
    assert body["type"] == "/problems/method-not-allowed"


async def test_missing_credentials_are_a_problem(api: Api) -> None:
    response = await api.client.get("/v1/mothers")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_validation_error_lists_each_invalid_field(api: Api) -> None:
    response = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json={"mrn": "x", "name": "", "phone": "123", "pregnancy": {"gravida": 0}},
    )
    body = assert_problem(response, 422)
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert {"mrn", "name", "phone", "national_id", "pregnancy.gravida"} <= fields
    for error in body["errors"]:  # type: ignore[attr-defined]
        assert error["location"] == "body"
        assert error["pointer"].startswith("#/")


async def test_malformed_json_is_a_problem(api: Api) -> None:
    response = await api.client.post(
        "/v1/mothers",
        headers={**api.auth("frontdesk"), "content-type": "application/json"},
        content=b'{"mrn": ',
    )
    problem = assert_problem(response, 400)
    assert problem["type"] == "/problems/malformed-json"
    assert problem["json_error"] == {"line": 1, "column": 9, "offset": 8}


async def test_a_too_large_body_is_refused_with_413(api: Api) -> None:
    response = await api.client.post(
        "/v1/mothers",
        headers={**api.auth("frontdesk"), "content-type": "application/json"},
        content=b'{"name": "' + b"x" * 70_000 + b'"}',
    )
    assert_problem(response, 413)


async def test_a_streamed_too_large_body_is_refused_with_413(api: Api) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 10_000

    response = await api.client.post(
        "/v1/mothers",
        headers={**api.auth("frontdesk"), "content-type": "application/json"},
        content=chunks(),
    )
    assert_problem(response, 413)


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/boom", boom)
    return app


async def test_a_500_hides_internals_and_logs_the_request_id(failing_app: FastAPI) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/boom")
    finally:
        logging.getLogger().removeHandler(handler)
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [r for r in records if r.get("event") == "unhandled_error"]
    assert errors
    assert errors[0]["request_id"] == body["request_id"]
    assert "RuntimeError" in errors[0]["exc"]


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/v1/mothers", {"name": "\x00abc"}, None),
        ("GET", "/v1/audit-events", {"resource_id": "\x00"}, None),
        ("POST", "/v1/auth/login", None, {"username": "a\u0000b", "password": "x"}),
        (
            "POST",
            "/v1/users",
            None,
            {
                "username": "nul.user",
                "display_name": "a\u0000b",
                "role": "doctor",
                "password": "long-enough-password",
            },
        ),
    ],
)
async def test_nul_characters_are_refused_not_stored(
    api: Api, method: str, path: str, params: dict[str, str] | None, body: object
) -> None:
    response = await api.client.request(
        method, path, headers=api.auth("admin"), params=params, json=body
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "params",
    [{"occurred_from": "9999-12-31T23:59:59-23:59"}, {"occurred_to": "0001-01-01T00:00:00+01:00"}],
)
async def test_absurd_instants_are_422(api: Api, params: dict[str, str]) -> None:
    assert_problem(
        await api.client.get("/v1/audit-events", headers=api.auth("admin"), params=params), 422
    )
