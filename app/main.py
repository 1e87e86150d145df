"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from app import wiring
from app.assignments.domain import parse_weights
from app.assignments.router import router as assignments_router
from app.audit.group_commit import AuditGroupCommit
from app.audit.router import router as audit_router
from app.audit.service import replay_audit_event
from app.auth.cache import TokenCache
from app.auth.dependencies import pre_authenticate
from app.auth.router import router as auth_router
from app.butlers.router import router as butlers_router
from app.careplan.router import router as careplan_router
from app.charts.router import router as charts_router
from app.clinical.router import router as clinical_router
from app.clinical.service import check_rules
from app.console import router as console
from app.core.clock import Clock, SystemClock
from app.core.database import create_engine
from app.core.errors import Problem, install_error_handlers
from app.core.headers import SecurityHeadersMiddleware
from app.core.http_methods import HttpMethodsMiddleware, cors_options, cors_origins
from app.core.local_time import use_clinic_zone
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware, RequestGuardMiddleware
from app.core.migrations import schema_head
from app.core.pg_listen import listen
from app.core.secretbox import SecretBox
from app.core.settings import Environment, Settings, get_settings
from app.feed.fast_path import IdlePollFastPath
from app.feed.notifier import Notifier, sweep
from app.feed.router import router as feed_router
from app.healthplan.domain import plan_tables
from app.healthplan.router import router as healthplan_router
from app.measurements.domain import lab_codes, limits
from app.measurements.router import router as measurements_router
from app.mothers.router import router as mothers_router
from app.notifications import dispatcher
from app.notifications.router import router as notifications_router
from app.ops.router import router as ops_router
from app.queues.router import boards as boards_router
from app.queues.router import router as queues_router
from app.reports.router import router as reports_router
from app.reviews.router import router as reviews_router
from app.visits.router import router as visits_router
from app.worklist.router import router as worklist_router

logger = logging.getLogger("app")

ROUTERS: tuple[APIRouter, ...] = (
    ops_router,
    auth_router,
    mothers_router,
    butlers_router,
    assignments_router,
    careplan_router,
    visits_router,
    queues_router,
    boards_router,
    reports_router,
    measurements_router,
    clinical_router,
    healthplan_router,
    reviews_router,
    charts_router,
    notifications_router,
    feed_router,
    worklist_router,
    audit_router,
)


def api_routes() -> Iterator[APIRoute]:
    """Every API route with its full path (tests build route tables from this)."""
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route


DESCRIPTION = """
Pregnancy Butler runs the VIP prenatal clinic: every expectant mother has a personal butler who
walks her through her visit, collects her reports and brings her the results.

* Errors are `application/problem+json` (RFC 9457).
* Creating POSTs honour `Idempotency-Key`; writes to records need `If-Match` with the read `ETag`.
* Log in at `POST /v1/auth/login` and send `Authorization: Bearer <token>`;
  integration clients send `X-API-Key`.
"""


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    parse_weights(settings.caseload_weights)  # a grade without a caseload weight stops start-up
    # The health-management tables (a hospital's own files among them) are checked now: one
    # that does not hold together stops start-up instead of failing her first reading.
    limits(settings.measurement_limits_file)
    lab_codes(settings.lab_codes_file)
    check_rules(settings)
    plan_tables(settings.health_plan_nutrition_file, settings.health_plan_fetal_monitoring_file)
    configure_logging(settings.log_level, json_logs=settings.log_json)
    secret_box = SecretBox.from_setting(settings.secrets_keys)
    if settings.environment is Environment.PRODUCTION and not secret_box.seals:
        # Without a key the lab's signing secrets would lie in the database as given.
        raise RuntimeError(
            "SECRETS_KEYS is required in production (`python -m app.cli new-secrets-key`)"
        )
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("starting", extra={"environment": settings.environment.value})
        in_app = settings.dispatcher_in_app
        stop = asyncio.Event()
        worker = None
        if in_app if in_app is not None else settings.is_sqlite:
            dispatcher.sms_from(settings)  # a misconfigured SMS gateway stops start-up
            worker = asyncio.create_task(
                dispatcher.run(
                    app.state.session_factory,
                    settings,
                    now=app.state.clock.now,
                    stop=stop,
                    # Its short writes queue on the process's write lock (SQLite), as requests do.
                    write_lock=app.state.write_lock,
                )
            )
        listener = None
        if not settings.is_sqlite:  # other processes' changes wake our long-polls too
            listener = asyncio.create_task(
                listen(
                    settings.database_url,
                    wiring.notify_channels(app.state.notifier, app.state.token_cache),
                    on_connect=wiring.on_listen_connect(app.state.notifier, app.state.token_cache),
                    stop=stop,
                )
            )
        # One read per process every 15 s wakes an event stream that missed its notification.
        sweeper = asyncio.create_task(sweep(app.state.session_factory, app.state.notifier, stop))
        yield
        stop.set()
        for task in (worker, listener, sweeper):
            if task is not None:
                await task
        await app.state.audit_writer.close()
        await engine.dispose()

    app = FastAPI(
        title="Pregnancy Butler",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by app/console from the package's bundles: no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    use_clinic_zone(settings.tz)  # the *_local times of boards and visits
    app.state.clock = clock or SystemClock()
    app.state.engine = engine
    app.state.notifier = Notifier(answers=settings.feed_answer_cache)
    app.state.token_cache = TokenCache(settings.token_cache_seconds)
    app.state.session_factory = wiring.session_factory(
        engine, notifier=app.state.notifier, cache=app.state.token_cache
    )
    # SQLite has one writer at a time: serialise writing requests in-process instead of failing.
    app.state.write_lock = asyncio.Lock() if settings.is_sqlite else None
    app.state.schema_head = schema_head()
    app.state.audit_writer = AuditGroupCommit(engine, write_lock=app.state.write_lock)
    app.state.secret_box = secret_box
    app.state.replay_audit = replay_audit_event  # core/routing records replays through this
    app.state.pre_authenticate = pre_authenticate  # and finds the caller before the write lock

    install_error_handlers(app)
    app.add_middleware(IdlePollFastPath)
    app.add_middleware(HttpMethodsMiddleware)  # OPTIONS, HEAD, every method in Allow, 304s
    app.add_middleware(
        RequestGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        body_timeout=settings.body_read_timeout_seconds,
    )
    app.add_middleware(RequestContextMiddleware)
    if origins := cors_origins(settings.cors_allow_origins):  # off unless origins are named
        app.add_middleware(CORSMiddleware, **cors_options(origins))  # type: ignore[arg-type]
    # Outermost: every answer, whoever wrote it (413, 408, 304 fast path), gets nosniff,
    # no-store under /v1, and frame protection on HTML.
    app.add_middleware(SecurityHeadersMiddleware)

    for router in ROUTERS:
        app.include_router(router)
    app.include_router(console.router)
    console.mount(app)

    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Make sure the Problem schema is in components even if no route named it as a model."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def __getattr__(name: str) -> FastAPI:
    """``uvicorn app.main:app`` builds the app on first use, not at import time."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
