"""stations and exam types named in Chinese and English (issue 17)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 12:00:00+00:00

Reserved; filled in by the work that owns it.
"""

from collections.abc import Sequence

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
