"""Test fixtures: every database test runs on SQLite and, when reachable, on PostgreSQL.

PostgreSQL is used when TEST_DATABASE_URL is set (a server URL; a fresh database is created on
it for the run) or when a server answers on 127.0.0.1:5432. With REQUIRE_POSTGRES=1 an
unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.clock import FrozenClock
from app.core.migrations import upgrade
from app.core.settings import Environment, Settings
from app.main import create_app
from tests.factories import Staff, make_staff

DEFAULT_PG_SERVER = "postgresql+asyncpg://root@127.0.0.1:5432/test"
# 10:00 in the clinic (Asia/Shanghai) on a Saturday.
START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def _pg_server_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return DEFAULT_PG_SERVER
    except OSError:
        return None


PG_SERVER = _pg_server_url()
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (real concurrency) are not collected for SQLite at all."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        if item.get_closest_marker("postgres_only") and backend == "sqlite":
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the reliability suites counted, so that a run says how much it tried."""
    from tests.counts import COUNTS

    if COUNTS:
        terminalreporter.section("counts")
        for name, value in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {value:,}")


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and PG_SERVER is None:
        raise pytest.UsageError(
            "REQUIRE_POSTGRES=1 but no PostgreSQL answers (set TEST_DATABASE_URL or start it)"
        )


async def _admin_sql(server_url: str, *statements: str) -> None:
    engine = create_async_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_pg_database(prefix: str = "pb_test") -> str:
    assert PG_SERVER is not None
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(PG_SERVER, f'CREATE DATABASE "{name}"'))
    return make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    assert PG_SERVER is not None
    name = make_url(url).database
    asyncio.run(_admin_sql(PG_SERVER, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets its own copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_DATABASE_URL or start it)")
    url = create_pg_database()
    upgrade(url)
    asyncio.run(_keep_reference_data(url))
    yield url
    drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """A clean, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    asyncio.run(_truncate_all(url))
    yield url


# Tables the migrations fill with reference data: restored after each test's TRUNCATE.
REFERENCE_TABLES = ("stations", "exam_types")


async def _keep_reference_data(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA pristine"))
            for table in REFERENCE_TABLES:
                await conn.execute(text(f'CREATE TABLE pristine."{table}" AS TABLE "{table}"'))
    finally:
        await engine.dispose()


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            tables = (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                # TRUNCATE does not fire the append-only row triggers.
                await conn.execute(text(f"TRUNCATE {names} CASCADE"))
            # Put back the reference data the migrations seed (stations, exam catalogue).
            for table in REFERENCE_TABLES:
                restore = f'INSERT INTO "{table}" SELECT * FROM pristine."{table}"'  # noqa: S608
                await conn.execute(text(restore))
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        environment=Environment.TEST,
        database_pool_size=5,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[object]:
    application = create_app(settings, clock=clock)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
def session_factory(app: object) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = app.state.session_factory  # type: ignore[attr-defined]
    return factory


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class Api:
    """An API client plus the demo staff, one account per role."""

    client: httpx.AsyncClient
    staff: Staff

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff.tokens[who]}"}


@pytest.fixture
async def api(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> Api:
    staff = await make_staff(session_factory, now=clock.now())
    return Api(client=client, staff=staff)
