"""what a finish taught the learned service time, kept on its queue entry (issue 19, undo)

``queue_entries.taught_exam``, ``taught_minutes``, ``taught_mean``, ``taught_sample``: the exam
type whose learned minutes the finish updated, the sample, the mean right after it and its
sample number. An undone finish takes the sample back from the mean exactly (others may have
been learned since); before this, the mis-tapped finish's sample stayed in the mean.

Existing rows keep them empty: their finishes can still be undone, and leave the mean as it is
(as before).

Downgrade drops the four columns.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 23:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taught_exam", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("taught_minutes", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("taught_mean", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("taught_sample", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_column("taught_sample")
        batch_op.drop_column("taught_mean")
        batch_op.drop_column("taught_minutes")
        batch_op.drop_column("taught_exam")
