"""stations and exam types named in Chinese and English (issue 17)

``name`` stays the English name; ``name_zh`` is the Chinese one (null: none set, a screen
shows ``name``). A station's ``place_kind`` says whether its places are rooms or windows
(counters), for the waiting-room TV and her page. The default stations and exams get their
Chinese names (data/0027_names_zh.json) unless an admin set one; the two names 0018 wrote in
both languages in one string become the English name alone, unless an admin changed them.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 12:00:00+00:00
"""

import json
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

DATA = Path(__file__).resolve().parent.parent / "data" / "0027_names_zh.json"

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_zh", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("place_kind", sa.String(length=10), server_default="room", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_stations_place_kind_known"), "place_kind IN ('room', 'window')"
        )
    with op.batch_alter_table("exam_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_zh", sa.String(length=120), nullable=True))

    data = json.loads(DATA.read_text(encoding="utf-8"))
    bind = op.get_bind()
    for table, key in (("stations", "code"), ("exam_types", "code")):
        for code, names in data[table].items():
            bind.execute(
                sa.text(
                    f"UPDATE {table} SET name_zh = :zh WHERE {key} = :code AND name_zh IS NULL"
                ),
                {"zh": names["name_zh"], "code": code},
            )
            if "name_was" in names:
                bind.execute(
                    sa.text(f"UPDATE {table} SET name = :name WHERE {key} = :code AND name = :was"),
                    {"name": names["name"], "was": names["name_was"], "code": code},
                )
            if names.get("place_kind"):
                bind.execute(
                    sa.text("UPDATE stations SET place_kind = :kind WHERE code = :code"),
                    {"kind": names["place_kind"], "code": code},
                )


def downgrade() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    bind = op.get_bind()
    for table in ("stations", "exam_types"):
        for code, names in data[table].items():
            if "name_was" in names:
                bind.execute(
                    sa.text(f"UPDATE {table} SET name = :was WHERE code = :code AND name = :name"),
                    {"name": names["name"], "was": names["name_was"], "code": code},
                )
    with op.batch_alter_table("exam_types", schema=None) as batch_op:
        batch_op.drop_column("name_zh")
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stations_place_kind_known"), type_="check")
        batch_op.drop_column("place_kind")
        batch_op.drop_column("name_zh")
