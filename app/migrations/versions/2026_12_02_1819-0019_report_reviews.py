"""a doctor's review of a final report, with advice and follow-up orders (issue 16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 18:19:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
