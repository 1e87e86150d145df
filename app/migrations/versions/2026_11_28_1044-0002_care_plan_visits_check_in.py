"""care plan, clinic sessions, visits, check-in, exam orders, outbox, dating history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:44:31.508551+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('clinic_sessions',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('session_date', sa.Date(), nullable=False),
    sa.Column('starts_at', sa.Time(), nullable=False),
    sa.Column('ends_at', sa.Time(), nullable=False),
    sa.Column('per_hour', sa.SmallInteger(), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_clinic_sessions_ends_after_start')),
    sa.CheckConstraint('per_hour > 0', name=op.f('ck_clinic_sessions_per_hour_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinic_sessions'))
    )
    with op.batch_alter_table('clinic_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clinic_sessions_session_date'), ['session_date'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('topic', sa.String(length=60), nullable=False),
    sa.Column('butler_id', sa.Uuid(), nullable=True),
    sa.Column('mother_id', sa.Uuid(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_outbox_messages_butler_id_butlers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_outbox_messages_mother_id_mothers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_butler_id'), ['butler_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_mother_id'), ['mother_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_pending', ['created_at'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'), sqlite_where=sa.text('dispatched_at IS NULL'))

    op.create_table('pregnancy_dating_changes',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('lmp_date', sa.Date(), nullable=True),
    sa.Column('edd_date', sa.Date(), nullable=False),
    sa.Column('dating_method', sa.Enum('lmp', 'ultrasound', 'reported', name='dating_method', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('previous_edd_date', sa.Date(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('changed_by_id', sa.Uuid(), nullable=True),
    sa.Column('changed_by_name', sa.String(length=100), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_pregnancy_dating_changes_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pregnancy_dating_changes'))
    )
    with op.batch_alter_table('pregnancy_dating_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pregnancy_dating_changes_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('visits',
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slot_start', sa.Time(), nullable=False),
    sa.Column('window_code', sa.String(length=20), nullable=True),
    sa.Column('status', sa.Enum('booked', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show', name='status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('walk_in', sa.Boolean(), nullable=False),
    sa.Column('accompanying_butler_id', sa.Uuid(), nullable=True),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['accompanying_butler_id'], ['butlers.id'], name=op.f('fk_visits_accompanying_butler_id_butlers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_visits_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_visits_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['clinic_sessions.id'], name=op.f('fk_visits_session_id_clinic_sessions'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits'))
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visits_accompanying_butler_id'), ['accompanying_butler_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_pregnancy_id'), ['pregnancy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_visit_date'), ['visit_date'], unique=False)
        batch_op.create_index('uq_visits_one_active_per_mother_day', ['mother_id', 'visit_date'], unique=True, postgresql_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"), sqlite_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"))

    op.create_table('exam_orders',
    sa.Column('order_number', sa.String(length=32), nullable=False),
    sa.Column('visit_id', sa.Uuid(), nullable=False),
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('exam_code', sa.String(length=40), nullable=False),
    sa.Column('exam_name', sa.String(length=120), nullable=False),
    sa.Column('fasting', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('ordered_by_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("source IN ('care_plan', 'added')", name=op.f('ck_exam_orders_source_known')),
    sa.CheckConstraint("status IN ('ordered', 'done', 'cancelled')", name=op.f('ck_exam_orders_status_known')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_exam_orders_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_exam_orders_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_orders')),
    sa.UniqueConstraint('order_number', name=op.f('uq_exam_orders_order_number')),
    sa.UniqueConstraint('visit_id', 'exam_code', name=op.f('uq_exam_orders_visit_id_exam_code'))
    )
    with op.batch_alter_table('exam_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_orders_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('visit_status_changes',
    sa.Column('visit_id', sa.Uuid(), nullable=False),
    sa.Column('from_status', sa.Enum('booked', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show', name='from_status', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('to_status', sa.Enum('booked', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show', name='to_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_visit_status_changes_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_status_changes'))
    )
    with op.batch_alter_table('visit_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_status_changes_visit_id'), ['visit_id'], unique=False)

    # Existing pregnancies follow the default table (the 2018 Chinese guideline).
    with op.batch_alter_table('pregnancies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('care_plan_code', sa.String(length=40), nullable=True))
    op.execute("UPDATE pregnancies SET care_plan_code = 'cn-2018'")
    with op.batch_alter_table('pregnancies', schema=None) as batch_op:
        batch_op.alter_column('care_plan_code', existing_type=sa.String(length=40), nullable=False)

    _make_append_only("visit_status_changes")
    _make_append_only("pregnancy_dating_changes")



def downgrade() -> None:
    _drop_append_only("pregnancy_dating_changes")
    _drop_append_only("visit_status_changes")
    with op.batch_alter_table('pregnancies', schema=None) as batch_op:
        batch_op.drop_column('care_plan_code')

    with op.batch_alter_table('visit_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_status_changes_visit_id'))

    op.drop_table('visit_status_changes')
    with op.batch_alter_table('exam_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_orders_pregnancy_id'))

    op.drop_table('exam_orders')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('uq_visits_one_active_per_mother_day', postgresql_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"), sqlite_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"))
        batch_op.drop_index(batch_op.f('ix_visits_visit_date'))
        batch_op.drop_index(batch_op.f('ix_visits_session_id'))
        batch_op.drop_index(batch_op.f('ix_visits_pregnancy_id'))
        batch_op.drop_index(batch_op.f('ix_visits_accompanying_butler_id'))

    op.drop_table('visits')
    with op.batch_alter_table('pregnancy_dating_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pregnancy_dating_changes_pregnancy_id'))

    op.drop_table('pregnancy_dating_changes')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_pending', postgresql_where=sa.text('dispatched_at IS NULL'), sqlite_where=sa.text('dispatched_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_outbox_messages_mother_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_messages_butler_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('clinic_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clinic_sessions_session_date'))

    op.drop_table('clinic_sessions')


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
