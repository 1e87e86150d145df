"""clinical rules as data: their firings, pregnancy flags, critical alerts from a measurement (issue 16)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 18:17:00+00:00

rule_firings records each firing of a clinical rule with the rules' version, its inputs and
who decided what it suggested; pregnancy_flags the flags the firings raise, one open flag per
code and pregnancy. A critical alert may now be about a reading of hers (a blood pressure
>= 160/110) instead of a lab report: exactly one of report_id and measurement_id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("suggested", "confirmed", "dismissed", "recorded", "withdrawn")
OPEN_FLAG = "cleared_at IS NULL"
OPEN_ALERT = "acknowledged_at IS NULL AND voided_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "rule_firings",
        sa.Column("pregnancy_id", sa.Uuid(), nullable=False),
        sa.Column("mother_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=60), nullable=False),
        sa.Column("rules_version", sa.String(length=40), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=60), nullable=False),
        sa.Column("grade", sa.String(length=20), nullable=True),
        sa.Column("explanation", sa.String(length=1000), nullable=False),
        sa.Column("measurement_id", sa.Uuid(), nullable=True),
        sa.Column("report_id", sa.Uuid(), nullable=True),
        sa.Column("suggested_grade", sa.String(length=20), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="state", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=100), nullable=True),
        sa.Column("decided_by_role", sa.String(length=20), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=1000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "(state IN ('confirmed', 'dismissed', 'withdrawn')) = (decided_at IS NOT NULL)",
            name=op.f("ck_rule_firings_decision_has_time"),
        ),
        sa.CheckConstraint(
            "decided_at IS NULL OR decided_by_name IS NOT NULL",
            name=op.f("ck_rule_firings_decision_says_who"),
        ),
        sa.CheckConstraint(
            "measurement_id IS NULL OR report_id IS NULL",
            name=op.f("ck_rule_firings_one_source_at_most"),
        ),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.id"],
            name=op.f("fk_rule_firings_measurement_id_measurements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mother_id"],
            ["mothers.id"],
            name=op.f("fk_rule_firings_mother_id_mothers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["pregnancies.id"],
            name=op.f("fk_rule_firings_pregnancy_id_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["lab_reports.id"],
            name=op.f("fk_rule_firings_report_id_lab_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_firings")),
    )
    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rule_firings_measurement_id"), ["measurement_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rule_firings_mother_id"), ["mother_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rule_firings_pregnancy_id"), ["pregnancy_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rule_firings_report_id"), ["report_id"], unique=False)

    op.create_table(
        "pregnancy_flags",
        sa.Column("pregnancy_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("grade", sa.String(length=20), nullable=True),
        sa.Column("suggested", sa.Boolean(), nullable=False),
        sa.Column("firing_id", sa.Uuid(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.Uuid(), nullable=True),
        sa.Column("confirmed_by_name", sa.String(length=100), nullable=True),
        sa.Column("confirmed_by_role", sa.String(length=20), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=100), nullable=True),
        sa.Column("clear_reason", sa.String(length=300), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "cleared_at IS NULL OR (cleared_by IS NOT NULL AND clear_reason IS NOT NULL)",
            name=op.f("ck_pregnancy_flags_clearing_says_why"),
        ),
        sa.CheckConstraint(
            "confirmed_at IS NULL OR confirmed_by_name IS NOT NULL",
            name=op.f("ck_pregnancy_flags_confirmation_says_who"),
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"],
            ["rule_firings.id"],
            name=op.f("fk_pregnancy_flags_firing_id_rule_firings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["pregnancies.id"],
            name=op.f("fk_pregnancy_flags_pregnancy_id_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pregnancy_flags")),
    )
    with op.batch_alter_table("pregnancy_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pregnancy_flags_firing_id"), ["firing_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pregnancy_flags_pregnancy_id"), ["pregnancy_id"], unique=False)
        batch_op.create_index(
            "uq_pregnancy_flags_open_per_code",
            ["pregnancy_id", "code"],
            unique=True,
            postgresql_where=sa.text(OPEN_FLAG),
            sqlite_where=sa.text(OPEN_FLAG),
        )

    with op.batch_alter_table("critical_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measurement_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("report_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_index(batch_op.f("ix_critical_alerts_measurement_id"), ["measurement_id"], unique=False)
        batch_op.create_index(
            "uq_critical_alerts_open_per_measurement",
            ["measurement_id"],
            unique=True,
            postgresql_where=sa.text(OPEN_ALERT),
            sqlite_where=sa.text(OPEN_ALERT),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_critical_alerts_measurement_id_measurements"),
            "measurements",
            ["measurement_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            op.f("ck_critical_alerts_one_subject"), "(report_id IS NULL) <> (measurement_id IS NULL)"
        )


def downgrade() -> None:
    # Alerts about a reading have no report to hang on in the older schema: they go.
    op.execute("DELETE FROM worklist_items WHERE alert_id IN (SELECT id FROM critical_alerts WHERE report_id IS NULL)")
    op.execute("DELETE FROM critical_alerts WHERE report_id IS NULL")
    with op.batch_alter_table("critical_alerts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_critical_alerts_one_subject"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_critical_alerts_measurement_id_measurements"), type_="foreignkey")
        batch_op.drop_index(
            "uq_critical_alerts_open_per_measurement",
            postgresql_where=sa.text(OPEN_ALERT),
            sqlite_where=sa.text(OPEN_ALERT),
        )
        batch_op.drop_index(batch_op.f("ix_critical_alerts_measurement_id"))
        batch_op.alter_column("report_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("measurement_id")

    with op.batch_alter_table("pregnancy_flags", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_pregnancy_flags_open_per_code",
            postgresql_where=sa.text(OPEN_FLAG),
            sqlite_where=sa.text(OPEN_FLAG),
        )
        batch_op.drop_index(batch_op.f("ix_pregnancy_flags_pregnancy_id"))
        batch_op.drop_index(batch_op.f("ix_pregnancy_flags_firing_id"))
    op.drop_table("pregnancy_flags")

    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rule_firings_report_id"))
        batch_op.drop_index(batch_op.f("ix_rule_firings_pregnancy_id"))
        batch_op.drop_index(batch_op.f("ix_rule_firings_mother_id"))
        batch_op.drop_index(batch_op.f("ix_rule_firings_measurement_id"))
    op.drop_table("rule_firings")
