"""Backup and upgrade, as the README tells an operator to do it (PostgreSQL).

Dump a database of the previous version with pg_dump, restore it into an empty database with
pg_restore, run this version's migrations, start the service and use it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import schema_head, upgrade
from app.core.security import hash_password
from app.core.settings import Settings
from app.main import create_app
from tests.helpers.databases import PG_SERVER, create_pg_database, drop_pg_database

PREVIOUS = "0007"  # the schema of the version before this one


def libpq(url: str) -> str:
    """The plain postgresql:// form pg_dump and pg_restore understand."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _sql(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.postgres_only
def test_dump_restore_and_upgrade_keep_the_data_and_serve(tmp_path: Path) -> None:
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_DATABASE_URL or start it)")
    assert schema_head() != PREVIOUS, "bump PREVIOUS to the last release's head"
    old = create_pg_database("pb_backup_old")
    new = create_pg_database("pb_backup_new")
    try:
        upgrade(old, PREVIOUS)
        now = datetime.now(UTC)
        asyncio.run(
            _sql(
                old,
                "INSERT INTO users (id, username, display_name, role, password_hash, is_active,"
                " created_at, updated_at, version) VALUES (:id, 'restored-admin', 'Restored',"
                " 'admin', :hash, true, :now, :now, 1)",
                id=uuid.uuid4(),
                hash=hash_password("a-long-restored-password"),
                now=now,
            )
        )
        dump = tmp_path / "clinic.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", libpq(old)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(new)}", str(dump)],
            check=True,
            capture_output=True,
        )
        assert asyncio.run(_sql(new, "SELECT version_num FROM alembic_version")) == [(PREVIOUS,)]
        upgrade(new)  # this version's migrations, on the restored data
        assert asyncio.run(_sql(new, "SELECT version_num FROM alembic_version")) == [
            (schema_head(),)
        ]

        async def serve() -> None:
            app = create_app(Settings(database_url=new, environment="test", log_json=False))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/readyz")).status_code == 200
                login = await client.post(
                    "/v1/auth/login",
                    json={"username": "restored-admin", "password": "a-long-restored-password"},
                )
                assert login.status_code == 200, login.text
                token = login.json()["access_token"]
                stations = await client.get(
                    "/v1/stations", headers={"Authorization": f"Bearer {token}"}
                )
                assert {s["code"] for s in stations.json()["items"]} >= {"LAB", "US", "DOC"}
            await app.state.engine.dispose()

        asyncio.run(serve())
    finally:
        drop_pg_database(old)
        drop_pg_database(new)
