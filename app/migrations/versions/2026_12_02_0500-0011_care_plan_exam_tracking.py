"""the care plan tracks each exam: due, ordered, resulted, declined or missed; offers and choices; results from elsewhere

Adds her screening choices, declined exams, results from elsewhere and doctor-recorded
indications, and the exam types the care plan now orders (thalassaemia, anti-D titre,
ferritin, chorionicity, prenatal diagnosis, urine culture) to the queue catalogue, placed
after the existing ones. Nothing existing changes: a plan is computed from these and the
exam orders, so old pregnancies get the new plan on the next read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:00:00+00:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

NEW_EXAMS = Path(__file__).resolve().parent.parent / "data" / "0011_exam_types.json"

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recorded() -> list[sa.Column]:
    return [
        sa.Column('recorded_by_id', sa.Uuid(), nullable=True),
        sa.Column('recorded_by_name', sa.String(length=100), nullable=False),
        sa.Column('recorded_by_role', sa.String(length=20), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table('care_indications',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    *_recorded(),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_care_indications_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_indications'))
    )
    with op.batch_alter_table('care_indications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_indications_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('exam_declines',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('exam_code', sa.String(length=40), nullable=False),
    sa.Column('item_key', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    *_recorded(),
    sa.CheckConstraint('length(reason) > 0', name=op.f('ck_exam_declines_reason_given')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_exam_declines_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_declines')),
    sa.UniqueConstraint('pregnancy_id', 'item_key', name=op.f('uq_exam_declines_pregnancy_id_item_key'))
    )
    with op.batch_alter_table('exam_declines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_declines_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('outside_results',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('exam_code', sa.String(length=40), nullable=False),
    sa.Column('result_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    *_recorded(),
    sa.CheckConstraint('length(source) > 0', name=op.f('ck_outside_results_source_given')),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_outside_results_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outside_results'))
    )
    with op.batch_alter_table('outside_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outside_results_pregnancy_id'), ['pregnancy_id'], unique=False)

    op.create_table('screening_choices',
    sa.Column('pregnancy_id', sa.Uuid(), nullable=False),
    sa.Column('choice_code', sa.String(length=40), nullable=False),
    sa.Column('option_code', sa.String(length=40), nullable=True),
    sa.Column('consent_recorded', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    *_recorded(),
    sa.ForeignKeyConstraint(['pregnancy_id'], ['pregnancies.id'], name=op.f('fk_screening_choices_pregnancy_id_pregnancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_choices'))
    )
    with op.batch_alter_table('screening_choices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_choices_pregnancy_id'), ['pregnancy_id'], unique=False)
        batch_op.create_index('uq_screening_choices_current', ['pregnancy_id', 'choice_code'], unique=True, postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    _add_exam_types()


def _add_exam_types() -> None:
    data = json.loads(NEW_EXAMS.read_text(encoding="utf-8"))
    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT COALESCE(MAX(position), 0) FROM exam_types")).scalar_one()
    taken = set(bind.execute(sa.text("SELECT code FROM exam_types")).scalars())
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
    now = datetime.now(UTC)
    rows = [
        {
            "code": e["code"],
            "name": e["name"],
            "station_type": e["station_type"],
            "position": last + i,
            "fasting": bool(e.get("fasting", False)),
            "after_meal": bool(e.get("after_meal", False)),
            "last": False,
            "precedence": e.get("precedence", []),
            "sequence": e.get("sequence", []),
            "default_service_minutes": float(e["minutes"]),
            "learned_samples": 0,
            "turnaround_minutes": int(e.get("turnaround", 0)),
            "updated_at": now,
            "version": 1,
        }
        for i, e in enumerate(
            (e for e in data["exam_types"] if e["code"] not in taken), start=1
        )
    ]
    if rows:  # a hospital that already added one of these keeps its own
        op.bulk_insert(exam_types, rows)


def downgrade() -> None:
    data = json.loads(NEW_EXAMS.read_text(encoding="utf-8"))
    codes = [e["code"] for e in data["exam_types"]]
    op.get_bind().execute(
        sa.text("DELETE FROM exam_types WHERE code IN :codes").bindparams(
            sa.bindparam("codes", expanding=True)
        ),
        {"codes": codes},
    )
    with op.batch_alter_table('screening_choices', schema=None) as batch_op:
        batch_op.drop_index('uq_screening_choices_current', postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_screening_choices_pregnancy_id'))
    op.drop_table('screening_choices')
    with op.batch_alter_table('outside_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outside_results_pregnancy_id'))
    op.drop_table('outside_results')
    with op.batch_alter_table('exam_declines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_declines_pregnancy_id'))
    op.drop_table('exam_declines')
    with op.batch_alter_table('care_indications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_care_indications_pregnancy_id'))
    op.drop_table('care_indications')
