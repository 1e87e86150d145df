"""a doctor's review of a final report, with advice and follow-up orders (issue 16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 18:19:00+00:00

Two new tables, nothing existing changes. Reports already final get no review item by this
migration: the doctors' list of reports to review (GET /v1/reports-to-review) is read from
the reports themselves, so they appear there at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_REVIEW = "superseded_at IS NULL"


def upgrade() -> None:
    op.create_table('report_reviews',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('report_version', sa.Integer(), nullable=False),
    sa.Column('report_status', sa.String(length=20), nullable=False),
    sa.Column('lab_message_id', sa.Uuid(), nullable=True),
    sa.Column('reviewer_id', sa.Uuid(), nullable=True),
    sa.Column('reviewer_name', sa.String(length=100), nullable=False),
    sa.Column('reviewer_role', sa.String(length=20), nullable=False),
    sa.Column('interpretation', sa.Text(), nullable=False),
    sa.Column('abnormal_items', sa.JSON(), nullable=False),
    sa.Column('abnormal_source', sa.Enum('lab_flags', 'doctor', name='abnormal_source', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('advice_for_mother', sa.Text(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('advice_task_id', sa.Uuid(), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_reason', sa.String(length=300), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("reviewer_role = 'doctor'", name=op.f('ck_report_reviews_reviewed_by_a_doctor')),
    sa.CheckConstraint("report_status IN ('final', 'corrected', 'amended', 'appended')", name=op.f('ck_report_reviews_of_a_released_report')),
    sa.CheckConstraint('length(interpretation) > 0 AND length(advice_for_mother) > 0', name=op.f('ck_report_reviews_interpretation_and_advice_given')),
    sa.CheckConstraint('superseded_at IS NULL OR superseded_reason IS NOT NULL', name=op.f('ck_report_reviews_superseded_says_why')),
    sa.CheckConstraint('report_version > 0', name=op.f('ck_report_reviews_report_version_positive')),
    sa.ForeignKeyConstraint(['report_id'], ['lab_reports.id'], name=op.f('fk_report_reviews_report_id_lab_reports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_report_reviews_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lab_message_id'], ['inbound_messages.id'], name=op.f('fk_report_reviews_lab_message_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['advice_task_id'], ['butler_tasks.id'], name=op.f('fk_report_reviews_advice_task_id_butler_tasks'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_reviews'))
    )
    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_reviews_report_id'), ['report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_reviews_mother_id'), ['mother_id'], unique=False)
        batch_op.create_index('uq_report_reviews_current', ['report_id'], unique=True, postgresql_where=sa.text(CURRENT_REVIEW), sqlite_where=sa.text(CURRENT_REVIEW))

    op.create_table('follow_up_orders',
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('repeat_test', 'see_nutritionist', 'call_mother', 'see_doctor', 'other', name='kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('exam_code', sa.String(length=64), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('task_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("kind <> 'repeat_test' OR exam_code IS NOT NULL", name=op.f('ck_follow_up_orders_repeat_names_the_test')),
    sa.CheckConstraint("kind <> 'other' OR note IS NOT NULL", name=op.f('ck_follow_up_orders_other_says_what')),
    sa.CheckConstraint('due_at >= created_at', name=op.f('ck_follow_up_orders_due_after_ordered')),
    sa.ForeignKeyConstraint(['review_id'], ['report_reviews.id'], name=op.f('fk_follow_up_orders_review_id_report_reviews'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_follow_up_orders_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['butler_tasks.id'], name=op.f('fk_follow_up_orders_task_id_butler_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up_orders')),
    sa.UniqueConstraint('task_id', name=op.f('uq_follow_up_orders_task_id'))
    )
    with op.batch_alter_table('follow_up_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follow_up_orders_review_id'), ['review_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_follow_up_orders_mother_id'), ['mother_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('follow_up_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follow_up_orders_mother_id'))
        batch_op.drop_index(batch_op.f('ix_follow_up_orders_review_id'))
    op.drop_table('follow_up_orders')
    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.drop_index('uq_report_reviews_current', postgresql_where=sa.text(CURRENT_REVIEW), sqlite_where=sa.text(CURRENT_REVIEW))
        batch_op.drop_index(batch_op.f('ix_report_reviews_mother_id'))
        batch_op.drop_index(batch_op.f('ix_report_reviews_report_id'))
    op.drop_table('report_reviews')
