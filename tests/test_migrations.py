"""Alembic is the only source of the schema: it upgrades, downgrades, and matches the models."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.all_models import Base, Butler, CareAssignment, Mother, User
from app.core.migrations import downgrade, upgrade


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
    versions = Path(__file__).resolve().parents[1] / "app" / "migrations" / "versions"
    names = [p.name for p in versions.glob("*.py")]
    assert names
    for name in names:
        assert name[:11].replace("_", "").isdigit(), name


async def _seed_0002(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    ids = {k: uuid.uuid4() for k in ("user", "butler", "mother")}
    try:
        async with engine.begin() as conn:
            now = datetime(2026, 11, 1, tzinfo=UTC)
            await conn.execute(
                User.__table__.insert().values(
                    id=ids["user"],
                    username="b",
                    display_name="B",
                    role="butler",
                    password_hash="x",
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            await conn.execute(
                Butler.__table__.insert().values(
                    id=ids["butler"],
                    user_id=ids["user"],
                    display_name="B",
                    skills=[],
                    languages=["zh-CN"],
                    max_caseload=5,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            await conn.execute(
                Mother.__table__.insert().values(
                    id=ids["mother"],
                    mrn="M1",
                    name="N",
                    national_id="110105199503070021",
                    phone="13800138000",
                    date_of_birth=date(1995, 3, 7),
                    language="zh-CN",
                    primary_butler_id=ids["butler"],
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
    finally:
        await engine.dispose()


async def _primary_periods(url: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    CareAssignment.mother_id,
                    CareAssignment.butler_id,
                    CareAssignment.role,
                    CareAssignment.ends_at,
                )
            )
            return [tuple(r) for r in rows.all()]
    finally:
        await engine.dispose()


def test_linked_mothers_get_an_open_primary_period(empty_database: str) -> None:
    upgrade(empty_database, "0002")
    asyncio.run(_seed_0002(empty_database))
    upgrade(empty_database)
    ((mother_id, butler_id, role, ends_at),) = asyncio.run(_primary_periods(empty_database))
    assert role == "primary"
    assert ends_at is None
    assert mother_id is not None
    assert butler_id is not None
