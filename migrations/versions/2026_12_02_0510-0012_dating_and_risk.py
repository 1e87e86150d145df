"""re-dating within limits (scan date, measurement, scan GA, IVF transfer) and risk grading by the 2017 rules (purple beside the colour, managed-case tasks)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
