"""exam queues: stations, catalogue, steps, entries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 13:05:49.389924+00:00
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

# The default stations and exam catalogue (SPEC "Exam constraints"); admins edit them later.
DEFAULTS = Path(__file__).resolve().parent.parent / "data" / "0007_exam_catalogue.json"


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('exam_types',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('station_type', sa.String(length=30), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('fasting', sa.Boolean(), nullable=False),
    sa.Column('after_meal', sa.Boolean(), nullable=False),
    sa.Column('last', sa.Boolean(), nullable=False),
    sa.Column('precedence', sa.JSON(), nullable=False),
    sa.Column('sequence', sa.JSON(), nullable=False),
    sa.Column('default_service_minutes', sa.Float(), nullable=False),
    sa.Column('learned_service_minutes', sa.Float(), nullable=True),
    sa.Column('learned_samples', sa.Integer(), nullable=False),
    sa.Column('turnaround_minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('default_service_minutes > 0', name=op.f('ck_exam_types_service_positive')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_exam_types'))
    )
    op.create_table('stations',
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('station_type', sa.String(length=30), nullable=False),
    sa.Column('servers', sa.SmallInteger(), nullable=False),
    sa.Column('opens_at', sa.Time(), nullable=False),
    sa.Column('closes_at', sa.Time(), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('queue_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('closes_at > opens_at', name=op.f('ck_stations_closes_after_opening')),
    sa.CheckConstraint('servers > 0', name=op.f('ck_stations_servers_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
    sa.UniqueConstraint('code', name=op.f('uq_stations_code'))
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stations_station_type'), ['station_type'], unique=False)

    op.create_table('station_tickets',
    sa.Column('station_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_station_tickets_station_id_stations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('station_id', 'day', name=op.f('pk_station_tickets'))
    )
    op.create_table('queue_entries',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('station_id', sa.Uuid(), nullable=False),
    sa.Column('station_type', sa.String(length=30), nullable=False),
    sa.Column('step_offset', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Uuid(), nullable=False),
    sa.Column('mother_id', sa.Uuid(), nullable=False),
    sa.Column('ticket', sa.String(length=16), nullable=False),
    sa.Column('ticket_number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('room', sa.SmallInteger(), nullable=True),
    sa.Column('fasting', sa.Boolean(), nullable=False),
    sa.Column('ref_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tolerance_minutes', sa.Integer(), nullable=True),
    sa.Column('expected_minutes', sa.Float(), nullable=False),
    sa.Column('called_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.String(length=300), nullable=True),
    sa.Column('recalls', sa.Integer(), nullable=False),
    sa.Column('no_shows', sa.Integer(), nullable=False),
    sa.Column('previous_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("room IS NOT NULL OR NOT (state IN ('called', 'in_service'))", name=op.f('ck_queue_entries_busy_has_room')),
    sa.CheckConstraint("state IN ('waiting', 'called', 'in_service', 'done', 'no_show', 'transferred', 'cancelled')", name=op.f('ck_queue_entries_state_known')),
    sa.ForeignKeyConstraint(['mother_id'], ['mothers.id'], name=op.f('fk_queue_entries_mother_id_mothers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['previous_id'], ['queue_entries.id'], name=op.f('fk_queue_entries_previous_id_queue_entries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_queue_entries_station_id_stations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_queue_entries_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_entries'))
    )
    with op.batch_alter_table('queue_entries', schema=None) as batch_op:
        batch_op.create_index('ix_queue_entries_mother_day', ['mother_id', 'day'], unique=False)
        batch_op.create_index('ix_queue_entries_station_state', ['station_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_queue_entries_visit_id'), ['visit_id'], unique=False)
        batch_op.create_index('uq_queue_entries_mother_busy', ['mother_id'], unique=True, postgresql_where=sa.text("state IN ('called', 'in_service')"), sqlite_where=sa.text("state IN ('called', 'in_service')"))
        batch_op.create_index('uq_queue_entries_room_busy', ['station_id', 'room'], unique=True, postgresql_where=sa.text("state IN ('called', 'in_service')"), sqlite_where=sa.text("state IN ('called', 'in_service')"))
        batch_op.create_index('uq_queue_entries_visit_live', ['visit_id', 'station_type', 'step_offset'], unique=True, postgresql_where=sa.text("state IN ('waiting', 'called', 'in_service')"), sqlite_where=sa.text("state IN ('waiting', 'called', 'in_service')"))

    op.create_table('exam_steps',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('visit_id', sa.Uuid(), nullable=False),
    sa.Column('exam_code', sa.String(length=40), nullable=False),
    sa.Column('station_type', sa.String(length=30), nullable=True),
    sa.Column('offset_minutes', sa.Integer(), nullable=False),
    sa.Column('tolerance_minutes', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=60), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("state IN ('pending', 'done', 'cancelled')", name=op.f('ck_exam_steps_state_known')),
    sa.ForeignKeyConstraint(['entry_id'], ['queue_entries.id'], name=op.f('fk_exam_steps_entry_id_queue_entries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['exam_orders.id'], name=op.f('fk_exam_steps_order_id_exam_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_exam_steps_visit_id_visits'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_steps')),
    sa.UniqueConstraint('order_id', 'offset_minutes', name=op.f('uq_exam_steps_order_id_offset_minutes'))
    )
    with op.batch_alter_table('exam_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exam_steps_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exam_steps_visit_id'), ['visit_id'], unique=False)

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('urgent', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('urgent_reason', sa.String(length=300), nullable=True))

    _seed_defaults()


def _seed_defaults() -> None:
    data = json.loads(DEFAULTS.read_text(encoding="utf-8"))
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
    op.bulk_insert(
        stations,
        [
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
        ],
    )
    op.bulk_insert(
        exam_types,
        [
            {
                "code": e["code"],
                "name": e["name"],
                "station_type": e["station_type"],
                "position": position,
                "fasting": e.get("fasting", False),
                "after_meal": e.get("after_meal", False),
                "last": e.get("last", False),
                "precedence": e.get("precedence", []),
                "sequence": e.get("sequence", []),
                "default_service_minutes": e["minutes"],
                "learned_samples": 0,
                "turnaround_minutes": e.get("turnaround", 0),
                "updated_at": now,
                "version": 1,
            }
            for position, e in enumerate(data["exam_types"], start=1)
        ],
    )



def downgrade() -> None:
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_column('urgent_reason')
        batch_op.drop_column('urgent')

    with op.batch_alter_table('exam_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exam_steps_visit_id'))
        batch_op.drop_index(batch_op.f('ix_exam_steps_entry_id'))

    op.drop_table('exam_steps')
    with op.batch_alter_table('queue_entries', schema=None) as batch_op:
        batch_op.drop_index('uq_queue_entries_visit_live', postgresql_where=sa.text("state IN ('waiting', 'called', 'in_service')"), sqlite_where=sa.text("state IN ('waiting', 'called', 'in_service')"))
        batch_op.drop_index('uq_queue_entries_room_busy', postgresql_where=sa.text("state IN ('called', 'in_service')"), sqlite_where=sa.text("state IN ('called', 'in_service')"))
        batch_op.drop_index('uq_queue_entries_mother_busy', postgresql_where=sa.text("state IN ('called', 'in_service')"), sqlite_where=sa.text("state IN ('called', 'in_service')"))
        batch_op.drop_index(batch_op.f('ix_queue_entries_visit_id'))
        batch_op.drop_index('ix_queue_entries_station_state')
        batch_op.drop_index('ix_queue_entries_mother_day')

    op.drop_table('queue_entries')
    op.drop_table('station_tickets')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stations_station_type'))

    op.drop_table('stations')
    op.drop_table('exam_types')
