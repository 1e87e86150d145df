"""The PostgreSQL server tests use, and databases of their own made and dropped on it.

PostgreSQL is used when TEST_DATABASE_URL is set (a server URL) or when a server answers on
127.0.0.1:5432; PG_SERVER is None when neither."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

DEFAULT_PG_SERVER = "postgresql+asyncpg://root@127.0.0.1:5432/test"


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
