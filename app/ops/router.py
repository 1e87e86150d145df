from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import problem_response, problem_responses

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


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics"}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
