"""her own page's per-day links, revocable (issue 17)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 11:00:00+00:00

One new table, nothing existing changes. A link stores only the SHA-256 of its token (the
token is in her QR code and nowhere else), expires at the end of the visit's day, and one per
visit is live: a new one is made by revoking the old.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_LINK = "revoked_at IS NULL"


def upgrade() -> None:
    op.create_table('her_visit_links',
    sa.Column('visit_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_name', sa.String(length=100), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_name', sa.String(length=100), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_her_visit_links_expires_after_created')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_her_visit_links_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_her_visit_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_her_visit_links_token_hash'))
    )
    with op.batch_alter_table('her_visit_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_her_visit_links_visit_id'), ['visit_id'], unique=False)
        batch_op.create_index('uq_her_visit_links_live', ['visit_id'], unique=True, postgresql_where=sa.text(LIVE_LINK), sqlite_where=sa.text(LIVE_LINK))


def downgrade() -> None:
    with op.batch_alter_table('her_visit_links', schema=None) as batch_op:
        batch_op.drop_index('uq_her_visit_links_live', postgresql_where=sa.text(LIVE_LINK), sqlite_where=sa.text(LIVE_LINK))
        batch_op.drop_index(batch_op.f('ix_her_visit_links_visit_id'))
    op.drop_table('her_visit_links')
