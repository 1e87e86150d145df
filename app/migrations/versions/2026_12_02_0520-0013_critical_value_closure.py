"""critical values closed by a clinician: read-back and action, mother contacted, tiered escalation, voided alerts

Alerts acknowledged before this revision by a doctor or an admin keep their closure; their
read-back and action say they were not recorded. Alerts "acknowledged" by anyone else (a
butler's tap, the desk) were never closed by a clinician: they open again, where they climb
the tiers from where they stood, and the report's trail says who had tapped them and when.
One whose report has another open alert is voided instead (that other one stands).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:20:00+00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OPEN = 'acknowledged_at IS NULL'
OPEN = 'acknowledged_at IS NULL AND voided_at IS NULL'
NOT_RECORDED = 'not recorded (acknowledged before read-back was required, migration 0013)'
CLINICIAN = "(acknowledged_by LIKE 'doctor:%' OR acknowledged_by LIKE 'admin:%')"


def _reopen_taps() -> None:
    """Acknowledgements by someone other than a doctor or an admin did not close anything."""
    bind = op.get_bind()
    taps = bind.execute(sa.text(
        'SELECT a.id, a.report_id, a.acknowledged_by, a.acknowledged_at, r.status, r.pickup_state, '
        '(SELECT COUNT(*) FROM critical_alerts o WHERE o.report_id = a.report_id '
        ' AND o.acknowledged_at IS NULL) AS others '
        'FROM critical_alerts a JOIN lab_reports r ON r.id = a.report_id '
        f'WHERE a.acknowledged_at IS NOT NULL AND NOT {CLINICIAN.replace("acknowledged_by", "a.acknowledged_by")} '
        'ORDER BY a.report_id, a.raised_at DESC'
    )).all()
    reopened: set[object] = set()
    insert = sa.text(
        'INSERT INTO report_events (id, report_id, kind, status, pickup_state, message_id, '
        'actor_name, note, at) VALUES (:id, :report_id, :kind, :status, :pickup_state, NULL, '
        "'migration 0013', :note, :at)"
    ).bindparams(sa.bindparam('id', type_=sa.Uuid()))
    for alert_id, report_id, who, at, status, pickup_state, others in taps:
        if others or report_id in reopened:  # another alert of the report stands
            bind.execute(
                sa.text(
                    'UPDATE critical_alerts SET voided_at = acknowledged_at, '
                    "voided_by = 'migration 0013', void_reason = :why WHERE id = :id"
                ),
                {'id': alert_id, 'why': f'acknowledged by {who} (not a doctor); another alert of this report stands'[:300]},
            )
            kind, note = 'alert_voided', f'acknowledged by {who}, not a doctor; another alert of this report stands'
        else:
            bind.execute(
                sa.text(
                    'UPDATE critical_alerts SET acknowledged_at = NULL, acknowledged_by = NULL '
                    'WHERE id = :id'
                ),
                {'id': alert_id},
            )
            reopened.add(report_id)
            kind = 'alert_reopened'
            note = (
                f'acknowledged by {who}, not a doctor: a critical value is closed by a doctor '
                'with read-back and action; open again'
            )
        bind.execute(
            insert,
            {'id': uuid.uuid4(), 'report_id': report_id, 'kind': kind, 'status': status,
             'pickup_state': pickup_state, 'note': note[:2000], 'at': at},
        )


def upgrade() -> None:
    with op.batch_alter_table('critical_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_back', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('action_taken', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('mother_contacted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('mother_contacted_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('mother_contact_note', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('voided_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.String(length=300), nullable=True))
        batch_op.drop_index('ix_critical_alerts_open', sqlite_where=sa.text(OLD_OPEN), postgresql_where=sa.text(OLD_OPEN))
        batch_op.drop_index('uq_critical_alerts_open_per_report', sqlite_where=sa.text(OLD_OPEN), postgresql_where=sa.text(OLD_OPEN))

    _reopen_taps()
    op.execute(
        f"UPDATE critical_alerts SET read_back = '{NOT_RECORDED}', action_taken = '{NOT_RECORDED}' "
        'WHERE acknowledged_at IS NOT NULL'
    )
    op.execute('UPDATE critical_alerts SET level = 2 WHERE level > 2')

    with op.batch_alter_table('critical_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_critical_alerts_open', ['due_at'], unique=False, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.create_index('uq_critical_alerts_open_per_report', ['report_id'], unique=True, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.create_check_constraint(op.f('ck_critical_alerts_tier_range'), 'level BETWEEN 0 AND 2')
        batch_op.create_check_constraint(
            op.f('ck_critical_alerts_closure_has_read_back'),
            'acknowledged_at IS NULL OR (acknowledged_by IS NOT NULL AND read_back IS NOT NULL '
            'AND action_taken IS NOT NULL)',
        )
        batch_op.create_check_constraint(
            op.f('ck_critical_alerts_contact_says_who'), 'mother_contacted_at IS NULL OR mother_contacted_by IS NOT NULL'
        )
        batch_op.create_check_constraint(
            op.f('ck_critical_alerts_void_has_reason'),
            'voided_at IS NULL OR (voided_by IS NOT NULL AND void_reason IS NOT NULL)',
        )


def downgrade() -> None:
    # A voided alert was closed: it comes back as acknowledged by whoever voided it, so that
    # the old one-open-alert-per-report index can be rebuilt.
    op.execute(
        'UPDATE critical_alerts SET acknowledged_at = voided_at, acknowledged_by = voided_by '
        'WHERE voided_at IS NOT NULL AND acknowledged_at IS NULL'
    )
    with op.batch_alter_table('critical_alerts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_critical_alerts_void_has_reason'), type_='check')
        batch_op.drop_constraint(op.f('ck_critical_alerts_contact_says_who'), type_='check')
        batch_op.drop_constraint(op.f('ck_critical_alerts_closure_has_read_back'), type_='check')
        batch_op.drop_constraint(op.f('ck_critical_alerts_tier_range'), type_='check')
        batch_op.drop_index('uq_critical_alerts_open_per_report', sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.drop_index('ix_critical_alerts_open', sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('uq_critical_alerts_open_per_report', ['report_id'], unique=True, postgresql_where=sa.text(OLD_OPEN), sqlite_where=sa.text(OLD_OPEN))
        batch_op.create_index('ix_critical_alerts_open', ['due_at'], unique=False, postgresql_where=sa.text(OLD_OPEN), sqlite_where=sa.text(OLD_OPEN))
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_by')
        batch_op.drop_column('voided_at')
        batch_op.drop_column('mother_contact_note')
        batch_op.drop_column('mother_contacted_by')
        batch_op.drop_column('mother_contacted_at')
        batch_op.drop_column('action_taken')
        batch_op.drop_column('read_back')
