"""the nutritionist: a role of her own (issue 16)

The clinic's nutritionist assesses a mother's diet and weight gain and signs the nutrition
section of her health-management plan. Her account gets its own role, so that what she may do
(assess, sign a plan) is not every doctor's route widened, nor a doctor's account lent to her.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("admin", "front_desk", "butler", "doctor", "station", "lab_system")
AFTER = ("admin", "front_desk", "butler", "doctor", "station", "nutritionist", "lab_system")


def _role_check(values: Sequence[str]) -> str:
    return "role IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _set_roles(values: Sequence[str]) -> None:
    for table in ("users", "api_clients"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_role"), type_="check")
            batch_op.create_check_constraint(op.f(f"ck_{table}_role"), _role_check(values))


def upgrade() -> None:
    _set_roles(AFTER)


def downgrade() -> None:
    users = sa.table("users", sa.column("role", sa.String), sa.column("is_active", sa.Boolean))
    # A nutritionist's account cannot exist without her role: it is switched off and shown as
    # a doctor's so that the older schema holds it; an admin decides what becomes of it.
    op.execute(
        users.update()
        .where(users.c.role == "nutritionist")
        .values(role="doctor", is_active=False)
    )
    _set_roles(BEFORE)
