from __future__ import annotations

import functools
import ipaddress

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.group_commit import AuditGroupCommit
from app.audit.models import AuditEvent
from app.auth.dependencies import pre_authenticate, require_roles
from app.auth.models import Role
from app.core.errors import Forbidden, NotAuthenticated, problem_response, problem_responses
from app.core.principal import Principal

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_version: str | None


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the database answers and its schema is at this build's migration head",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> Response | Readiness:
    engine: AsyncEngine = request.app.state.engine
    expected: str | None = request.app.state.schema_head
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # any failure to reach or read the database means "not ready"
        return problem_response(
            request,
            status=503,
            slug="not-ready",
            title="Not ready",
            detail="The database does not answer or has no schema.",
        )
    if expected is not None and version != expected:
        return problem_response(
            request,
            status=503,
            slug="not-ready",
            title="Not ready",
            detail="The database schema is not at this build's migration head; run migrations.",
        )
    return Readiness(status="ready", database="ok", schema_version=version)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def scrape_networks(setting: str) -> tuple[Network, ...]:
    """``metrics_scrape_addresses`` read: comma-separated addresses or CIDR networks. A typo
    raises ValueError (create_app checks it at start-up) instead of opening or closing the
    door by surprise."""
    networks = []
    for part in (p.strip() for p in setting.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"metrics_scrape_addresses: {part!r} is no address") from exc
    return tuple(networks)


def is_scraper(host: str | None, setting: str) -> bool:
    """The ASGI client address (the TCP peer, or what uvicorn's --proxy-headers put there for
    a proxy it trusts: FORWARDED_ALLOW_IPS) is one of the configured scrape addresses.
    X-Forwarded-For is never read here."""
    if not host or not setting:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in scrape_networks(setting))


_admin_only = require_roles(Role.ADMIN)


async def _scraper_or_admin(request: Request) -> None:
    """The counters say how busy the clinic is and which routes fail: they are for the
    scraper at its configured address and for admins, nobody else (401/403 problem)."""
    settings = request.app.state.settings
    client = request.client.host if request.client else None
    if is_scraper(client, settings.metrics_scrape_addresses):
        return
    await pre_authenticate(request)  # its own short session: this route has none
    known = getattr(request.state, "pre_authenticated", None)
    if isinstance(known, NotAuthenticated):
        raise known
    if not isinstance(known, Principal):
        raise NotAuthenticated(
            "Send an admin's 'Authorization: Bearer <token>', or scrape from an address in "
            "METRICS_SCRAPE_ADDRESSES."
        )
    try:
        await _admin_only(request, known, request.app.state.clock)
    except Forbidden:
        await _write_refusals(request)
        raise


_AUDIT_COLUMNS = [c.name for c in AuditEvent.__table__.columns]


async def _write_refusals(request: Request) -> None:
    """The refusal the role check recorded (``audit_on_failure``), written now: this route is
    not transactional, so nothing else would write it. Through the audit writer, which takes
    the write lock on SQLite like any write; the 403 leaves once the row is committed."""
    pending: list[AuditEvent] = getattr(request.state, "audit_on_failure", [])
    request.state.audit_on_failure = []
    writer: AuditGroupCommit = request.app.state.audit_writer
    await writer.write([{c: getattr(event, c) for c in _AUDIT_COLUMNS} for event in pending])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format): admins or the scrape addresses",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics"},
        **problem_responses(401, 403),
    },
)
async def metrics(request: Request) -> Response:
    await _scraper_or_admin(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
