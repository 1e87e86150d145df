"""foundation: users, tokens, clients, audit, mothers, butlers

Revision ID: 0001
Revises:
Create Date: 2026-11-28 10:30:00.776545+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_clients',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.Enum('admin', 'front_desk', 'butler', 'doctor', 'station', 'lab_system', name='role', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('signing_secrets', sa.JSON(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_clients_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_clients_name'))
    )
    op.create_table('audit_events',
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=10), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_resource_type_resource_id'), ['resource_type', 'resource_id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('in_progress', 'completed', name='status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.JSON(), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_idempotency_keys_scope_key'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)

    op.create_table('users',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.Enum('admin', 'front_desk', 'butler', 'doctor', 'station', 'lab_system', name='role', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('auth_tokens',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=100), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_auth_tokens_token_hash'))
    )
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('butlers',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('max_caseload', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('max_caseload >= 0', name=op.f('ck_butlers_max_caseload_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_butlers_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_butlers')),
    sa.UniqueConstraint('user_id', name=op.f('uq_butlers_user_id'))
    )
    op.create_table('mothers',
    sa.Column('mrn', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('national_id', sa.String(length=18), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=False),
    sa.Column('primary_butler_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['primary_butler_id'], ['butlers.id'], name=op.f('fk_mothers_primary_butler_id_butlers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mothers')),
    sa.UniqueConstraint('mrn', name=op.f('uq_mothers_mrn')),
    sa.UniqueConstraint('national_id', name=op.f('uq_mothers_national_id'))
    )
    with op.batch_alter_table('mothers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mothers_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_mothers_primary_butler_id'), ['primary_butler_id'], unique=False)

    op.create_table('roster_shifts',
    sa.Column('butler_id', sa.Uuid(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('starts_at', sa.Time(), nullable=False),
    sa.Column('ends_at', sa.Time(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_roster_shifts_ends_after_start')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_roster_shifts_weekday_range')),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_roster_shifts_butler_id_butlers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_shifts')),
    sa.UniqueConstraint('butler_id', 'weekday', 'starts_at', name=op.f('uq_roster_shifts_butler_id_weekday_starts_at'))
    )
    with op.batch_alter_table('roster_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_shifts_butler_id'), ['butler_id'], unique=False)

    op.create_table('pregnancies',
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('active', 'closed', name='status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('lmp_date', sa.Date(), nullable=True),
    sa.Column('edd_date', sa.Date(), nullable=False),
    sa.Column('dating_method', sa.Enum('lmp', 'ultrasound', 'reported', name='dating_method', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('gravida', sa.SmallInteger(), nullable=False),
    sa.Column('para', sa.SmallInteger(), nullable=False),
    sa.Column('risk_grade', sa.Enum('green', 'yellow', 'orange', 'red', 'purple', name='risk_grade', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('gravida >= 1 AND gravida <= 30', name=op.f('ck_pregnancies_gravida_range')),
    sa.CheckConstraint('para >= 0 AND para < gravida', name=op.f('ck_pregnancies_para_below_gravida')),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_pregnancies_mother_id_mothers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pregnancies'))
    )
    with op.batch_alter_table('pregnancies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pregnancies_edd_date'), ['edd_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_pregnancies_mother_id'), ['mother_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pregnancies_risk_grade'), ['risk_grade'], unique=False)
        batch_op.create_index('uq_pregnancies_one_active_per_mother', ['mother_id'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    op.create_table('risk_grade_changes',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('from_grade', sa.Enum('green', 'yellow', 'orange', 'red', 'purple', name='from_grade', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('to_grade', sa.Enum('green', 'yellow', 'orange', 'red', 'purple', name='to_grade', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('changed_by_id', sa.Uuid(), nullable=True),
    sa.Column('changed_by_name', sa.String(length=100), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_risk_grade_changes_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_grade_changes'))
    )
    with op.batch_alter_table('risk_grade_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_grade_changes_pregnancy_id'), ['pregnancy_id'], unique=False)

    _make_append_only("audit_events")
    _make_append_only("risk_grade_changes")


def downgrade() -> None:
    _drop_append_only("risk_grade_changes")
    _drop_append_only("audit_events")
    with op.batch_alter_table('risk_grade_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_grade_changes_pregnancy_id'))

    op.drop_table('risk_grade_changes')
    with op.batch_alter_table('pregnancies', schema=None) as batch_op:
        batch_op.drop_index('uq_pregnancies_one_active_per_mother', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.drop_index(batch_op.f('ix_pregnancies_risk_grade'))
        batch_op.drop_index(batch_op.f('ix_pregnancies_mother_id'))
        batch_op.drop_index(batch_op.f('ix_pregnancies_edd_date'))

    op.drop_table('pregnancies')
    with op.batch_alter_table('roster_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_shifts_butler_id'))

    op.drop_table('roster_shifts')
    with op.batch_alter_table('mothers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mothers_primary_butler_id'))
        batch_op.drop_index(batch_op.f('ix_mothers_phone'))

    op.drop_table('mothers')
    op.drop_table('butlers')
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_tokens_user_id'))

    op.drop_table('auth_tokens')
    op.drop_table('users')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_resource_type_resource_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_actor_id'))

    op.drop_table('audit_events')
    op.drop_table('api_clients')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS forbid_change()")


# The audit trail and the risk-grade history are append-only, enforced by the database itself.
def _make_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'raise_exception';
            END $$
            """
        )
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
