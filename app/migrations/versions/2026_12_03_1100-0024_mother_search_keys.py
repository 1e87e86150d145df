"""the mothers' search keys (pinyin, initials, phone's last four, MRN folded) and their indexes (issue 17)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 11:00:00+00:00

Reserved; filled in by the work that owns it.
"""

from collections.abc import Sequence

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
