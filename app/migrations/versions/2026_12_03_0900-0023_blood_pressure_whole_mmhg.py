"""blood pressures stored before today in whole mmHg, as the service now stores them (issue 16)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 09:00:00+00:00

Until today a blood pressure entered in kPa was stored to 0.1 mmHg (21.3 kPa as 159.8), below
the 160/110 line that the severe rule reads, and the charts drew it so. Rows with a fraction
are rounded half up to whole mmHg, as new ones are (limits.json, decimals 0); what was
entered stays in ``entered``. A row whose two values would meet (an implausible 100.4/99.6) is
left as it is rather than broken against the systolic-above-diastolic CHECK. The rules are
not run again by a migration: the rows that now reach a rule's line are counted in the log
for a doctor to look at (``bp_rows_now_at_a_line``). Downgrade leaves the rounded values.
"""

import logging
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")

measurements = sa.table(
    "measurements",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("value", sa.Float()),
    sa.column("value2", sa.Float()),
)


def _whole(x: float) -> float:
    return float(Decimal(repr(x)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(measurements.c.id, measurements.c.value, measurements.c.value2).where(
            measurements.c.kind == "blood_pressure"
        )
    ).all()
    at_a_line = 0
    for row_id, systolic, diastolic in rows:
        new_s = _whole(systolic)
        new_d = None if diastolic is None else _whole(diastolic)
        if (new_s, new_d) == (systolic, diastolic):
            continue
        if new_d is not None and new_s <= new_d:
            continue
        if (new_s >= 160 > systolic) or (
            new_d is not None and diastolic is not None and new_d >= 110 > diastolic
        ):
            at_a_line += 1
        conn.execute(
            measurements.update()
            .where(measurements.c.id == row_id)
            .values(value=new_s, value2=new_d)
        )
    if at_a_line:
        logger.warning(
            "blood pressures rounded to whole mmHg now reach the severe line: %d "
            "(bp_rows_now_at_a_line); a doctor should review them",
            at_a_line,
        )


def downgrade() -> None:
    pass  # the rounded values stand: nothing to undo
