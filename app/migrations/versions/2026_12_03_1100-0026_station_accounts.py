"""a station account bound to its station (issue 17)

A station account (role ``station``) now works at one station only: ``users.station_code``,
a foreign key to ``stations.code``, set by the admin on POST/PATCH /v1/users. A CHECK keeps it
so: a station account has a station, and no other role has one.

Existing station accounts in a live database have no station yet. The migration must not fail
on them, and it must not guess widely either: an unbound account that could still act at every
station is what this change closes. So, for each existing station account:

- when its username names exactly one station by its code, as a word of its own, case
  ignored (``station-us`` -> US, ``lab-2`` -> LAB; ``ultrasound`` names none), it is bound to
  that station and keeps working, its live tokens included (the demo's ``station-us`` is
  bound to US this way);
- otherwise (no code in its name, or two) it is **disabled** and its live tokens are revoked
  (reason "no station bound (migration 0026)"): refused everywhere until an admin binds it,
  ``PATCH /v1/users/{id}`` with ``{"station_code": "LAB", "is_active": true}``. That is the
  safer of the two failures: a room that cannot log in is noticed and fixed in a minute; an
  account quietly able to run another room's queue is not noticed at all.

The CHECK therefore admits a station account without a station only while it is disabled.

Downgrade drops the column and its constraints (the bindings are lost; the accounts a
downgrade finds disabled stay disabled).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 11:00:00+00:00
"""

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATION_BINDING_SQL = (
    "(role = 'station' AND (station_code IS NOT NULL OR NOT is_active))"
    " OR (role <> 'station' AND station_code IS NULL)"
)
UNBOUND_REASON = "no station bound (migration 0026)"

logger = logging.getLogger("alembic.runtime.migration")


def _station_named(username: str, codes: dict[str, str]) -> str | None:
    """The one station whose code is a word of the username, if exactly one is."""
    words = set(re.split(r"[^a-z0-9]+", username.lower()))
    found = sorted({codes[w] for w in words if w in codes})
    return found[0] if len(found) == 1 else None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("station_code", sa.String(length=10), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_users_station_code_stations"),
            "stations",
            ["station_code"],
            ["code"],
            ondelete="RESTRICT",
        )

    bind = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("username", sa.String()),
        sa.column("role", sa.String()),
        sa.column("is_active", sa.Boolean()),
        sa.column("station_code", sa.String()),
    )
    tokens = sa.table(
        "auth_tokens",
        sa.column("user_id", sa.Uuid()),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
        sa.column("revoked_reason", sa.String()),
    )
    stations = sa.table("stations", sa.column("code", sa.String()))
    codes = {c.lower(): c for c in bind.execute(sa.select(stations.c.code)).scalars()}
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(users.c.id, users.c.username).where(users.c.role == "station")
    ).all()
    for user_id, username in rows:
        code = _station_named(username, codes)
        if code is not None:
            bind.execute(users.update().where(users.c.id == user_id).values(station_code=code))
            # The operator sees each change: an account used in several rooms now works in one.
            logger.warning("station account %r bound to station %s", username, code)
            continue
        bind.execute(users.update().where(users.c.id == user_id).values(is_active=False))
        logger.warning(
            "station account %r names no one station: disabled, its tokens revoked; bind it "
            "with PATCH /v1/users/{id} {\"station_code\": ..., \"is_active\": true}",
            username,
        )
        bind.execute(
            tokens.update()
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=UNBOUND_REASON)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_users_station_binding"), STATION_BINDING_SQL)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_station_binding"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_users_station_code_stations"), type_="foreignkey")
        batch_op.drop_column("station_code")
