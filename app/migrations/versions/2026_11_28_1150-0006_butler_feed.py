"""butler feed: per-butler version, change events, tasks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 11:49:03.955611+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('butler_feed_events',
    sa.Column('butler_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('ref_type', sa.String(length=20), nullable=True),
    sa.Column('ref_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_butler_feed_events_butler_id_butlers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_butler_feed_events')),
    sa.UniqueConstraint('butler_id', 'seq', name=op.f('uq_butler_feed_events_butler_id_seq'))
    )
    with op.batch_alter_table('butler_feed_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_butler_feed_events_created_at'), ['created_at'], unique=False)

    op.create_table('butler_feed_state',
    sa.Column('butler_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_butler_feed_state_butler_id_butlers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('butler_id', name=op.f('pk_butler_feed_state'))
    )
    op.create_table('butler_tasks',
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('butler_id', sa.Uuid(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completion_note', sa.String(length=1000), nullable=True),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_butler_tasks_butler_id_butlers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_butler_tasks_mother_id_mothers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_butler_tasks'))
    )
    with op.batch_alter_table('butler_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_butler_tasks_butler_id'), ['butler_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_butler_tasks_mother_id'), ['mother_id'], unique=False)

    with op.batch_alter_table('care_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('care_assignments', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')

    with op.batch_alter_table('butler_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_butler_tasks_mother_id'))
        batch_op.drop_index(batch_op.f('ix_butler_tasks_butler_id'))

    op.drop_table('butler_tasks')
    op.drop_table('butler_feed_state')
    with op.batch_alter_table('butler_feed_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_butler_feed_events_created_at'))

    op.drop_table('butler_feed_events')
