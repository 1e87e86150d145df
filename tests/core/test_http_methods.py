"""OPTIONS answers with Allow, HEAD works wherever GET does, 405 lists every method of the
path, and CORS is off until an allow-list turns it on."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.main import create_app
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem

NOBODY = "0191f000-0000-7000-8000-000000000000"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/mothers", "GET, HEAD, POST, OPTIONS"),
        (f"/v1/mothers/{NOBODY}", "GET, HEAD, PATCH, OPTIONS"),
        (f"/v1/reports/{NOBODY}/pick-up", "POST, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
        ("/console/", "GET, HEAD, OPTIONS"),
    ],
)
async def test_options_lists_the_methods_of_the_path_without_a_token(
    api: Api, path: str, allow: str
) -> None:
    response = await api.client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allow
    assert response.content == b""
    assert response.headers["x-request-id"]


async def test_options_on_a_path_nobody_serves_is_a_404(api: Api) -> None:
    assert_problem(await api.client.options("/v1/no-such-thing"), 404)


async def test_a_405_lists_every_method_of_the_path(api: Api) -> None:
    # GET and POST /v1/mothers are two routes: the first alone would say "GET".
    response = await api.client.delete("/v1/mothers", headers=api.auth("frontdesk"))
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    head = await api.client.head(f"/v1/reports/{NOBODY}/pick-up", headers=api.auth("butler1"))
    assert head.status_code == 405
    assert head.headers["allow"] == "POST, OPTIONS"


async def test_head_answers_as_get_without_the_body(api: Api) -> None:
    mother = await mother_with_butler(api)
    path = f"/v1/mothers/{mother['id']}"
    get = await api.client.get(path, headers=api.auth("butler1"))
    head = await api.client.head(path, headers=api.auth("butler1"))
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    for name in ("etag", "content-type", "content-length", "cache-control"):
        assert head.headers.get(name) == get.headers.get(name), name
    # The same authentication and role as the GET: no token 401, not her butler 404.
    anonymous = await api.client.head(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.content == b""
    not_hers = await api.client.head(path, headers=api.auth("butler2"))
    assert (
        not_hers.status_code
        == (await api.client.get(path, headers=api.auth("butler2"))).status_code
    )
    assert not_hers.status_code in (403, 404)
    assert not_hers.content == b""
    # Conditional too: a matching If-None-Match is a 304.
    cached = await api.client.head(
        path, headers={**api.auth("butler1"), "If-None-Match": f"W/{get.headers['etag']}"}
    )
    assert cached.status_code == 304


async def test_head_on_the_event_stream_sends_the_headers_and_ends(api: Api) -> None:
    response = await asyncio.wait_for(
        api.client.head("/v1/me/events/stream", headers=api.auth("butler1")), timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""


async def test_head_on_a_probe_and_a_static_file(api: Api) -> None:
    healthz = await api.client.head("/healthz")
    assert healthz.status_code == 200
    assert healthz.content == b""
    console = await api.client.head("/console/")
    assert console.status_code == (await api.client.get("/console/")).status_code


async def test_cors_is_off_by_default(api: Api) -> None:
    response = await api.client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await api.client.options(
        "/v1/mothers",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
async def cors_client(settings: Settings, clock: FrozenClock) -> httpx.AsyncClient:
    app = create_app(
        settings.model_copy(
            update={"cors_allow_origins": "https://console.hospital.example, http://localhost:5173"}
        ),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await app.state.engine.dispose()


async def test_an_allow_listed_origin_gets_cors_and_its_preflight_needs_no_token(
    cors_client: httpx.AsyncClient,
) -> None:
    origin = "https://console.hospital.example"
    preflight = await cors_client.options(
        f"/v1/mothers/{uuid.uuid4()}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, if-match, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert "if-match" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    simple = await cors_client.get("/healthz", headers={"Origin": origin})
    assert simple.headers["access-control-allow-origin"] == origin
    assert "etag" in simple.headers["access-control-expose-headers"].lower()
    other = await cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    refused = await cors_client.options(
        "/v1/mothers",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
