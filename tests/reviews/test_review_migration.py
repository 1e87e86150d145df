"""Migration 0020: a review withdrawn before it (the "withdrawn: …" prefix in
superseded_reason) gets withdrawn_at / withdrawn_reason, and the downgrade puts it back; a
review superseded by an amendment is left as it was. Both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import downgrade, upgrade

AT = datetime(2026, 11, 28, 3, tzinfo=UTC)
WITHDRAWN = uuid.uuid4()
AMENDED = uuid.uuid4()

# report_reviews as 0019 made it (only what these rows need).
_META = sa.MetaData()
REVIEWS = sa.Table(
    "report_reviews",
    _META,
    sa.Column("id", sa.Uuid()),
    sa.Column("report_id", sa.Uuid()),
    sa.Column("mother_id", sa.Uuid()),
    sa.Column("report_version", sa.Integer()),
    sa.Column("report_status", sa.String(20)),
    sa.Column("reviewer_name", sa.String(100)),
    sa.Column("reviewer_role", sa.String(20)),
    sa.Column("interpretation", sa.Text()),
    sa.Column("abnormal_items", sa.JSON()),
    sa.Column("abnormal_source", sa.String(20)),
    sa.Column("advice_for_mother", sa.Text()),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("superseded_at", sa.DateTime(timezone=True)),
    sa.Column("superseded_reason", sa.String(300)),
)


@pytest.fixture
def database(empty_database: str) -> str:
    return empty_database


def _row(review_id: uuid.UUID, reason: str) -> dict[str, Any]:
    return {
        "id": review_id,
        "report_id": uuid.uuid4(),  # no report: foreign keys are off for this seed
        "mother_id": uuid.uuid4(),
        "report_version": 1,
        "report_status": "final",
        "reviewer_name": "Dr Wang",
        "reviewer_role": "doctor",
        "interpretation": "Normal",
        "abnormal_items": [],
        "abnormal_source": "lab_flags",
        "advice_for_mother": "All normal",
        "reviewed_at": AT,
        "superseded_at": AT,
        "superseded_reason": reason,
    }


async def _seed(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                REVIEWS.insert(),
                [
                    _row(WITHDRAWN, "withdrawn: detached from the mother by frontdesk: not hers"),
                    _row(AMENDED, "the lab sent a corrected report since (report version 2)"),
                ],
            )
    finally:
        await engine.dispose()


async def _read(url: str, *columns: str) -> dict[uuid.UUID, tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(REVIEWS.c.id, *(sa.column(c) for c in columns)).select_from(REVIEWS)
            )
            return {r[0]: tuple(r[1:]) for r in rows.all()}
    finally:
        await engine.dispose()


def test_0020_moves_the_withdrawn_prefix_to_its_columns_and_back(database: str) -> None:
    upgrade(database, "0019")
    asyncio.run(_seed(database))
    upgrade(database, "0020")
    rows = asyncio.run(_read(database, "superseded_reason", "withdrawn_reason", "withdrawn_at"))
    reason, why, at = rows[WITHDRAWN]
    assert (reason, why) == ("withdrawn", "detached from the mother by frontdesk: not hers")
    assert at is not None
    assert rows[AMENDED][:2] == (
        "the lab sent a corrected report since (report version 2)",
        None,
    )
    downgrade(database, "0019")
    rows = asyncio.run(_read(database, "superseded_reason"))
    assert rows[WITHDRAWN] == ("withdrawn: detached from the mother by frontdesk: not hers",)
    assert rows[AMENDED] == ("the lab sent a corrected report since (report version 2)",)
