"""Migration 0030: ids and phones stored before issue 18 in other digits become ASCII; names NFC.

The rows are written as the old service stored them (fullwidth and Arabic-Indic digits, a
decomposed name), straight into the table, then the migration is run again over them.
"""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.migrations import downgrade, upgrade
from app.mothers.models import Mother
from tests.helpers.api import Api
from tests.helpers.factories import mother_body, national_id
from tests.helpers.mothers import enrol

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


async def _store(factory: async_sessionmaker[AsyncSession], mother_id: str, **values: str) -> None:
    async with factory() as session:  # a Core UPDATE: none of the model's checks run
        await session.execute(
            update(Mother).where(Mother.id == uuid.UUID(mother_id)).values(**values)
        )
        await session.commit()


async def _row(factory: async_sessionmaker[AsyncSession], mother_id: str) -> dict[str, str]:
    async with factory() as session:
        row = (
            await session.execute(
                select(Mother.national_id, Mother.phone, Mother.name, Mother.search_phone4).where(
                    Mother.id == uuid.UUID(mother_id)
                )
            )
        ).one()
    return dict(row._mapping)


def _with_x_check() -> str:
    """A valid id whose check character is X (to see a stored lower-case x upper-cased)."""
    for serial in range(100, 999):
        value = national_id(born=date(1990, 1, 1), serial=str(serial))
        if value.endswith("X"):
            return value
    raise AssertionError("no serial gives X")  # pragma: no cover


async def test_migration_0030_rewrites_old_digits_and_leaves_a_would_be_duplicate_alone(
    api: Api, database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    ids = {
        "wide": national_id(serial="011"),
        "arabic": _with_x_check(),
        "twin": national_id(serial="013"),
        "first": national_id(serial="014"),
    }
    wide = await enrol(api, national_id=ids["wide"], phone="13800138000")
    arabic = await enrol(api, national_id=ids["arabic"], phone="13900139000")
    twin = await enrol(api, national_id=ids["twin"], phone="13700137000")
    first = await enrol(api, national_id=ids["first"], phone="13600136000")
    # As the old service stored them: 17 digits of another script and an ASCII check char.
    await _store(
        session_factory,
        wide["id"],
        national_id=ids["wide"][:17].translate(FULLWIDTH) + ids["wide"][17],
        phone="13800138000".translate(FULLWIDTH),
        name=unicodedata.normalize("NFD", "Chloé Wang"),
    )
    await _store(
        session_factory,
        arabic["id"],
        national_id=ids["arabic"][:17].translate(ARABIC_INDIC) + "x",
        phone="13900139000".translate(ARABIC_INDIC),
    )
    # The same woman as ``first``, enrolled again in fullwidth digits: the duplicate.
    twin_stored = ids["first"][:17].translate(FULLWIDTH) + ids["first"][17]
    await _store(session_factory, twin["id"], national_id=twin_stored)

    await asyncio.to_thread(downgrade, database_url, "0029")
    await asyncio.to_thread(upgrade, database_url)

    fixed = await _row(session_factory, wide["id"])
    assert fixed["national_id"] == ids["wide"]
    assert fixed["phone"] == "13800138000"
    assert fixed["search_phone4"] == "8000"
    assert fixed["name"] == unicodedata.normalize("NFC", "Chloé Wang")
    assert len(fixed["name"]) == len("Chloé Wang")
    rewritten = await _row(session_factory, arabic["id"])
    assert rewritten["national_id"] == ids["arabic"]
    assert rewritten["phone"] == "13900139000"
    assert rewritten["search_phone4"] == "9000"
    # Merging is the desk's decision: the would-be duplicate keeps the form it had.
    assert (await _row(session_factory, twin["id"]))["national_id"] == twin_stored
    assert (await _row(session_factory, first["id"]))["national_id"] == ids["first"]
    # And the duplicate check now finds the rewritten record by its ASCII id.
    again = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json=mother_body(national_id=ids["wide"]),
    )
    assert again.status_code == 409, again.text
