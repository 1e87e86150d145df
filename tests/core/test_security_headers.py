"""Security headers on every answer, derived from the app's routes: nosniff everywhere,
no-store on every /v1 answer (they carry her data), frame protection on HTML."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from app.console.router import router as console_router
from app.core.headers import SecurityHeadersMiddleware, cache_control_for, secure_headers
from app.main import api_routes
from tests.helpers.api import Api


def _problems(response: httpx.Response, path: str) -> list[str]:
    wrong = []
    where = f"{response.request.method} {path} -> {response.status_code}"
    if response.headers.get("x-content-type-options") != "nosniff":
        wrong.append(f"{where}: no nosniff")
    cache = response.headers.get("cache-control", "")
    if path.startswith("/v1") and "no-store" not in cache:
        wrong.append(f"{where}: cache-control {cache!r}")
    if response.headers.get("content-type", "").startswith("text/html"):
        if response.headers.get("x-frame-options") != "DENY":
            wrong.append(f"{where}: no X-Frame-Options")
        if "frame-ancestors 'none'" not in response.headers.get("content-security-policy", ""):
            wrong.append(f"{where}: no frame-ancestors")
    return wrong


def test_security_headers_are_the_outermost_middleware(app: FastAPI) -> None:
    """Outermost, so the 413/408 of the request guard and the feed's 304 fast path get them."""
    outermost: object = app.user_middleware[0].cls
    assert outermost is SecurityHeadersMiddleware


async def test_every_route_answers_with_the_security_headers(api: Api, app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(update={"feed_stream_seconds": 1})
    wrong: list[str] = []
    checked = 0
    console = [r for r in console_router.routes if isinstance(r, APIRoute)]
    for route in [*api_routes(), *console]:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
        for method in sorted(route.methods or ()):
            for headers in ({}, api.auth("admin"), api.auth("butler1")):
                response = await api.client.request(method, url, headers=headers)
                wrong += _problems(response, route.path)
                checked += 1
    assert checked > 300  # every route, not a handful
    assert wrong == []


async def test_answers_that_revalidate_with_etags_are_no_longer_stored(api: Api) -> None:
    """The routes' own "private, no-cache" (ETag long-polls) become "private, no-store"; the
    console still sends If-None-Match from the ETag it keeps itself, and gets its 304."""
    for path, who in (("/v1/worklist", "doctor"), ("/v1/me/assignments", "butler1")):
        first = await api.client.get(path, headers=api.auth(who))
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "private, no-store"
        again = await api.client.get(
            path, headers={**api.auth(who), "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304, path
        assert "no-store" in again.headers["cache-control"]
        assert again.headers["x-content-type-options"] == "nosniff"


async def test_the_consoles_files_stay_cacheable_and_its_pages_unframeable(
    api: Api, app: FastAPI
) -> None:
    assert any(isinstance(r, Mount) and r.path == "/console" for r in app.routes)
    page = await api.client.get("/console/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    style = await api.client.get("/console/css/console.css")
    assert (style.status_code, style.headers["cache-control"]) == (200, "max-age=3600")
    assert style.headers["x-content-type-options"] == "nosniff"
    docs = await api.client.get("/docs")
    assert _problems(docs, "/docs") == []


async def test_answers_of_the_request_guard_get_them_too(api: Api) -> None:
    """A 413 written by middleware, before any route, still says nosniff and no-store."""
    response = await api.client.post(
        "/v1/auth/login", content=b"x" * (65 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert _problems(response, "/v1/auth/login") == []


def test_the_rules() -> None:
    assert cache_control_for("/v1/mothers", None) == b"no-store"
    assert cache_control_for("/v1/x", b"private, no-cache") == b"private, no-store"
    assert cache_control_for("/v1/x", b"no-cache") == b"no-store"
    assert cache_control_for("/v1/x", b"max-age=60") == b"no-store"
    assert cache_control_for("/v1/x", b"public, max-age=60") is None
    assert cache_control_for("/v1/x", b"private, no-store") is None
    assert cache_control_for("/console/app.js", b"max-age=3600") is None
    assert cache_control_for("/healthz", None) == b"no-store"
    assert cache_control_for("/v1x", b"max-age=5") is None  # not under /v1/
    html = secure_headers(
        "/x", [(b"content-type", b"text/html"), (b"content-security-policy", b"default-src 'self'")]
    )
    assert (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'") in html
    assert (b"x-frame-options", b"DENY") in html
    plain = dict(secure_headers("/x", [(b"content-type", b"text/html")]))
    assert plain[b"content-security-policy"] == b"frame-ancestors 'none'"
    json_answer = dict(secure_headers("/v1/x", [(b"content-type", b"application/json")]))
    assert b"x-frame-options" not in json_answer
    assert json_answer[b"x-content-type-options"] == b"nosniff"
