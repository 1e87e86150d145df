"""a visit's arrival time and its forecast exams (issue 19, booking that knows the stations)

``visits.arrival_at``: when she is asked to come, inside her booked hour, spread over the
session's bottleneck station (fasting and OGTT mothers first). ``visits.forecast_exams``: the
exam codes her care plan was expected to order on the visit's day when it was booked; the
session's forecast of work per station type reads them.

Existing rows keep both empty: their arrival is their booked hour, as before, and the forecast
asks the care plan for their exams when it needs them (nothing is guessed here).

Downgrade drops both columns.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arrival_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("forecast_exams", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("forecast_exams")
        batch_op.drop_column("arrival_at")
