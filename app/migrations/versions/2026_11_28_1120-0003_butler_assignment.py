"""butler assignment: care periods (primary and cover) and leave

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:02:14.102055+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('butler_leaves',
    sa.Column('butler_id', sa.Uuid(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_butler_leaves_ends_after_start')),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_butler_leaves_butler_id_butlers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_butler_leaves'))
    )
    with op.batch_alter_table('butler_leaves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_butler_leaves_butler_id'), ['butler_id'], unique=False)

    op.create_table('care_assignments',
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('butler_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.Enum('primary', 'cover', name='role', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('visit_id', sa.Uuid(), nullable=True),
    sa.Column('valid_on', sa.Date(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('ended_reason', sa.String(length=500), nullable=True),
    sa.Column('assigned_by_name', sa.String(length=100), nullable=False),
    sa.Column('flagged_reason', sa.String(length=300), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("(role = 'cover') = (visit_id IS NOT NULL AND valid_on IS NOT NULL)", name=op.f('ck_care_assignments_cover_has_visit_day')),
    sa.ForeignKeyConstraint(['butler_id'], ['butlers.id'], name=op.f('fk_care_assignments_butler_id_butlers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_care_assignments_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_care_assignments_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_assignments'))
    )
    with op.batch_alter_table('care_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_assignments_butler_id_role_ends_at'), ['butler_id', 'role', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_care_assignments_mother_id'), ['mother_id'], unique=False)
        batch_op.create_index('uq_care_assignments_one_active_cover_per_visit', ['visit_id'], unique=True, postgresql_where=sa.text("role = 'cover' AND ends_at IS NULL"), sqlite_where=sa.text("role = 'cover' AND ends_at IS NULL"))
        batch_op.create_index('uq_care_assignments_one_active_primary', ['mother_id'], unique=True, postgresql_where=sa.text("role = 'primary' AND ends_at IS NULL"), sqlite_where=sa.text("role = 'primary' AND ends_at IS NULL"))

    # Mothers already linked to a butler get an open primary period, so the history starts there.
    new_id = "gen_random_uuid()" if op.get_bind().dialect.name == "postgresql" else "lower(hex(randomblob(16)))"
    op.execute(
        "INSERT INTO care_assignments (id, mother_id, butler_id, role, starts_at, reason, assigned_by_name) "
        f"SELECT {new_id}, id, primary_butler_id, 'primary', created_at, "
        "'linked before assignment history was kept', 'migration 0003' "
        "FROM mothers WHERE primary_butler_id IS NOT NULL"
    )



def downgrade() -> None:
    with op.batch_alter_table('care_assignments', schema=None) as batch_op:
        batch_op.drop_index('uq_care_assignments_one_active_primary', postgresql_where=sa.text("role = 'primary' AND ends_at IS NULL"), sqlite_where=sa.text("role = 'primary' AND ends_at IS NULL"))
        batch_op.drop_index('uq_care_assignments_one_active_cover_per_visit', postgresql_where=sa.text("role = 'cover' AND ends_at IS NULL"), sqlite_where=sa.text("role = 'cover' AND ends_at IS NULL"))
        batch_op.drop_index(batch_op.f('ix_care_assignments_mother_id'))
        batch_op.drop_index(batch_op.f('ix_care_assignments_butler_id_role_ends_at'))

    op.drop_table('care_assignments')
    with op.batch_alter_table('butler_leaves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_butler_leaves_butler_id'))

    op.drop_table('butler_leaves')
