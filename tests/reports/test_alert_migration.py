"""Migration 0013 on alerts stored before it: a butler's tap did not close a critical value."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.migrations import downgrade, upgrade

AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
TAPPED = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)

messages = sa.table(
    "inbound_messages",
    sa.column("id", sa.Uuid()),
    sa.column("channel", sa.String()),
    sa.column("sender_name", sa.String()),
    sa.column("headers", sa.JSON()),
    sa.column("body", sa.LargeBinary()),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("state", sa.String()),
)
reports = sa.table(
    "lab_reports",
    sa.column("id", sa.Uuid()),
    sa.column("source_key", sa.String()),
    sa.column("last_message_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("status_derived", sa.Boolean()),
    sa.column("status_note", sa.String()),
    sa.column("pickup_state", sa.String()),
    sa.column("needs_review", sa.Boolean()),
    sa.column("critical", sa.Boolean()),
    sa.column("reminders_sent", sa.SmallInteger()),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("version", sa.Integer()),
)
alerts = sa.table(
    "critical_alerts",
    sa.column("id", sa.Uuid()),
    sa.column("report_id", sa.Uuid()),
    sa.column("reason", sa.String()),
    sa.column("raised_at", sa.DateTime(timezone=True)),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.column("acknowledged_by", sa.String()),
    sa.column("level", sa.SmallInteger()),
    sa.column("read_back", sa.String()),
    sa.column("voided_at", sa.DateTime(timezone=True)),
    sa.column("void_reason", sa.String()),
)
events = sa.table(
    "report_events", sa.column("report_id", sa.Uuid()), sa.column("kind", sa.String())
)


@pytest.fixture
def database(empty_database: str) -> str:
    return empty_database


async def _run(url: str, *statements: Any) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            return [await conn.execute(s) for s in statements]
    finally:
        await engine.dispose()


async def _rows(url: str, query: Any) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(query)).all()]
    finally:
        await engine.dispose()


def _seed(url: str) -> dict[str, uuid.UUID]:
    ids = {k: uuid.uuid4() for k in ("msg", "r1", "r2", "r3", "a1", "a2", "a3", "a4")}
    statements: list[Any] = [
        messages.insert().values(
            id=ids["msg"],
            channel="hl7v2",
            sender_name="LIS",
            headers={},
            body=b"MSH|",
            received_at=AT,
            state="processed",
        )
    ]
    for r in ("r1", "r2", "r3"):
        statements.append(
            reports.insert().values(
                id=ids[r],
                source_key=r,
                last_message_id=ids["msg"],
                status="final",
                status_derived=False,
                status_note="",
                pickup_state="ready",
                needs_review=False,
                critical=True,
                reminders_sent=0,
                received_at=AT,
                updated_at=AT,
                version=1,
            )
        )
    for alert, report, by in (
        ("a1", "r1", "butler:b1"),  # a butler's tap: it never reached a clinician
        ("a2", "r2", "doctor:d1"),  # a doctor's closure, from before the read-back
        ("a3", "r3", "front_desk:f1"),  # the desk's tap, and a later alert of r3 is open
        ("a4", "r3", None),
    ):
        statements.append(
            alerts.insert().values(
                id=ids[alert],
                report_id=ids[report],
                reason="haemoglobin 58 g/L < 70",
                raised_at=AT,
                due_at=AT,
                acknowledged_at=TAPPED if by else None,
                acknowledged_by=by,
                level=0 if alert != "a4" else 1,
            )
        )
    asyncio.run(_run(url, *statements))
    return ids


def test_taps_reopen_or_are_voided_and_doctors_closures_stay(database: str) -> None:
    upgrade(database, "0012")
    ids = _seed(database)
    upgrade(database, "0013")
    rows = asyncio.run(
        _rows(
            database,
            sa.select(
                alerts.c.id,
                alerts.c.acknowledged_by,
                alerts.c.read_back,
                alerts.c.voided_at.is_not(None),
                alerts.c.void_reason,
            ),
        )
    )
    state = {row[0]: row[1:] for row in rows}
    assert state[ids["a1"]] == (None, None, False, None)  # open again: it escalates
    by, read_back, voided, _ = state[ids["a2"]]
    assert (by, voided) == ("doctor:d1", False)
    assert read_back is not None
    assert read_back.startswith("not recorded")
    by, _, voided, why = state[ids["a3"]]
    assert (by, voided) == ("front_desk:f1", True)
    assert why is not None
    assert "another alert of this report stands" in why
    assert state[ids["a4"]] == (None, None, False, None)
    trail = asyncio.run(_rows(database, sa.select(events.c.report_id, events.c.kind)))
    assert sorted(trail, key=lambda t: str(t[0])) == sorted(
        [(ids["r1"], "alert_reopened"), (ids["r3"], "alert_voided")], key=lambda t: str(t[0])
    )
    # A closure without a read-back cannot be written any more (the database says so).
    with pytest.raises(sa.exc.IntegrityError):
        asyncio.run(
            _run(
                database,
                alerts.update()
                .where(alerts.c.id == ids["a1"])
                .values(acknowledged_at=TAPPED, acknowledged_by="doctor:d1"),
            )
        )
    downgrade(database, "0012")
    upgrade(database, "0013")
