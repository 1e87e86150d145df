"""re-dating within limits (scan date, measurement, scan GA, IVF transfer) and risk grading by the 2017 rules (purple beside the colour, managed-case tasks)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:10:00+00:00

A stored grade 'purple' becomes the purple flag beside a colour. The colour is the last one
her history records before purple replaced it, at least yellow: the old single grade hid the
colour, and an unknown colour is not assumed to be low risk. A doctor is asked to re-assess
her (a worklist item), and the change is written to her risk history as the system's.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.core.database import UTCDateTime
from app.core.ids import uuid7

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_METHODS = "('lmp', 'ultrasound', 'reported')"
NEW_METHODS = "('lmp', 'ultrasound', 'reported', 'ivf')"
RANK = {"green": 0, "yellow": 1, "orange": 2, "red": 3}
MIGRATED_BY = "system (migration 0012)"


def upgrade() -> None:
    with op.batch_alter_table("pregnancies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purple", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("dating_scan_date", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "dating_scan_measurement",
                sa.Enum(
                    "crl",
                    "hc",
                    "biometry",
                    "unspecified",
                    name="dating_scan_measurement",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("dating_scan_value_mm", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("dating_scan_ga_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("ivf_transfer_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("ivf_embryo_age_days", sa.SmallInteger(), nullable=True))

    with op.batch_alter_table("risk_grade_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_purple", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("to_purple", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "decision",
                sa.Enum(
                    "initial",
                    "changed",
                    "confirmed",
                    "rule",
                    "migrated",
                    name="decision",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                server_default="changed",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("factors", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("changed_by_role", sa.String(length=20), nullable=True))

    if op.get_bind().dialect.name == "sqlite":  # the copied table lost its triggers
        _make_append_only("risk_grade_changes")

    _purple_beside_the_colour(datetime.now(UTC))

    with op.batch_alter_table("pregnancies", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pregnancies_dating_method"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_dating_method"), f"dating_method IN {NEW_METHODS}"
        )
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_risk_grade_is_a_colour"), "risk_grade <> 'purple'"
        )
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_dating_scan_complete"),
            "(dating_scan_date IS NULL AND dating_scan_measurement IS NULL"
            " AND dating_scan_ga_days IS NULL) OR (dating_scan_date IS NOT NULL"
            " AND dating_scan_measurement IS NOT NULL AND dating_scan_ga_days IS NOT NULL"
            " AND dating_scan_ga_days >= 0 AND dating_scan_ga_days <= 308)",
        )
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_ivf_complete"),
            "(ivf_transfer_date IS NULL AND ivf_embryo_age_days IS NULL)"
            " OR (ivf_transfer_date IS NOT NULL AND ivf_embryo_age_days >= 0"
            " AND ivf_embryo_age_days <= 7)",
        )
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_ivf_dating_has_transfer"),
            "dating_method <> 'ivf' OR ivf_transfer_date IS NOT NULL",
        )

    with op.batch_alter_table("pregnancy_dating_changes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "outcome",
                sa.Enum(
                    "dated",
                    "confirmed",
                    "redated",
                    "overridden",
                    "corrected",
                    "referred",
                    name="outcome",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("scan_date", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "scan_measurement",
                sa.Enum(
                    "crl",
                    "hc",
                    "biometry",
                    "unspecified",
                    name="scan_measurement",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("scan_value_mm", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("scan_ga_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("dated_ga_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("difference_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("threshold_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("ivf_transfer_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("ivf_embryo_age_days", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("changed_by_role", sa.String(length=20), nullable=True))
        batch_op.alter_column(
            "reason",
            existing_type=sa.VARCHAR(length=500),
            type_=sa.String(length=1000),
            existing_nullable=False,
        )
        batch_op.drop_constraint(op.f("ck_pregnancy_dating_changes_dating_method"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_pregnancy_dating_changes_dating_method"), f"dating_method IN {NEW_METHODS}"
        )
    if op.get_bind().dialect.name == "sqlite":  # the copied table lost its triggers
        _make_append_only("pregnancy_dating_changes")


def downgrade() -> None:
    _drop_append_only("pregnancy_dating_changes")
    _drop_append_only("risk_grade_changes")
    with op.batch_alter_table("pregnancies", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pregnancies_ivf_dating_has_transfer"), type_="check")
        batch_op.drop_constraint(op.f("ck_pregnancies_ivf_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_pregnancies_dating_scan_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_pregnancies_risk_grade_is_a_colour"), type_="check")
        batch_op.drop_constraint(op.f("ck_pregnancies_dating_method"), type_="check")
    # The old schema knows neither IVF dating nor reasons over 500 characters; purple was a grade.
    op.execute(
        "UPDATE pregnancy_dating_changes SET dating_method = 'reported' WHERE dating_method = 'ivf'"
    )
    op.execute(
        "UPDATE pregnancy_dating_changes SET reason = substr(reason, 1, 500) WHERE length(reason) > 500"
    )
    op.execute("UPDATE pregnancies SET dating_method = 'reported' WHERE dating_method = 'ivf'")
    op.execute("UPDATE pregnancies SET risk_grade = 'purple' WHERE purple")
    sqlite = op.get_bind().dialect.name == "sqlite"  # a copied table keeps a dropped column's CHECK
    with op.batch_alter_table("pregnancies", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_pregnancies_dating_method"), f"dating_method IN {OLD_METHODS}"
        )
        if sqlite:
            batch_op.drop_constraint(op.f("ck_pregnancies_dating_scan_measurement"), type_="check")
        batch_op.drop_column("ivf_embryo_age_days")
        batch_op.drop_column("ivf_transfer_date")
        batch_op.drop_column("dating_scan_ga_days")
        batch_op.drop_column("dating_scan_value_mm")
        batch_op.drop_column("dating_scan_measurement")
        batch_op.drop_column("dating_scan_date")
        batch_op.drop_column("purple")

    with op.batch_alter_table("pregnancy_dating_changes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pregnancy_dating_changes_dating_method"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_pregnancy_dating_changes_dating_method"), f"dating_method IN {OLD_METHODS}"
        )
        if sqlite:
            batch_op.drop_constraint(op.f("ck_pregnancy_dating_changes_outcome"), type_="check")
            batch_op.drop_constraint(
                op.f("ck_pregnancy_dating_changes_scan_measurement"), type_="check"
            )
        batch_op.alter_column(
            "reason",
            existing_type=sa.String(length=1000),
            type_=sa.VARCHAR(length=500),
            existing_nullable=False,
        )
        batch_op.drop_column("changed_by_role")
        batch_op.drop_column("ivf_embryo_age_days")
        batch_op.drop_column("ivf_transfer_date")
        batch_op.drop_column("threshold_days")
        batch_op.drop_column("difference_days")
        batch_op.drop_column("dated_ga_days")
        batch_op.drop_column("scan_ga_days")
        batch_op.drop_column("scan_value_mm")
        batch_op.drop_column("scan_measurement")
        batch_op.drop_column("scan_date")
        batch_op.drop_column("outcome")

    with op.batch_alter_table("risk_grade_changes", schema=None) as batch_op:
        if sqlite:
            batch_op.drop_constraint(op.f("ck_risk_grade_changes_decision"), type_="check")
        batch_op.drop_column("changed_by_role")
        batch_op.drop_column("factors")
        batch_op.drop_column("decision")
        batch_op.drop_column("to_purple")
        batch_op.drop_column("from_purple")
    _make_append_only("pregnancy_dating_changes")
    _make_append_only("risk_grade_changes")


def _purple_beside_the_colour(now: datetime) -> None:
    """Every stored 'purple' grade: the flag set, a colour chosen, the history told why, and a
    doctor asked to re-assess (NHFPC 2017: purple may stand beside any other colour)."""
    bind = op.get_bind()
    pregnancies = sa.table(
        "pregnancies",
        sa.column("id", sa.Uuid()),
        sa.column("mother_id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("risk_grade", sa.String()),
        sa.column("purple", sa.Boolean()),
    )
    changes = sa.table(
        "risk_grade_changes",
        sa.column("id", sa.Uuid()),
        sa.column("pregnancy_id", sa.Uuid()),
        sa.column("from_grade", sa.String()),
        sa.column("to_grade", sa.String()),
        sa.column("from_purple", sa.Boolean()),
        sa.column("to_purple", sa.Boolean()),
        sa.column("decision", sa.String()),
        sa.column("reason", sa.String()),
        sa.column("changed_by_id", sa.Uuid()),
        sa.column("changed_by_name", sa.String()),
        sa.column("changed_at", UTCDateTime()),
    )
    worklist = sa.table(
        "worklist_items",
        sa.column("id", sa.Uuid()),
        sa.column("audience", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("priority", sa.SmallInteger()),
        sa.column("title", sa.String()),
        sa.column("mother_id", sa.Uuid()),
        sa.column("created_at", UTCDateTime()),
    )
    rows = bind.execute(
        sa.select(pregnancies.c.id, pregnancies.c.mother_id, pregnancies.c.status).where(
            pregnancies.c.risk_grade == "purple"
        )
    ).all()
    for pregnancy_id, mother_id, status in rows:
        last = bind.execute(
            sa.select(changes.c.to_grade)
            .where(changes.c.pregnancy_id == pregnancy_id, changes.c.to_grade != "purple")
            .order_by(changes.c.changed_at.desc(), changes.c.id.desc())
            .limit(1)
        ).scalar()
        colour = last if last in RANK and RANK[last] > RANK["yellow"] else "yellow"
        bind.execute(
            pregnancies.update()
            .where(pregnancies.c.id == pregnancy_id)
            .values(risk_grade=colour, purple=True)
        )
        bind.execute(
            changes.insert().values(
                id=uuid7(),
                pregnancy_id=pregnancy_id,
                from_grade="purple",
                to_grade=colour,
                from_purple=None,
                to_purple=True,
                decision="migrated",
                reason=(
                    "NHFPC 2017: purple (infectious disease) stands beside the colour. The "
                    f"stored 'purple' became purple + {colour}: the last colour recorded before "
                    "it, at least yellow (an unknown colour is not assumed low); a doctor "
                    "re-assesses her."
                ),
                changed_by_id=None,
                changed_by_name=MIGRATED_BY,
                changed_at=now,
            )
        )
        if status == "active":
            bind.execute(
                worklist.insert().values(
                    id=uuid7(),
                    audience="doctor",
                    kind="risk.reassess",
                    priority=1,
                    title=(
                        "Re-assess her risk colour: purple now stands beside a colour "
                        f"(NHFPC 2017); {colour} was set until a doctor decides"
                    ),
                    mother_id=mother_id,
                    created_at=now,
                )
            )


# The dating history and the risk-grade history are append-only (migrations 0001, 0002).
def _make_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION forbid_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
