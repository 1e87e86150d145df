"""a withdrawn review is its own column (issue 16 review)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:30:00+00:00

A review whose report was withdrawn (cancelled by the lab, detached by the desk, moved to
another patient) was marked only by a "withdrawn: …" prefix in superseded_reason, which no
query could tell from a review superseded by an amendment: the feed showed it as advice.
withdrawn_at / withdrawn_reason say it; a withdrawn review is also superseded (it is not the
report's current review), with the fixed reason "withdrawn". Existing rows carrying the prefix
are moved over; the downgrade puts the prefix back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "withdrawn: "
WITHDRAWN = "withdrawn"


def upgrade() -> None:
    with op.batch_alter_table("report_reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_reason", sa.String(length=300), nullable=True))
    op.execute(
        sa.text(
            "UPDATE report_reviews SET withdrawn_at = superseded_at, "
            "withdrawn_reason = substr(superseded_reason, :start), superseded_reason = :fixed "
            "WHERE superseded_at IS NOT NULL AND substr(superseded_reason, 1, :n) = :prefix"
        ).bindparams(start=len(PREFIX) + 1, fixed=WITHDRAWN, n=len(PREFIX), prefix=PREFIX)
    )
    with op.batch_alter_table("report_reviews", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_report_reviews_withdrawn_says_why_and_is_not_current"),
            "withdrawn_at IS NULL OR (withdrawn_reason IS NOT NULL AND superseded_at IS NOT NULL)",
        )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE report_reviews SET superseded_reason = substr(:prefix || withdrawn_reason, "
            "1, 300) WHERE withdrawn_at IS NOT NULL"
        ).bindparams(prefix=PREFIX)
    )
    with op.batch_alter_table("report_reviews", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_report_reviews_withdrawn_says_why_and_is_not_current"), type_="check"
        )
        batch_op.drop_column("withdrawn_reason")
        batch_op.drop_column("withdrawn_at")
