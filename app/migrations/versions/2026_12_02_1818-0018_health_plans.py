"""health-management plans, their versions and the nutrition assessment (issue 16)

Adds her plan (one per pregnancy) with every version kept, a signed version never changing
(triggers refuse an UPDATE or DELETE of a signed version, and any change to a version's
sections or inputs), the nutrition assessments, and the nutrition-assessment exam with its
station (NUT), weighed first: vitals before the assessment (SPEC "Exam constraints").

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 18:18:00+00:00
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

import sqlalchemy as sa
from alembic import op


DATA = Path(__file__).resolve().parent.parent / "data" / "0018_nutrition_assessment.json"

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_plans",
        sa.Column("pregnancy_id", sa.Uuid(), nullable=False),
        sa.Column("mother_id", sa.Uuid(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("signed_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "latest_version >= 1", name=op.f("ck_health_plans_latest_version_positive")
        ),
        sa.CheckConstraint(
            "signed_version IS NULL OR (signed_version >= 1 AND signed_version <= latest_version)",
            name=op.f("ck_health_plans_signed_version_known"),
        ),
        sa.ForeignKeyConstraint(
            ["mother_id"],
            ["mothers.id"],
            name=op.f("fk_health_plans_mother_id_mothers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["pregnancies.id"],
            name=op.f("fk_health_plans_pregnancy_id_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_plans")),
        sa.UniqueConstraint("pregnancy_id", name=op.f("uq_health_plans_pregnancy_id")),
    )
    with op.batch_alter_table("health_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_health_plans_mother_id"), ["mother_id"], unique=False)

    op.create_table(
        "health_plan_versions",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("change_note", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_name", sa.String(length=100), nullable=False),
        sa.Column("created_by_role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_by_id", sa.Uuid(), nullable=True),
        sa.Column("signed_by_name", sa.String(length=100), nullable=True),
        sa.Column("signed_by_role", sa.String(length=20), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('generated', 'changed', 'assessment')",
            name=op.f("ck_health_plan_versions_kind_known"),
        ),
        sa.CheckConstraint(
            "length(change_note) > 0", name=op.f("ck_health_plan_versions_change_note_given")
        ),
        sa.CheckConstraint(
            "(signed_at IS NULL AND signed_by_name IS NULL AND signed_by_role IS NULL) OR (signed_at IS NOT NULL AND signed_by_name IS NOT NULL AND signed_by_role IN ('doctor', 'nutritionist'))",
            name=op.f("ck_health_plan_versions_signed_by_a_clinician"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_health_plan_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["health_plans.id"],
            name=op.f("fk_health_plan_versions_plan_id_health_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_plan_versions")),
        sa.UniqueConstraint(
            "plan_id", "version", name=op.f("uq_health_plan_versions_plan_id_version")
        ),
    )
    with op.batch_alter_table("health_plan_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_plan_versions_plan_id"), ["plan_id"], unique=False
        )

    op.create_table(
        "nutrition_assessments",
        sa.Column("pregnancy_id", sa.Uuid(), nullable=False),
        sa.Column("mother_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=True),
        sa.Column("ga_days", sa.Integer(), nullable=False),
        sa.Column("diet", sa.String(length=2000), nullable=False),
        sa.Column("activity", sa.String(length=1000), nullable=False),
        sa.Column("supplements", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("bmi", sa.Float(), nullable=True),
        sa.Column("bmi_group", sa.String(length=20), nullable=True),
        sa.Column("gwg_table", sa.String(length=40), nullable=True),
        sa.Column("gain_kg", sa.Float(), nullable=True),
        sa.Column("gwg_status", sa.String(length=20), nullable=True),
        sa.Column("diabetes", sa.String(length=20), nullable=True),
        sa.Column("plan_version_id", sa.Uuid(), nullable=True),
        sa.Column("assessed_by_id", sa.Uuid(), nullable=True),
        sa.Column("assessed_by_name", sa.String(length=100), nullable=False),
        sa.Column("assessed_by_role", sa.String(length=20), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "assessed_by_role IN ('doctor', 'nutritionist')",
            name=op.f("ck_nutrition_assessments_assessed_by_a_clinician"),
        ),
        sa.CheckConstraint(
            "diabetes IS NULL OR diabetes IN ('gdm', 'overt_diabetes')",
            name=op.f("ck_nutrition_assessments_diabetes_known"),
        ),
        sa.CheckConstraint("length(diet) > 0", name=op.f("ck_nutrition_assessments_diet_given")),
        sa.CheckConstraint(
            "gwg_status IS NULL OR gwg_status IN ('below', 'within', 'above')",
            name=op.f("ck_nutrition_assessments_gwg_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["mother_id"],
            ["mothers.id"],
            name=op.f("fk_nutrition_assessments_mother_id_mothers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_version_id"],
            ["health_plan_versions.id"],
            name=op.f("fk_nutrition_assessments_plan_version_id_health_plan_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["pregnancies.id"],
            name=op.f("fk_nutrition_assessments_pregnancy_id_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_nutrition_assessments_visit_id_visits"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nutrition_assessments")),
    )
    with op.batch_alter_table("nutrition_assessments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nutrition_assessments_pregnancy_id"), ["pregnancy_id"], unique=False
        )

    _guard_signed_versions()
    _add_station_and_exam()


# A version's content never changes; once signed, nothing about it does (not even deletion).
# Signing an unsigned version (setting its signed_* columns) is the one update allowed.
_PG_GUARD = """
CREATE FUNCTION health_plan_version_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'health_plan_versions: version % is signed and never changes', OLD.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.sections::text IS DISTINCT FROM OLD.sections::text
            OR NEW.inputs::text IS DISTINCT FROM OLD.inputs::text
            OR NEW.version IS DISTINCT FROM OLD.version
            OR NEW.plan_id IS DISTINCT FROM OLD.plan_id) THEN
        RAISE EXCEPTION 'health_plan_versions: a change is a new version'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def _guard_signed_versions() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(
            "CREATE TRIGGER health_plan_versions_guard BEFORE UPDATE OR DELETE ON "
            "health_plan_versions FOR EACH ROW EXECUTE FUNCTION health_plan_version_guard()"
        )
    else:
        op.execute(
            "CREATE TRIGGER health_plan_versions_no_update BEFORE UPDATE ON health_plan_versions "
            "WHEN OLD.signed_at IS NOT NULL OR NEW.sections IS NOT OLD.sections "
            "OR NEW.inputs IS NOT OLD.inputs OR NEW.version IS NOT OLD.version "
            "OR NEW.plan_id IS NOT OLD.plan_id "
            "BEGIN SELECT RAISE(ABORT, 'health_plan_versions: a signed version never changes; "
            "a change is a new version'); END"
        )
        op.execute(
            "CREATE TRIGGER health_plan_versions_no_delete BEFORE DELETE ON health_plan_versions "
            "WHEN OLD.signed_at IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'health_plan_versions: a signed version never changes'); "
            "END"
        )


