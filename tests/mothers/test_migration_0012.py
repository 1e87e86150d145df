"""Migration 0012: a stored 'purple' grade becomes the purple flag beside a colour (both DBs).

The colour is the last one her history records before purple, at least yellow; the change is
written to her history as the system's, and a doctor is asked to re-assess her.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.database import UTCDateTime
from app.core.migrations import upgrade
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
PREGNANCIES = sa.table(
    "pregnancies",
    *(sa.column(c) for c in ("status", "dating_method", "gravida", "para", "risk_grade")),
    sa.column("care_plan_code"),
    sa.column("id", sa.Uuid()),
    sa.column("mother_id", sa.Uuid()),
    sa.column("edd_date", sa.Date()),
    sa.column("created_at", UTCDateTime()),
)
CHANGES = sa.table(
    "risk_grade_changes",
    *(sa.column(c) for c in ("from_grade", "to_grade", "reason", "changed_by_name")),
    sa.column("id", sa.Uuid()),
    sa.column("pregnancy_id", sa.Uuid()),
    sa.column("changed_at", UTCDateTime()),
)


@pytest.fixture
def database(empty_database: str) -> str:
    return empty_database


async def _seed(url: str, histories: dict[str, list[tuple[str | None, str]]]) -> dict[str, Any]:
    """One mother per history; the pregnancy's grade is the last to_grade."""
    ids: dict[str, Any] = {}
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for i, (name, history) in enumerate(histories.items()):
                mother, pregnancy = uuid.uuid4(), uuid.uuid4()
                ids[name] = (mother, pregnancy)
                await conn.execute(
                    MOTHERS.insert().values(
                        id=mother,
                        mrn=f"M{i}",
                        name=name,
                        national_id=national_id(serial=f"{i:03d}"),
                        phone="13800138000",
                        language="zh-CN",
                        version=1,
                        date_of_birth=date(1995, 3, 7),
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
                await conn.execute(
                    PREGNANCIES.insert().values(
                        id=pregnancy,
                        mother_id=mother,
                        status="active",
                        dating_method="lmp",
                        gravida=1,
                        para=0,
                        risk_grade=history[-1][1],
                        care_plan_code="cn-2018",
                        edd_date=date(2027, 3, 8),
                        created_at=NOW,
                    )
                )
                for n, (before, after) in enumerate(history):
                    await conn.execute(
                        CHANGES.insert().values(
                            id=uuid.uuid4(),
                            pregnancy_id=pregnancy,
                            from_grade=before,
                            to_grade=after,
                            reason="seed",
                            changed_by_name="doctor",
                            changed_at=NOW.replace(minute=n),
                        )
                    )
    finally:
        await engine.dispose()
    return ids


async def _read(url: str) -> tuple[list[Any], list[Any], list[Any]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            pregnancies = (
                await conn.execute(sa.text("SELECT mother_id, risk_grade, purple FROM pregnancies"))
            ).all()
            migrated = (
                await conn.execute(
                    sa.text(
                        "SELECT pregnancy_id, from_grade, to_grade, to_purple, changed_by_name "
                        "FROM risk_grade_changes WHERE decision = 'migrated'"
                    )
                )
            ).all()
            prompts = (
                await conn.execute(
                    sa.text(
                        "SELECT mother_id, audience FROM worklist_items "
                        "WHERE kind = 'risk.reassess'"
                    )
                )
            ).all()
            return list(pregnancies), list(migrated), list(prompts)
    finally:
        await engine.dispose()


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def test_a_stored_purple_becomes_the_flag_beside_a_safe_colour(database: str) -> None:
    upgrade(database, "0011")
    ids = asyncio.run(
        _seed(
            database,
            {
                "enrolled purple": [(None, "purple")],
                "green then purple": [(None, "green"), ("green", "purple")],
                "orange then purple": [(None, "orange"), ("orange", "purple")],
                "plain red": [(None, "red")],
            },
        )
    )
    upgrade(database)
    pregnancies, migrated, prompts = asyncio.run(_read(database))
    by_mother = {_uuid(m): (grade, bool(purple)) for m, grade, purple in pregnancies}
    assert by_mother == {
        ids["enrolled purple"][0]: ("yellow", True),  # no colour known: not assumed low
        ids["green then purple"][0]: ("yellow", True),  # at least yellow
        ids["orange then purple"][0]: ("orange", True),  # the colour purple had hidden
        ids["plain red"][0]: ("red", False),
    }
    assert len(migrated) == 3
    assert {(m[1], bool(m[3]), m[4]) for m in migrated} == {
        ("purple", True, "system (migration 0012)")
    }
    assert sorted(_uuid(m) for m, _ in prompts) == sorted(
        ids[n][0] for n in ("enrolled purple", "green then purple", "orange then purple")
    )
    assert {a for _, a in prompts} == {"doctor"}
