"""Migration 0024 gives the mothers already enrolled their search keys; the keys' indexes serve
a prefix as one range read on both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.database import UTCDateTime
from app.core.migrations import upgrade
from app.mothers.search_keys import prefix_upper
from tests.helpers.factories import national_id

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MOTHERS = sa.table(
    "mothers",
    *(sa.column(c) for c in ("mrn", "name", "national_id", "phone", "language", "version")),
    sa.column("id", sa.Uuid()),
    sa.column("date_of_birth", sa.Date()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
KEYS = (
    "name",
    "search_name",
    "search_given",
    "search_pinyin",
    "search_pinyin_alt",
    "search_initials",
    "search_initials_alt",
    "search_mrn",
    "search_phone4",
)


async def _seed(url: str, people: list[tuple[str, str, str]]) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for i, (name, mrn, phone) in enumerate(people):
                await conn.execute(
                    MOTHERS.insert().values(
                        id=uuid.uuid4(),
                        mrn=mrn,
                        name=name,
                        national_id=national_id(serial=f"{i:03d}"),
                        phone=phone,
                        language="zh-CN",
                        version=1,
                        date_of_birth=date(1995, 3, 7),
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
    finally:
        await engine.dispose()


async def _rows(url: str) -> dict[str, tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            sql = f"SELECT {', '.join(KEYS)} FROM mothers"  # noqa: S608 - our own columns
            rows = (await conn.execute(sa.text(sql))).all()
            return {row[0]: tuple(row[1:]) for row in rows}
    finally:
        await engine.dispose()


def test_mothers_enrolled_before_get_their_keys(empty_database: str) -> None:
    upgrade(empty_database, "0023")
    people = [
        ("李小红", "MRN-0001", "13800138000"),
        ("单丽华", "mrn0002", "13912345678"),
        ("欧阳 娜", "A 77", "13700001111"),
    ]
    asyncio.run(_seed(empty_database, people))
    upgrade(empty_database)
    assert asyncio.run(_rows(empty_database)) == {
        "李小红": ("李小红", "小红", "lixiaohong", None, "lxh", None, "mrn0001", "8000"),
        "单丽华": ("单丽华", "丽华", "shanlihua", "danlihua", "slh", "dlh", "mrn0002", "5678"),
        "欧阳 娜": ("欧阳娜", "娜", "ouyangna", None, "oyn", None, "a77", "1111"),
    }


async def _plan(url: str, column: str, prefix: str) -> str:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            where = f"{column} >= :lo AND {column} < :hi ORDER BY {column}, id LIMIT 51"
            params = {"lo": prefix, "hi": prefix_upper(prefix)}
            if engine.dialect.name == "postgresql":
                await conn.execute(sa.text("SET enable_seqscan = off"))
                sql = f"EXPLAIN SELECT id FROM mothers WHERE {where}"  # noqa: S608 - constants
            else:
                sql = f"EXPLAIN QUERY PLAN SELECT id FROM mothers WHERE {where}"  # noqa: S608
            rows = (await conn.execute(sa.text(sql), params)).all()
            return "\n".join(str(r[-1]) for r in rows)
    finally:
        await engine.dispose()


def test_a_prefix_is_one_range_read_of_its_index_in_order(database_url: str) -> None:
    """On PostgreSQL the keys are in the "C" collation whatever the database's: a range over
    a column in a linguistic collation would not mean "starts with"."""
    for column, prefix in [
        ("search_pinyin", "lixiao"),
        ("search_name", "李小"),
        ("search_mrn", "m"),
    ]:
        plan = asyncio.run(_plan(database_url, column, prefix))
        assert f"ix_mothers_{column}" in plan, plan
        assert "Sort" not in plan, plan  # read in the index's order
        assert "TEMP B-TREE" not in plan, plan


def test_the_keys_are_in_the_c_collation_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        return
    engine = create_async_engine(database_url, poolclass=NullPool)

    async def collations() -> set[str]:
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT collation_name FROM information_schema.columns "
                        "WHERE table_name = 'mothers' AND column_name LIKE 'search_%'"
                    )
                )
                return {r[0] for r in rows}
        finally:
            await engine.dispose()

    assert asyncio.run(collations()) == {"C"}
