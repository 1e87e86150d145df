"""An unknown query parameter on a GET is a 400 naming it (app/core/strict_query.py)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.routing import APIRoute

from app.core.errors import install_error_handlers
from app.core.pagination import PageDep
from app.core.routing import TransactionalRoute
from app.core.strict_query import (
    LENIENT_PATHS,
    StrictQueryRoute,
    declared_query_names,
    refuse_unknown_query,
)
from app.main import api_routes
from tests.helpers.api import Api
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem

# Plain routers not built with make_router: the probes and the scrape, which load balancers and
# Prometheus may call with parameters of their own.
NOT_STRICT = {"/healthz", "/readyz", "/metrics"}


def _concrete(path: str) -> str:
    return re.sub(
        r"\{[^}]+\}", lambda m: "US" if m.group() == "{code}" else str(uuid.uuid4()), path
    )


def test_every_get_route_of_the_api_is_strict() -> None:
    loose = {
        r.path
        for r in api_routes()
        if "GET" in (r.methods or ()) and not isinstance(r, (TransactionalRoute, StrictQueryRoute))
    }
    assert loose <= NOT_STRICT


async def test_an_unknown_parameter_on_any_get_route_is_a_400_naming_it(app: object) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for route in api_routes():
            if "GET" not in (route.methods or ()) or route.path in NOT_STRICT | LENIENT_PATHS:
                continue
            response = await client.get(_concrete(route.path), params={"colour": "red"})
            body = assert_problem(response, 400)
            assert body["type"] == "/problems/unknown-query-parameter", route.path
            assert body["errors"] == [
                {"field": "colour", "location": "query", "detail": "unknown parameter"}
            ], route.path
            assert body["allowed"] == sorted(declared_query_names(route)), route.path


async def test_declared_parameters_still_work(api: Api) -> None:
    await enrol(api)
    headers = api.auth("frontdesk")
    first = await api.client.get("/v1/mothers", headers=headers, params={"limit": 1})
    assert first.status_code == 200
    grades: list[tuple[str, str | int | float | bool | None]] = [
        ("risk_grade", "green"),
        ("risk_grade", "red"),
        ("limit", "5"),
    ]
    assert (await api.client.get("/v1/mothers", headers=headers, params=grades)).status_code == 200
    worklist = await api.client.get("/v1/worklist", headers=api.auth("doctor"), params={"wait": 0})
    assert worklist.status_code in (200, 304), worklist.text
    events = await api.client.get("/v1/me/events", headers=api.auth("butler1"), params={"wait": 0})
    assert events.status_code in (200, 304), events.text
    two = await api.client.get(
        "/v1/mothers", headers=headers, params=[("q", "li"), ("nmae", "x"), ("zz", "1")]
    )
    body = assert_problem(two, 400)
    errors: Any = body["errors"]
    assert [e["field"] for e in errors] == ["nmae", "zz"]


def _route(router: APIRouter, method: str) -> APIRoute:
    [route] = [r for r in router.routes if isinstance(r, APIRoute) and method in (r.methods or ())]
    return route


async def _colour(colour: Annotated[str | None, Query(alias="color")] = None) -> str | None:
    return colour


def _app() -> tuple[FastAPI, APIRouter]:
    app = FastAPI()
    install_error_handlers(app)
    plain = APIRouter(route_class=StrictQueryRoute)

    @plain.get("/things")
    async def things(
        page: PageDep, colour: Annotated[str | None, Depends(_colour)]
    ) -> dict[str, str]:
        return {"colour": colour or "", "limit": str(page.limit)}

    @plain.post("/things")
    async def make() -> dict[str, str]:
        return {}

    app.include_router(plain)
    return app, plain


async def test_dependencies_params_and_aliases_are_declared_and_posts_are_not_checked() -> None:
    app, plain = _app()
    assert declared_query_names(_route(plain, "GET")) == {"color", "limit", "cursor"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ok = await client.get("/things", params={"color": "red", "limit": 3})
        assert ok.json() == {"colour": "red", "limit": "3"}
        refused = await client.get("/things", params={"colour": "red"})  # the name, not the alias
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert "colour" in refused.json()["detail"]
        assert (await client.post("/things", params={"anything": "1"})).status_code == 200


def test_a_route_without_get_is_left_alone() -> None:
    _, plain = _app()
    post = _route(plain, "POST")

    async def handler(request: Request) -> Response:
        return Response()

    assert refuse_unknown_query(post, handler) is handler


@pytest.mark.parametrize("path", ["/v1/mothers"])
async def test_the_check_comes_before_authentication(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path, params={"nmae": "王"}), 400)


async def test_the_butlers_polled_contracts_take_a_cache_buster(api: Api) -> None:
    """SPEC section 4's polled routes keep taking what HTTP libraries add (``_=`` cache-busters):
    a butler's phone must not break on the 400 a search gets."""
    headers = api.auth("butler1")
    for path in sorted(LENIENT_PATHS - {"/v1/me/events/stream"}):
        response = await api.client.get(path, params={"_": "1701600000000"}, headers=headers)
        assert response.status_code == 200, (path, response.text)
    assert (await api.client.get("/healthz", params={"probe": "1"})).status_code == 200
