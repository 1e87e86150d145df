"""national ids and phones stored in ASCII digits; names stored NFC (issue 18)

Before issue 18 the service read fullwidth (１２３) and Arabic-Indic (١٢٣) digits in a national
id or phone as digits and stored them as typed: the same woman, typed three ways, got three
records past the duplicate check. The API now refuses them or turns them into ASCII; this
migration brings the rows already stored into the same form:

- a national id or phone holding digits of another script, or fullwidth letters, is rewritten
  with the ASCII digits they stand for (NFKC, then each decimal digit by its value; a final
  ``x`` upper-cased); the phone's search key (last four) is rebuilt with it;
- a mother's name is NFC-normalised (a decomposed é becomes one character), search keys too.

A row whose rewritten national id is another mother's already is **left as it is** and counted
in the log by id: the two are very likely the same woman, and merging records is the front
desk's decision, never a migration's guess (docs/security.md, "Data at rest"). Nothing else is
touched; rows already in ASCII are not rewritten.

Downgrade keeps the rewritten values (the old forms were the defect).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 15:00:00+00:00
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.mothers import search_keys

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
BATCH = 1000

mothers = sa.table(
    "mothers",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("mrn", sa.String()),
    sa.column("national_id", sa.String()),
    sa.column("phone", sa.String()),
    *(sa.column(column, sa.String()) for column in search_keys.KEY_COLUMNS),
)


def ascii_digits(value: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit; ``x`` as ``X``."""
    folded = unicodedata.normalize("NFKC", value).strip()
    out = []
    for char in folded:
        digit = unicodedata.decimal(char, None)
        out.append(str(digit) if digit is not None else char)
    return "".join(out).upper()


def upgrade() -> None:
    conn = op.get_bind()
    taken = {row.national_id for row in conn.execute(sa.select(mothers.c.national_id))}
    last = None
    fixed = 0
    collisions: list[str] = []
    while True:
        stmt = sa.select(
            mothers.c.id, mothers.c.name, mothers.c.mrn, mothers.c.national_id, mothers.c.phone
        )
        if last is not None:
            stmt = stmt.where(mothers.c.id > last)
        rows = conn.execute(stmt.order_by(mothers.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            national_id = ascii_digits(row.national_id)
            phone = ascii_digits(row.phone)
            name = unicodedata.normalize("NFC", row.name)
            if national_id != row.national_id and national_id in taken:
                collisions.append(str(row.id))
                national_id = row.national_id
            if (national_id, phone, name) == (row.national_id, row.phone, row.name):
                continue
            taken.discard(row.national_id)
            taken.add(national_id)
            conn.execute(
                mothers.update()
                .where(mothers.c.id == row.id)
                .values(
                    national_id=national_id,
                    phone=phone,
                    name=name,
                    **search_keys.row_keys(name, row.mrn, phone),
                )
            )
            fixed += 1
    if fixed:
        logger.info("0030: %d mother record(s) rewritten in ASCII digits / NFC", fixed)
    if collisions:
        logger.warning(
            "0030: %d mother record(s) left as they were: in ASCII digits their national id is "
            "another mother's (likely the same woman enrolled twice; the front desk merges): %s",
            len(collisions),
            ", ".join(collisions),
        )


def downgrade() -> None:
    """The old forms were the defect: nothing to put back."""
