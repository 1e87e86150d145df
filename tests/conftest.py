"""Test fixtures: every database test runs on SQLite and, when reachable, on PostgreSQL.

PostgreSQL is used when TEST_DATABASE_URL is set (a server URL; a fresh database is created on
it for the run) or when a server answers on 127.0.0.1:5432. With REQUIRE_POSTGRES=1 an
unreachable server fails the run instead of skipping, and so does a PostgreSQL test that skips.

Safe under pytest-xdist (`make test` runs two workers): each worker is a session of its own with
its own PostgreSQL database and SQLite template, servers started by tests take free ports, the
real-concurrency tests (postgres_only) run one after another on one worker, and the counts of
every worker are added up in the controller.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.clock import FrozenClock
from app.core.migrations import upgrade
from app.core.settings import Environment, Settings
from app.main import create_app
from tests.helpers.api import Api
from tests.helpers.databases import PG_SERVER, create_pg_database, drop_pg_database
from tests.helpers.factories import make_staff
from tests.helpers.lab import Lab
from tests.helpers.queues import with_between_draws

# 10:00 in the clinic (Asia/Shanghai) on a Saturday.
START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (real concurrency) are not collected for SQLite at all. Under
    pytest-xdist (--dist loadgroup) they form one group: they run one after another on one
    worker, never two real-concurrency tests at once (each opens many connections, starts
    servers, and some count on the timing of their own load)."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        if item.get_closest_marker("postgres_only") and backend == "sqlite":
            dropped.append(item)
        else:
            if item.get_closest_marker("postgres_only"):
                item.add_marker(pytest.mark.xdist_group("postgres_only"))
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _postgres_test(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec else ()
    return item.get_closest_marker("postgres_only") is not None or "postgresql" in params


# A test that may not skip when its flag is set: (flag, which tests, what they need).
REQUIRED_NOT_SKIPPED = [(REQUIRE_POSTGRES, _postgres_test, "REQUIRE_POSTGRES=1")]

# The browser tests (tests/console, marked "browser"): with REQUIRE_BROWSER=1 (.ci/run) a browser
# test that skips (no Chromium, no playwright) fails instead; locally they skip saying why.
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


def _browser_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("browser") is not None


REQUIRED_NOT_SKIPPED.append((REQUIRE_BROWSER, _browser_test, "REQUIRE_BROWSER=1"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the console in a real headless Chromium (tests/console)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A required test that skips fails instead (made in the worker, so it holds under xdist)."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        for required, applies, flag in REQUIRED_NOT_SKIPPED:
            if required and applies(item):
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                report.outcome = "failed"
                report.longrepr = f"{flag}, but this test skipped: {reason}"
                break
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands what it counted to the controller (pytest_testnodedown)."""
    from tests.helpers.counts import COUNTS, DISTINCT

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["counts"] = dict(COUNTS)
        workeroutput["distinct"] = {name: sorted(seen) for name, seen in DISTINCT.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    from tests.helpers.counts import COUNTS, DISTINCT

    output = getattr(node, "workeroutput", {})
    COUNTS.update(output.get("counts", {}))
    for name, seen in output.get("distinct", {}).items():
        DISTINCT[name].update(seen)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the reliability suites counted, so that a run says how much it tried."""
    from tests.helpers.counts import COUNTS, DISTINCT

    counted = {**COUNTS, **{name: len(seen) for name, seen in DISTINCT.items()}}
    if counted:
        terminalreporter.section("counts")
        for name, value in sorted(counted.items()):
            terminalreporter.write_line(f"{name}: {value:,}")


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and PG_SERVER is None:
        raise pytest.UsageError(
            "REQUIRE_POSTGRES=1 but no PostgreSQL answers (set TEST_DATABASE_URL or start it)"
        )


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
    """Empty every table the last test wrote to, and put back the reference data it changed.

    The same end state as truncating every table, but a table that is already empty (most of
    them, after most tests) costs a cheap EXISTS instead of a TRUNCATE (new files per table and
    index), and unchanged reference data is left alone."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            tables = (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version' ORDER BY tablename"
                    )
                )
            ).scalars()
            checks = []
            for table in tables:
                if table in REFERENCE_TABLES:  # changed: a row added, removed or altered
                    ours = f'SELECT r::text FROM "{table}" r'  # noqa: S608 - our own table names
                    pristine = f'SELECT p::text FROM pristine."{table}" p'  # noqa: S608
                    changed = (
                        f"({ours} EXCEPT ALL {pristine}) UNION ALL ({pristine} EXCEPT ALL {ours})"
                    )
                else:
                    changed = f'SELECT FROM "{table}"'
                checks.append(f"SELECT '{table}' WHERE EXISTS ({changed})")
            dirty = set((await conn.execute(text(" UNION ALL ".join(checks)))).scalars())
            if dirty:
                names = ", ".join(f'"{t}"' for t in sorted(dirty))
                # TRUNCATE does not fire the append-only row triggers. CASCADE also empties the
                # tables that refer to these (a reference table among them is restored below).
                await conn.execute(text(f"TRUNCATE {names} CASCADE"))
                # Put back the reference data the migrations seed (stations, exam catalogue).
                for table in REFERENCE_TABLES:
                    restore = (
                        f'INSERT INTO "{table}" SELECT * FROM pristine."{table}" '  # noqa: S608
                        f'WHERE NOT EXISTS (SELECT FROM "{table}")'
                    )
                    await conn.execute(text(restore))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema, of each kind, for the migration tests to upgrade step by
    step (their own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_DATABASE_URL or start it)")
    url = create_pg_database("pb_migrate")
    yield url
    drop_pg_database(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def between_draws() -> str:
    """The OGTT's between-draws setting a test runs under: empty, the clinic's default (rest);
    a test parametrizes it (``"any"``, ``"listed:us_obstetric"``) to run under another."""
    return ""


@pytest.fixture
def settings(database_url: str, between_draws: str) -> Settings:
    base = Settings(
        database_url=database_url,
        environment=Environment.TEST,
        database_pool_size=5,
        max_body_bytes=64 * 1024,
    )
    return with_between_draws(base, between_draws)


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


@pytest.fixture
async def api(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
) -> Api:
    staff = await make_staff(session_factory, now=clock.now())
    return Api(client=client, staff=staff)


@pytest.fixture
def lab(api: Api, clock: FrozenClock) -> Lab:
    return Lab(api, clock)
