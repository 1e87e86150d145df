"""one current height and pre-pregnancy weight per pregnancy (issue 16 review)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 07:30:00+00:00

Her height and pre-pregnancy weight are one value each in a pregnancy, changed only by a
correction (which marks the old row superseded before adding its own). Before this revision a
second POST silently won: the latest reading of each kind (by measured_at, recorded_at, id) was
her baseline. So that the unique index can be built, any earlier current ones are marked
superseded here, by "migration 0022", at the time the value that won was recorded, with the
reason; the value read as her baseline does not change. The downgrade drops the index and
leaves those marks (they say what was read).
"""

from collections.abc import Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASELINE_WHERE = "kind IN ('height', 'pre_pregnancy_weight') AND superseded_at IS NULL"
REASON = (
    "a later value of the same kind was recorded before one value per pregnancy was enforced"
    " (migration 0022); the later one was, and stays, her baseline"
)

measurements = sa.table(
    "measurements",
    sa.column("id", sa.Uuid()),
    sa.column("pregnancy_id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("measured_at", sa.DateTime(timezone=True)),
    sa.column("recorded_at", sa.DateTime(timezone=True)),
    sa.column("superseded_at", sa.DateTime(timezone=True)),
    sa.column("superseded_by_name", sa.String()),
    sa.column("correction_reason", sa.String()),
)


def _supersede_all_but_the_latest() -> None:
    bind = op.get_bind()
    m = measurements.c
    rows = bind.execute(
        sa.select(m.id, m.pregnancy_id, m.kind, m.recorded_at)
        .where(sa.text(BASELINE_WHERE))
        .order_by(m.pregnancy_id, m.kind, m.measured_at, m.recorded_at, m.id)
    ).all()
    for _, group in groupby(rows, key=lambda r: (r.pregnancy_id, r.kind)):
        *earlier, latest = list(group)
        for row in earlier:
            bind.execute(
                measurements.update()
                .where(m.id == row.id)
                .values(
                    superseded_at=latest.recorded_at,
                    superseded_by_name="migration 0022",
                    correction_reason=REASON,
                )
            )


def upgrade() -> None:
    _supersede_all_but_the_latest()
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(
            "uq_measurements_one_current_baseline",
            ["pregnancy_id", "kind"],
            unique=True,
            postgresql_where=sa.text(BASELINE_WHERE),
            sqlite_where=sa.text(BASELINE_WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index("uq_measurements_one_current_baseline")
