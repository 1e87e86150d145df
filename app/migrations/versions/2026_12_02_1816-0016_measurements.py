"""measurements: weight, blood pressure, fetal heart rate and the rest, with corrections (issue 16)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:16:00+00:00

One row a reading, in its canonical unit, with what was entered beside it. Rows are never
edited: a correction is a new row naming the one it replaces (at most one), and the replaced
row is marked superseded with who corrected it and why.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "height",
    "pre_pregnancy_weight",
    "weight",
    "blood_pressure",
    "pulse",
    "fundal_height",
    "fetal_heart_rate",
    "urine_protein",
    "nst",
)
SOURCES = ("enrolment", "station", "doctor", "nutritionist", "butler")


def upgrade() -> None:
    op.create_table(
        "measurements",
        sa.Column("mother_id", sa.Uuid(), nullable=False),
        sa.Column("pregnancy_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(*KINDS, name="kind", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("value2", sa.Float(), nullable=True),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("entered", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ga_days", sa.SmallInteger(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(*SOURCES, name="source", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("reported_by_mother", sa.Boolean(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by_name", sa.String(length=100), nullable=False),
        sa.Column("recorded_by_role", sa.String(length=20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrects_id", sa.Uuid(), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_name", sa.String(length=100), nullable=True),
        sa.Column("correction_reason", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'blood_pressure') = (value2 IS NOT NULL)",
            name=op.f("ck_measurements_diastolic_for_bp_only"),
        ),
        sa.CheckConstraint(
            "kind <> 'blood_pressure' OR value > value2",
            name=op.f("ck_measurements_systolic_above"),
        ),
        sa.CheckConstraint(
            "(kind IN ('urine_protein', 'nst')) = (result IS NOT NULL)",
            name=op.f("ck_measurements_result_for_tests"),
        ),
        sa.CheckConstraint(
            "source <> 'butler' OR reported_by_mother",
            name=op.f("ck_measurements_butler_reports_for_mother"),
        ),
        sa.CheckConstraint(
            "ga_days IS NULL OR (ga_days >= 0 AND ga_days <= 320)",
            name=op.f("ck_measurements_ga_range"),
        ),
        sa.CheckConstraint(
            "(superseded_at IS NULL) = (superseded_by_name IS NULL)",
            name=op.f("ck_measurements_superseded_by_whom"),
        ),
        sa.CheckConstraint(
            "corrects_id IS NULL OR length(correction_reason) > 0",
            name=op.f("ck_measurements_correction_has_reason"),
        ),
        sa.CheckConstraint(
            "corrects_id IS NULL OR corrects_id <> id",
            name=op.f("ck_measurements_not_self_correcting"),
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["measurements.id"],
            name=op.f("fk_measurements_corrects_id_measurements"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["mother_id"],
            ["mothers.id"],
            name=op.f("fk_measurements_mother_id_mothers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["pregnancies.id"],
            name=op.f("fk_measurements_pregnancy_id_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_measurements_visit_id_visits"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measurements_mother_id"), ["mother_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_measurements_visit_id"), ["visit_id"], unique=False)
        batch_op.create_index(
            "ix_measurements_pregnancy_id_kind_measured_at",
            ["pregnancy_id", "kind", "measured_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_measurements_corrects_id",
            ["corrects_id"],
            unique=True,
            postgresql_where=sa.text("corrects_id IS NOT NULL"),
            sqlite_where=sa.text("corrects_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index("uq_measurements_corrects_id")
        batch_op.drop_index("ix_measurements_pregnancy_id_kind_measured_at")
        batch_op.drop_index(batch_op.f("ix_measurements_visit_id"))
        batch_op.drop_index(batch_op.f("ix_measurements_mother_id"))
    op.drop_table("measurements")
