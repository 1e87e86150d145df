"""lab safety: content hashes, the patient as sent, comments, attachments, the worklist

Messages stored before this revision keep no content hash: one of them resent afterwards is
taken as a new message under a reused control id (processed again, which changes nothing in
a report that already holds the same results, and shown to admins), never as the old answer.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:46:39.751150+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lab_attachments',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('observation_seq', sa.SmallInteger(), nullable=False),
    sa.Column('kind', sa.String(length=5), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('pointer', sa.String(length=1000), nullable=True),
    sa.Column('message_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['inbound_messages.id'], name=op.f('fk_lab_attachments_message_id_inbound_messages')),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_lab_attachments_report_id_lab_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_attachments'))
    )
    with op.batch_alter_table('lab_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lab_attachments_report_id'), ['report_id'], unique=False)

    op.create_table('worklist_items',
    sa.Column('audience', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('report_id', sa.Uuid(), nullable=True),
    sa.Column('alert_id', sa.Uuid(), nullable=True),
    sa.Column('mother_id', sa.Uuid(), nullable=True),
    sa.Column('visit_id', sa.Uuid(), nullable=True),
    sa.Column('message_id', sa.Uuid(), nullable=True),
    sa.Column('task_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('acknowledged_note', sa.String(length=1000), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['critical_alerts.id'], name=op.f('fk_worklist_items_alert_id_critical_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['inbound_messages.id'], name=op.f('fk_worklist_items_message_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_worklist_items_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_worklist_items_report_id_lab_reports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['butler_tasks.id'], name=op.f('fk_worklist_items_task_id_butler_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_worklist_items_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worklist_items'))
    )
    with op.batch_alter_table('worklist_items', schema=None) as batch_op:
        batch_op.create_index('ix_worklist_items_audience_id', ['audience', 'id'], unique=False)
        batch_op.create_index('ix_worklist_items_open', ['audience', 'priority', 'created_at'], unique=False, postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reused_key_of', sa.Uuid(), nullable=True))
        batch_op.drop_index(batch_op.f('uq_inbound_messages_sender_key'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_index('uq_inbound_messages_sender_key', ['sender_id', 'message_key', 'content_hash'], unique=True, postgresql_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.drop_index(batch_op.f('uq_inbound_messages_webhook_id'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_index('uq_inbound_messages_webhook_id', ['sender_id', 'channel', 'webhook_id', 'content_hash'], unique=True, postgresql_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_inbound_messages_reused_key_of_inbound_messages'), 'inbound_messages', ['reused_key_of'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('lab_observations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comparator', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('unit_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('review_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('comments', sa.Text(), nullable=True))
        batch_op.alter_column('value',
               existing_type=sa.VARCHAR(length=2000),
               type_=sa.Text(),
               existing_nullable=True)
        batch_op.alter_column('critical_reason',
               existing_type=sa.VARCHAR(length=200),
               type_=sa.String(length=300),
               existing_nullable=True)

    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('patient_birth_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('patient_sex', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('comments', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('needs_review', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('conflict_of', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('detached_from_mother_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_lab_reports_conflict_of'), ['conflict_of'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_lab_reports_conflict_of_lab_reports'), 'lab_reports', ['conflict_of'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_lab_reports_detached_from_mother_id_mothers'), 'mothers', ['detached_from_mother_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.alter_column('needs_review', server_default=None)  # the model sets it


def downgrade() -> None:
    # The old unique indexes cannot come back while two messages share a control id.
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lab_reports_detached_from_mother_id_mothers'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_lab_reports_conflict_of_lab_reports'), type_='foreignkey')
        batch_op.drop_column('detached_from_mother_id')
        batch_op.drop_index(batch_op.f('ix_lab_reports_conflict_of'))
        batch_op.drop_column('conflict_of')
        batch_op.drop_column('needs_review')
        batch_op.drop_column('comments')
        batch_op.drop_column('patient_sex')
        batch_op.drop_column('patient_birth_date')
        batch_op.drop_column('patient_name')

    with op.batch_alter_table('lab_observations', schema=None) as batch_op:
        batch_op.alter_column('critical_reason',
               existing_type=sa.String(length=300),
               type_=sa.VARCHAR(length=200),
               existing_nullable=True)
        batch_op.alter_column('value',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=2000),
               existing_nullable=True)
        batch_op.drop_column('comments')
        batch_op.drop_column('review_reason')
        batch_op.drop_column('unit_code')
        batch_op.drop_column('comparator')

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inbound_messages_reused_key_of_inbound_messages'), type_='foreignkey')
        batch_op.drop_index('uq_inbound_messages_webhook_id', postgresql_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_index(batch_op.f('uq_inbound_messages_webhook_id'), ['sender_id', 'webhook_id'], unique=True, postgresql_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))
        batch_op.drop_index('uq_inbound_messages_sender_key', postgresql_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_index(batch_op.f('uq_inbound_messages_sender_key'), ['sender_id', 'channel', 'message_key'], unique=True, postgresql_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.drop_column('reused_key_of')
        batch_op.drop_column('content_hash')

    with op.batch_alter_table('worklist_items', schema=None) as batch_op:
        batch_op.drop_index('ix_worklist_items_audience_id')
        batch_op.drop_index('ix_worklist_items_open', postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))

    op.drop_table('worklist_items')
    with op.batch_alter_table('lab_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lab_attachments_report_id'))

    op.drop_table('lab_attachments')
