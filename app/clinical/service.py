"""Running the clinical rules on what arrives: a measurement, a final lab report."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.reports.models import LabReport


async def on_measurement(
    session: AsyncSession, *, measurement_id: uuid.UUID, now: datetime
) -> None:
    """A measurement was recorded or corrected: run the rules that read it."""


async def on_report_ready(
    session: AsyncSession, report: LabReport, *, now: datetime, today: date
) -> None:
    """A matched report became final (or was corrected): run the rules that read lab results."""
