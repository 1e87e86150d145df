"""Alembic is the only source of the schema: it upgrades, downgrades, and matches the models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.all_models import Base
from app.core.migrations import downgrade, upgrade
from tests.conftest import PG_SERVER, create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable")
    url = create_pg_database("pb_migrate")
    yield url
    drop_pg_database(url)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _inspect(url: str) -> tuple[list[object], set[str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff), await conn.run_sync(_tables)
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade_and_models_match(empty_database: str) -> None:
    upgrade(empty_database)
    diff, tables = asyncio.run(_inspect(empty_database))
    assert diff == [], f"models and migrations differ: {diff}"
    assert tables == set(Base.metadata.tables)

    downgrade(empty_database, "base")
    _, tables = asyncio.run(_inspect(empty_database))
    assert tables == set()

    upgrade(empty_database)
    diff, tables = asyncio.run(_inspect(empty_database))
    assert diff == []
    assert tables == set(Base.metadata.tables)


def test_migration_files_are_date_prefixed() -> None:
    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    names = [p.name for p in versions.glob("*.py")]
    assert names
    for name in names:
        assert name[:11].replace("_", "").isdigit(), name
