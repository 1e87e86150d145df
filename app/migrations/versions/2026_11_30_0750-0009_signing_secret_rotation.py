"""signing secret rotation: older secrets retire at a time

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 07:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Until now no route could add a second secret, so every client has one, the newest, and
    # nothing that was accepted before stops being accepted.
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signing_secrets_retire_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('signing_secrets_retire_at')
