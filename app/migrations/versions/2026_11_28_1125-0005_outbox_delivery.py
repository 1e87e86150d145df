"""outbox delivery: channel, state, retry schedule; report pickup reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 11:23:40.890004+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminders_sent', sa.SmallInteger(), nullable=True))
    op.execute("UPDATE lab_reports SET reminders_sent = 0")
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.alter_column('reminders_sent', existing_type=sa.SmallInteger(), nullable=False)

    # Messages written before this revision: delivered if dispatched, otherwise due now.
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.drop_index('ix_outbox_messages_pending')
    op.execute(
        "UPDATE outbox_messages SET channel = 'butler_app', next_attempt_at = created_at, "
        "state = CASE WHEN dispatched_at IS NULL THEN 'pending' ELSE 'delivered' END"
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('state', existing_type=sa.String(length=10), nullable=False)
        batch_op.alter_column('next_attempt_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index('ix_outbox_messages_due', ['next_attempt_at'], unique=False, postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_due', postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_outbox_messages_pending', ['created_at'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'), sqlite_where=sa.text('dispatched_at IS NULL'))
        batch_op.drop_column('last_error')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('state')
        batch_op.drop_column('channel')

    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.drop_column('reminders_sent')
        batch_op.drop_column('ready_at')
