"""the OGTT timed from the glucose drink; preparation text the day before

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:30:00+00:00

The OGTT's 1- and 2-hour draws count from the start of the glucose drink, which the blood-draw
station records (CMA 2014 GDM guideline: "从开始饮用葡萄糖水计算时间"), not from the end of the
fasting draw: the catalogue's OGTT sequence gets ``"from": "glucose_drink"`` on its timed steps,
and so do the steps already planned whose fasting draw has not been done yet. A test already
under way at the upgrade keeps the timing it started with (its draws are queued already).
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT = "glucose_drink"
OGTT = "ogtt"

exam_types = sa.table("exam_types", sa.column("code", sa.String), sa.column("sequence", sa.JSON))


def _timed_steps(sequence: Any, *, event: str | None) -> list[dict[str, Any]]:
    """The sequence with ``from`` set to ``event`` on its timed steps (or removed)."""
    items = json.loads(sequence) if isinstance(sequence, str) else list(sequence or [])
    out = []
    for item in items:
        item = dict(item)
        item.pop("from", None)
        if event is not None and int(item.get("offset_minutes", 0)) > 0:
            item["from"] = event
        out.append(item)
    return out


def _set_catalogue(event: str | None) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(exam_types.c.code, exam_types.c.sequence).where(exam_types.c.code == OGTT)
    ).all()
    for code, sequence in rows:
        bind.execute(
            exam_types.update()
            .where(exam_types.c.code == code)
            .values(sequence=_timed_steps(sequence, event=event))
        )


def upgrade() -> None:
    op.create_table(
        "preparation_notices",
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("outbox_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('ogtt_preparation')", name=op.f("ck_preparation_notices_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_messages.id"],
            name=op.f("fk_preparation_notices_outbox_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_preparation_notices_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preparation_notices")),
        sa.UniqueConstraint(
            "visit_id",
            "visit_date",
            "kind",
            name=op.f("uq_preparation_notices_visit_id_visit_date_kind"),
        ),
    )
    with op.batch_alter_table("preparation_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_preparation_notices_visit_id"), ["visit_id"], unique=False
        )

    with op.batch_alter_table("exam_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timed_from", sa.String(length=30), nullable=True))
        batch_op.add_column(
            sa.Column("timing_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("timing_recorded_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("timing_recorded_by_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("timing_recorded_by_name", sa.String(length=100), nullable=True)
        )
        batch_op.create_check_constraint(
            op.f("ck_exam_steps_timed_from_known"),
            "timed_from IS NULL OR (offset_minutes > 0 AND timed_from IN ('glucose_drink'))",
        )
        batch_op.create_check_constraint(
            op.f("ck_exam_steps_timing_start_recorded"),
            "(timing_started_at IS NULL AND timing_recorded_at IS NULL"
            " AND timing_recorded_by_name IS NULL)"
            " OR (timing_started_at IS NOT NULL AND timing_recorded_at IS NOT NULL"
            " AND timing_recorded_by_name IS NOT NULL AND offset_minutes = 0"
            " AND state = 'done')",
        )

    _set_catalogue(EVENT)
    # Steps planned before the upgrade whose fasting draw is still to come: timed from the drink.
    op.execute(
        sa.text(
            "UPDATE exam_steps SET timed_from = :event"
            " WHERE exam_code = :code AND offset_minutes > 0 AND state = 'pending'"
            " AND order_id IN (SELECT order_id FROM exam_steps"
            " WHERE exam_code = :code AND offset_minutes = 0 AND state = 'pending')"
        ).bindparams(event=EVENT, code=OGTT)
    )


def downgrade() -> None:
    _set_catalogue(None)
    with op.batch_alter_table("exam_steps", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_exam_steps_timing_start_recorded"), type_="check")
        batch_op.drop_constraint(op.f("ck_exam_steps_timed_from_known"), type_="check")
        batch_op.drop_column("timing_recorded_by_name")
        batch_op.drop_column("timing_recorded_by_id")
        batch_op.drop_column("timing_recorded_at")
        batch_op.drop_column("timing_started_at")
        batch_op.drop_column("timed_from")

    with op.batch_alter_table("preparation_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_preparation_notices_visit_id"))

    op.drop_table("preparation_notices")
