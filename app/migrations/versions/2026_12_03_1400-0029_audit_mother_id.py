"""every audit row names the mother it concerns (issue 18)

``audit_events.mother_id`` (indexed): the mother a row concerns whatever it is keyed by, so
that ``GET /v1/audit-events?mother_id=`` finds the reads and writes of her visits, queue
places, reports, alerts and readings, not only those keyed by her record.

Existing rows are filled where the database can tell whose they were:

1. a row about her record (``resource_type = 'mother'``): the resource id, if such a mother
   exists (a refused request may name an id that is nobody's);
2. a row whose detail recorded ``mother_id`` at the time (visits, queue places, reports,
   exam orders, corrections, her-visit links): that;
3. the rest by joining the record it is keyed by: visits, queue entries, exam orders (through
   their visit), lab reports, critical alerts, worklist items, measurements, rule firings,
   butlers' tasks and notifications.

What cannot be filled stays NULL: rows about no mother (users, butlers, stations, exam types,
API clients, refused routes, lab messages), and rows keyed by a record that is gone or had no
mother (a lab report that matched nobody, its alert). A report row without a recorded mother
(pick-up, delivery, list) is given the mother the report belongs to now; one moved to another
mother since (detach, attach) is the rare case where that is not who it was then.

The trail is append-only (triggers on both databases refuse UPDATE and DELETE): the triggers
are dropped for the fill and made again in the same transaction, as revision 0001 made them.

Downgrade drops the index and the column (and remakes the triggers, which a copied SQLite
table loses).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 14:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# resource_type -> the table its id is in and the expression (in that table) of its mother.
KEYED_BY: dict[str, tuple[str, str]] = {
    "visit": ("visits", "t.mother_id"),
    "queue_entry": ("queue_entries", "t.mother_id"),
    "report": ("lab_reports", "t.mother_id"),
    "alert": ("critical_alerts", "t.mother_id"),
    "worklist_item": ("worklist_items", "t.mother_id"),
    "measurement": ("measurements", "t.mother_id"),
    "rule_firing": ("rule_firings", "t.mother_id"),
    "task": ("butler_tasks", "t.mother_id"),
    "notification": ("outbox_messages", "t.mother_id"),
    "exam_order": (
        "exam_orders",
        "(SELECT v.mother_id FROM visits v WHERE v.id = t.visit_id)",
    ),
}


UUID_TEXT = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mother_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_events_mother_id"), ["mother_id"], unique=False)
    _drop_append_only("audit_events")
    _backfill()
    _make_append_only("audit_events")


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_mother_id"))
        batch_op.drop_column("mother_id")
    if op.get_bind().dialect.name == "sqlite":  # the copied table lost its triggers
        _drop_append_only("audit_events")
        _make_append_only("audit_events")


def _backfill() -> None:
    """Every statement is made of this file's own constants (no input reaches it)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    # A UUID column is uuid on PostgreSQL and 32 hex digits on SQLite; resource_id and the
    # detail hold the dashed text form.
    if postgres:

        def as_id(text: str) -> str:  # by the primary key; text that is no UUID matches none
            return f"t.id = CAST(CASE WHEN {text} ~* '{UUID_TEXT}' THEN {text} END AS uuid)"

        recorded = "audit_events.detail->>'mother_id'"
    else:

        def as_id(text: str) -> str:
            return f"t.id = lower(replace({text}, '-', ''))"

        recorded = "json_extract(audit_events.detail, '$.mother_id')"
    # 1. Her record: the id, where it is hers.
    op.execute(
        "UPDATE audit_events SET mother_id = "  # noqa: S608 - constants only
        f"(SELECT t.id FROM mothers t WHERE {as_id('audit_events.resource_id')}) "
        "WHERE resource_type = 'mother' AND resource_id IS NOT NULL"
    )
    # 2. What the row itself recorded at the time.
    op.execute(
        "UPDATE audit_events SET mother_id = "  # noqa: S608 - constants only
        f"(SELECT t.id FROM mothers t WHERE {as_id(recorded)}) "
        f"WHERE mother_id IS NULL AND detail IS NOT NULL AND {recorded} IS NOT NULL"
    )
    # 3. The record it is keyed by.
    for resource_type, (table, mother) in KEYED_BY.items():
        op.execute(
            f"UPDATE audit_events SET mother_id = (SELECT {mother} FROM {table} t "  # noqa: S608
            f"WHERE {as_id('audit_events.resource_id')}) "
            f"WHERE mother_id IS NULL AND resource_type = '{resource_type}' "
            "AND resource_id IS NOT NULL"
        )


# As revision 0001 wrote them: the trail is append-only, enforced by the database itself.
def _make_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'raise_exception';
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION forbid_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
