"""the mothers' search keys (pinyin, initials, phone's last four, MRN) and indexes (issue 17)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 11:00:00+00:00

The front desk's search box finds a mother by her name's characters, its full pinyin or
initials (as prefixes), her MRN with case and spaces ignored, her phone's last four digits.
Each key is a column of its own with a btree index (key, id), so that a prefix is one index
range read in order; on PostgreSQL the keys are compared in the "C" collation (byte order),
whatever the database's, so that the range means "starts with". Existing mothers get their
keys here, derived by the same code as the service's (app/mothers/search_keys.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.mothers import search_keys

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "search_name": search_keys.NAME_KEY_MAX,
    "search_given": search_keys.NAME_KEY_MAX,
    "search_pinyin": search_keys.PINYIN_KEY_MAX,
    "search_pinyin_alt": search_keys.PINYIN_KEY_MAX,
    "search_initials": search_keys.INITIALS_KEY_MAX,
    "search_initials_alt": search_keys.INITIALS_KEY_MAX,
    "search_mrn": search_keys.MRN_KEY_MAX,
    "search_phone4": 4,
}
BATCH = 2000

mothers = sa.table(
    "mothers",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("mrn", sa.String()),
    sa.column("phone", sa.String()),
    *(sa.column(c, sa.String()) for c in COLUMNS),
)


def _key_type(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    for column, length in COLUMNS.items():
        op.add_column("mothers", sa.Column(column, _key_type(length), nullable=True))
    conn = op.get_bind()
    last = None
    while True:
        stmt = sa.select(mothers.c.id, mothers.c.name, mothers.c.mrn, mothers.c.phone)
        if last is not None:
            stmt = stmt.where(mothers.c.id > last)
        rows = conn.execute(stmt.order_by(mothers.c.id).limit(BATCH)).all()
        if not rows:
            break
        conn.execute(
            mothers.update().where(mothers.c.id == sa.bindparam("_id")),
            [{"_id": row.id, **search_keys.row_keys(row.name, row.mrn, row.phone)} for row in rows],
        )
        last = rows[-1].id
    for column in COLUMNS:
        op.create_index(f"ix_mothers_{column}", "mothers", [column, "id"])


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_mothers_{column}", table_name="mothers")
    with op.batch_alter_table("mothers") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
