"""an unsigned plan version keeps its kind, note and author (issue 16 review)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 07:30:00+00:00

RESERVED STUB: the helper who owns it fills it in.
"""

from collections.abc import Sequence

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
