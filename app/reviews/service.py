"""A doctor's review of a final report: the worklist of reports awaiting review, the review."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.reports.models import LabReport


async def on_report_ready(
    session: AsyncSession, report: LabReport, *, now: datetime, today: date, reopened: bool
) -> None:
    """A matched report became final (or was amended): it awaits a doctor's review."""
