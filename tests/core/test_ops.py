"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import api_routes
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_not_ready_when_the_schema_is_behind(
    api: Api, app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'old'"))
        await session.commit()
    try:
        assert_problem(await api.client.get("/readyz"), 503)
    finally:
        async with session_factory() as session:
            await session.execute(
                text("UPDATE alembic_version SET version_num = :v"),
                {"v": app.state.schema_head},
            )
            await session.commit()


async def test_metrics_are_prometheus_text_with_route_templates(api: Api) -> None:
    await api.client.get(
        "/v1/mothers/01a221b4-0000-7000-8000-000000000000", headers=api.auth("frontdesk")
    )
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'route="/v1/mothers/{mother_id}"' in response.text
    assert "01a221b4-0000" not in response.text


PUBLIC_V1 = {
    "/v1/auth/login",
    "/v1/boards",
    "/v1/stations/{code}/board",
    "/v1/stations/{code}/board.html",
    "/v1/her/visit",
}


async def test_openapi_documents_every_route_with_problem_responses(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    assert "Problem" in document["components"]["schemas"]
    for route in api_routes():
        for method in route.methods - {"HEAD"}:
            operation = document["paths"][route.path][method.lower()]
            assert operation.get("summary"), f"{method} {route.path} has no summary"
            if route.path.startswith("/v1/"):
                assert "401" in operation["responses"] or route.path in PUBLIC_V1
                assert "422" in operation["responses"], f"{method} {route.path}"
    assert (await api.client.get("/docs")).status_code == 200
