"""Migration 0022 on both databases: a pregnancy that already had two current heights (a
second POST silently won before) keeps the later one as her baseline, the earlier one marked
superseded by the migration with its reason, so the one-current-value index can be built."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import downgrade, upgrade
from app.measurements.models import Measurement
from tests.helpers.measurements import seed_pregnancy


async def _heights(url: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    t = Measurement.__table__.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    t.kind, t.value, t.superseded_at, t.superseded_by_name, t.correction_reason
                ).order_by(t.kind, t.value)
            )
            return [tuple(r) for r in rows.all()]
    finally:
        await engine.dispose()


def test_0022_keeps_the_later_height_and_marks_the_earlier_ones(empty_database: str) -> None:
    upgrade(empty_database, "0021")
    asyncio.run(seed_pregnancy(empty_database))
    upgrade(empty_database, "0022")
    rows = asyncio.run(_heights(empty_database))
    current = [(kind, value) for kind, value, at, *_ in rows if at is None]
    assert current == [("height", 162), ("pre_pregnancy_weight", 55)]
    marked = [r for r in rows if r[2] is not None]
    assert [r[1] for r in marked] == [160, 161]
    for _, _, at, by, reason in marked:
        assert by == "migration 0022"
        assert "0022" in reason
        assert at is not None
    downgrade(empty_database, "0021")
    upgrade(empty_database, "0022")
