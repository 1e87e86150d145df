"""Migration 0026 on a live database with station accounts that have no station yet: those
named for one station are bound to it and keep working (their tokens too); the others are
disabled, their tokens revoked, until an admin binds them. Then the CHECK holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.models import AuthToken, User
from app.core.migrations import downgrade, upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)
# username -> (role, the station it gets, still active)
BEFORE = {
    "station-us": ("station", "US", True),
    "lab-2": ("station", "LAB", True),
    "ultrasound-room": ("station", None, False),  # names no station code
    "vit-us": ("station", None, False),  # names two
    "frontdesk": ("front_desk", None, True),  # not a station account: untouched
}


def _user(username: str, role: str) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "username": username,
        "display_name": username,
        "role": role,
        "password_hash": "x",
        "is_active": True,
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }


async def _seed(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    users, tokens = User.__table__, AuthToken.__table__
    try:
        async with engine.begin() as conn:
            for username, (role, _, _) in BEFORE.items():
                row = _user(username, role)
                await conn.execute(users.insert().values(**row))
                await conn.execute(
                    tokens.insert().values(
                        id=uuid.uuid4(),
                        user_id=row["id"],
                        token_hash=uuid.uuid4().hex * 2,
                        created_at=NOW,
                        expires_at=NOW + timedelta(days=1),
                    )
                )
    finally:
        await engine.dispose()


async def _after(url: str) -> dict[str, tuple[str | None, bool, bool]]:
    engine = create_async_engine(url, poolclass=NullPool)
    users, tokens = User.__table__, AuthToken.__table__
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    users.c.username, users.c.station_code, users.c.is_active, tokens.c.revoked_at
                ).join(tokens, tokens.c.user_id == users.c.id)
            )
            return {u: (code, active, revoked is None) for u, code, active, revoked in rows}
    finally:
        await engine.dispose()


async def _insert(url: str, **row: object) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(User.__table__.insert().values(**row))
    finally:
        await engine.dispose()


def test_existing_station_accounts_are_bound_or_disabled(empty_database: str) -> None:
    upgrade(empty_database, "0025")
    asyncio.run(_seed(empty_database))
    upgrade(empty_database)
    after = asyncio.run(_after(empty_database))
    assert after == {
        username: (code, active, active) for username, (_, code, active) in BEFORE.items()
    }
    # The CHECK: an active station account has a station, and only a station account has one.
    for username, role, code in (("s-none", "station", None), ("d-lab", "front_desk", "LAB")):
        with pytest.raises(IntegrityError):
            asyncio.run(_insert(empty_database, **{**_user(username, role), "station_code": code}))
    asyncio.run(_insert(empty_database, **{**_user("s-ok", "station"), "station_code": "NUT"}))
    # And back: the column goes, the accounts stay.
    downgrade(empty_database, "0025")
