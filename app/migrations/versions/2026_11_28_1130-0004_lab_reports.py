"""lab reports: inbound messages stored verbatim, reports, observations, trail, critical alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 11:18:00.829873+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('sender_id', sa.Uuid(), nullable=True),
    sa.Column('sender_name', sa.String(length=100), nullable=False),
    sa.Column('message_key', sa.String(length=200), nullable=True),
    sa.Column('webhook_id', sa.String(length=200), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('outcome', sa.String(length=1000), nullable=True),
    sa.Column('ack_code', sa.String(length=12), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replay_of', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['replay_of'], ['inbound_messages.id'], name=op.f('fk_inbound_messages_replay_of_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sender_id'], ['api_clients.id'], name=op.f('fk_inbound_messages_sender_id_api_clients'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_received_at'), ['received_at'], unique=False)
        batch_op.create_index('uq_inbound_messages_sender_key', ['sender_id', 'channel', 'message_key'], unique=True, postgresql_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.create_index('uq_inbound_messages_webhook_id', ['sender_id', 'webhook_id'], unique=True, postgresql_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))

    op.create_table('lab_reports',
    sa.Column('sender_id', sa.Uuid(), nullable=True),
    sa.Column('source_key', sa.String(length=200), nullable=False),
    sa.Column('last_message_id', sa.Uuid(), nullable=False),
    sa.Column('exam_order_id', sa.Uuid(), nullable=True),
    sa.Column('mother_id', sa.Uuid(), nullable=True),
    sa.Column('visit_id', sa.Uuid(), nullable=True),
    sa.Column('placer_order', sa.String(length=64), nullable=True),
    sa.Column('filler_order', sa.String(length=64), nullable=True),
    sa.Column('patient_mrn', sa.String(length=64), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Enum('registered', 'partial', 'preliminary', 'final', 'amended', 'corrected', 'appended', 'cancelled', 'entered-in-error', 'unknown', name='status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_derived', sa.Boolean(), nullable=False),
    sa.Column('status_note', sa.String(length=200), nullable=False),
    sa.Column('pickup_state', sa.Enum('not_ready', 'ready', 'picked_up', 'delivered', 'withdrawn', name='pickup_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('conclusion', sa.Text(), nullable=True),
    sa.Column('critical', sa.Boolean(), nullable=False),
    sa.Column('reconciliation_reason', sa.String(length=300), nullable=True),
    sa.Column('reconciled_by', sa.String(length=100), nullable=True),
    sa.Column('picked_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('picked_up_by', sa.Uuid(), nullable=True),
    sa.Column('pickup_place', sa.String(length=200), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_by', sa.Uuid(), nullable=True),
    sa.Column('delivery_note', sa.String(length=2000), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['exam_order_id'], ['exam_orders.id'], name=op.f('fk_lab_reports_exam_order_id_exam_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['last_message_id'], ['inbound_messages.id'], name=op.f('fk_lab_reports_last_message_id_inbound_messages')),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_lab_reports_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_id'], ['api_clients.id'], name=op.f('fk_lab_reports_sender_id_api_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_lab_reports_visit_id_visits'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_reports')),
    sa.UniqueConstraint('sender_id', 'source_key', name=op.f('uq_lab_reports_sender_id_source_key'))
    )
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lab_reports_exam_order_id'), ['exam_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lab_reports_mother_id'), ['mother_id'], unique=False)
        batch_op.create_index('ix_lab_reports_unreconciled', ['received_at'], unique=False, postgresql_where=sa.text('mother_id IS NULL'), sqlite_where=sa.text('mother_id IS NULL'))

    op.create_table('critical_alerts',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('mother_id', sa.Uuid(), nullable=True),
    sa.Column('butler_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_critical_alerts_butler_id_butlers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_critical_alerts_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_critical_alerts_report_id_lab_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_critical_alerts'))
    )
    with op.batch_alter_table('critical_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_critical_alerts_open', ['due_at'], unique=False, postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_critical_alerts_report_id'), ['report_id'], unique=False)
        batch_op.create_index('uq_critical_alerts_open_per_report', ['report_id'], unique=True, postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))

    op.create_table('lab_observations',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.SmallInteger(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('code_system', sa.String(length=200), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('value_type', sa.String(length=5), nullable=False),
    sa.Column('value', sa.String(length=2000), nullable=True),
    sa.Column('numeric', sa.Float(), nullable=True),
    sa.Column('unit', sa.String(length=40), nullable=True),
    sa.Column('reference_range', sa.String(length=100), nullable=True),
    sa.Column('flag', sa.String(length=10), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('critical_reason', sa.String(length=200), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_lab_observations_report_id_lab_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_observations')),
    sa.UniqueConstraint('report_id', 'seq', name=op.f('uq_lab_observations_report_id_seq'))
    )
    with op.batch_alter_table('lab_observations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lab_observations_report_id'), ['report_id'], unique=False)

    op.create_table('report_events',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('pickup_state', sa.String(length=20), nullable=True),
    sa.Column('message_id', sa.Uuid(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_report_events_report_id_lab_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_events'))
    )
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_events_report_id'), ['report_id'], unique=False)

    _make_append_only("report_events")



def downgrade() -> None:
    _drop_append_only("report_events")
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_events_report_id'))

    op.drop_table('report_events')
    with op.batch_alter_table('lab_observations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lab_observations_report_id'))

    op.drop_table('lab_observations')
    with op.batch_alter_table('critical_alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_critical_alerts_open_per_report', postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_critical_alerts_report_id'))
        batch_op.drop_index('ix_critical_alerts_open', postgresql_where=sa.text('acknowledged_at IS NULL'), sqlite_where=sa.text('acknowledged_at IS NULL'))

    op.drop_table('critical_alerts')
    with op.batch_alter_table('lab_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_reports_unreconciled', postgresql_where=sa.text('mother_id IS NULL'), sqlite_where=sa.text('mother_id IS NULL'))
        batch_op.drop_index(batch_op.f('ix_lab_reports_mother_id'))
        batch_op.drop_index(batch_op.f('ix_lab_reports_exam_order_id'))

    op.drop_table('lab_reports')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('uq_inbound_messages_webhook_id', postgresql_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('webhook_id IS NOT NULL AND replay_of IS NULL'))
        batch_op.drop_index('uq_inbound_messages_sender_key', postgresql_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'), sqlite_where=sa.text('message_key IS NOT NULL AND replay_of IS NULL'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_received_at'))

    op.drop_table('inbound_messages')


# Same protection as the audit trail (revision 0001 created forbid_change() on PostgreSQL).
def _make_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION forbid_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
