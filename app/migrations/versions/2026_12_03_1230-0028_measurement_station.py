"""the station a reading was taken at (issue 17)

``measurements.station_code``: the station of the station account that recorded the reading
(a correction by a station account records its own). A station account corrects only the
readings taken at its own station; before this, any station account corrected any station's
reading (the ultrasound room's account could rewrite the vitals room's blood pressure).

Existing rows are left without a station: which station took them is not known (the account
that recorded one may have been moved to another station since), and a guess would let the
wrong room correct a clinical reading. So no station account corrects an old reading; a doctor
or the nutritionist does, as before.

Downgrade drops the column.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 12:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("station_code", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_column("station_code")
