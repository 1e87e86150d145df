"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.settings import Settings
from app.main import api_routes
from app.ops.router import is_scraper, scrape_networks
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY
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
    response = await api.client.get("/metrics", headers=api.auth("admin"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'route="/v1/mothers/{mother_id}"' in response.text
    assert "01a221b4-0000" not in response.text


async def test_metrics_are_for_admins_only_without_a_scrape_address(api: Api) -> None:
    assert_problem(await api.client.get("/metrics"), 401)
    assert_problem(
        await api.client.get("/metrics", headers={"Authorization": "Bearer nonsense"}), 401
    )
    for who in ("frontdesk", "doctor", "butler1"):
        assert_problem(await api.client.get("/metrics", headers=api.auth(who)), 403)
    assert_problem(await api.client.get("/metrics", headers={"X-API-Key": LAB_KEY}), 403)
    assert (await api.client.get("/metrics", headers=api.auth("admin"))).status_code == 200


async def test_a_refused_metrics_read_is_audited(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """/metrics is not a transactional route: its refusal is written by the route itself."""
    assert_problem(await api.client.get("/metrics", headers=api.auth("doctor")), 403)
    async with session_factory() as session:
        rows = list(await session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")))
    [row] = rows
    assert (row.action, row.actor_name, row.role) == ("GET /metrics", "doctor", "doctor")
    assert row.detail == {"reason": "role not allowed"}
    assert row.request_id  # the refusal is found from the request's log line
    assert (await api.client.get("/metrics", headers=api.auth("admin"))).status_code == 200
    async with session_factory() as session:  # an admin's read writes no refusal
        denied = await session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied"))
        assert len(list(denied)) == 1


def test_a_scrape_address_typo_stops_start_up() -> None:
    for typo in ("10.0.0.300", "10.0.0.0/33", "10.0.0.1,nope", "localhost"):
        with pytest.raises(ValidationError, match="metrics_scrape_addresses"):
            Settings(metrics_scrape_addresses=typo)
    # What the settings accept, the route reads the same way (host bits allowed).
    fine = Settings(metrics_scrape_addresses=" 10.0.0.7/24, ::1 ,").metrics_scrape_addresses
    assert [str(n) for n in scrape_networks(fine)] == ["10.0.0.0/24", "::1/128"]


def _from(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_the_configured_scraper_reads_metrics_without_a_token(api: Api, app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"metrics_scrape_addresses": "10.0.0.0/24, 192.168.7.9"}
    )
    for host in ("10.0.0.7", "192.168.7.9", "::ffff:10.0.0.8"):
        async with _from(app, host) as scraper:
            response = await scraper.get("/metrics")
        assert response.status_code == 200, host
        assert response.headers["content-type"].startswith("text/plain")
    async with _from(app, "10.0.1.7") as outsider:
        assert_problem(await outsider.get("/metrics"), 401)
        # The header is the caller's word, not its address: never read.
        spoofed = await outsider.get("/metrics", headers={"X-Forwarded-For": "10.0.0.7"})
        assert_problem(spoofed, 401)
        assert (await outsider.get("/metrics", headers=api.auth("admin"))).status_code == 200


def test_scrape_addresses_are_read_strictly() -> None:
    assert scrape_networks("") == ()
    assert [str(n) for n in scrape_networks("127.0.0.1, 10.1.0.0/16 ,::1")] == [
        "127.0.0.1/32",
        "10.1.0.0/16",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="nope"):
        scrape_networks("10.0.0.1,nope")
    assert is_scraper("10.1.2.3", "10.1.0.0/16")
    assert not is_scraper("10.2.2.3", "10.1.0.0/16")
    assert not is_scraper("testclient", "10.1.0.0/16")  # not an address at all
    assert not is_scraper(None, "10.1.0.0/16")
    assert not is_scraper("127.0.0.1", "")


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
