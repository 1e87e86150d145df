"""a withdrawn review is its own column (issue 16 review)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:30:00+00:00

RESERVED STUB: the helper who owns it fills it in.
"""

from collections.abc import Sequence

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