def _add_station_and_exam() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    bind = op.get_bind()
    now = datetime.now(UTC)
    stations = sa.table(
        "stations",
        sa.column("id", sa.Uuid()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("station_type", sa.String()),
        sa.column("servers", sa.SmallInteger()),
        sa.column("opens_at", sa.Time()),
        sa.column("closes_at", sa.Time()),
        sa.column("is_open", sa.Boolean()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("version", sa.Integer()),
    )
    exam_types = sa.table(
        "exam_types",
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("station_type", sa.String()),
        sa.column("position", sa.SmallInteger()),
        sa.column("fasting", sa.Boolean()),
        sa.column("after_meal", sa.Boolean()),
        sa.column("last", sa.Boolean()),
        sa.column("precedence", sa.JSON()),
        sa.column("sequence", sa.JSON()),
        sa.column("default_service_minutes", sa.Float()),
        sa.column("learned_samples", sa.Integer()),
        sa.column("turnaround_minutes", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("version", sa.Integer()),
    )
    # A hospital that already made one of these keeps its own.
    taken_stations = set(bind.execute(sa.text("SELECT code FROM stations")).scalars())
    rows = [
        {
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"station:{s['code']}"),
            "code": s["code"],
            "name": s["name"],
            "station_type": s["station_type"],
            "servers": s["servers"],
            "opens_at": time(7, 30),
            "closes_at": time(17, 30),
            "is_open": True,
            "updated_at": now,
            "version": 1,
        }
        for s in data["stations"]
        if s["code"] not in taken_stations
    ]
    if rows:
        op.bulk_insert(stations, rows)
    last = bind.execute(sa.text("SELECT COALESCE(MAX(position), 0) FROM exam_types")).scalar_one()
    taken = set(bind.execute(sa.text("SELECT code FROM exam_types")).scalars())
    exams = [
        {
            "code": e["code"],
            "name": e["name"],
            "station_type": e["station_type"],
            "position": last + i,
            "fasting": False,
            "after_meal": False,
            "last": False,
            "precedence": e.get("precedence", []),
            "sequence": [],
            "default_service_minutes": float(e["minutes"]),
            "learned_samples": 0,
            "turnaround_minutes": 0,
            "updated_at": now,
            "version": 1,
        }
        for i, e in enumerate((e for e in data["exam_types"] if e["code"] not in taken), start=1)
    ]
    if exams:
        op.bulk_insert(exam_types, exams)


def downgrade() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    bind = op.get_bind()
    bind.execute(
        sa.text("DELETE FROM exam_types WHERE code IN :codes").bindparams(
            sa.bindparam("codes", expanding=True)
        ),
        {"codes": [e["code"] for e in data["exam_types"]]},
    )
    bind.execute(
        sa.text("DELETE FROM stations WHERE code IN :codes").bindparams(
            sa.bindparam("codes", expanding=True)
        ),
        {"codes": [s["code"] for s in data["stations"]]},
    )
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS health_plan_versions_guard ON health_plan_versions")
        op.execute("DROP FUNCTION IF EXISTS health_plan_version_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS health_plan_versions_no_update")
        op.execute("DROP TRIGGER IF EXISTS health_plan_versions_no_delete")
    with op.batch_alter_table("nutrition_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nutrition_assessments_pregnancy_id"))
    op.drop_table("nutrition_assessments")
    with op.batch_alter_table("health_plan_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_plan_versions_plan_id"))
    op.drop_table("health_plan_versions")
    with op.batch_alter_table("health_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_plans_mother_id"))
    op.drop_table("health_plans")
