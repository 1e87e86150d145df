"""Every query of clinic sessions, visits, their status history and exam orders."""

from __future__ import annotations

import uuid
from datetime import date, time

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.butlers.models import Butler
from app.mothers.models import Mother
from app.queues.models import QueueEntry, Station
from app.visits.domain import ACTIVE, VisitStatus
from app.visits.models import ClinicSession, ExamOrder, ExamOrderStatus, Visit, VisitStatusChange

FORECAST_STATUSES = ACTIVE | {VisitStatus.COMPLETED}


class VisitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Clinic sessions ----------------------------------------------------------------------

    async def clinic_session(
        self, session_id: uuid.UUID, *, for_update: bool = False
    ) -> ClinicSession | None:
        stmt = select(ClinicSession).where(ClinicSession.id == session_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def clinic_sessions(self, *, start: date, end: date) -> list[ClinicSession]:
        return list(
            await self.session.scalars(
                select(ClinicSession)
                .where(ClinicSession.session_date >= start, ClinicSession.session_date <= end)
                .order_by(ClinicSession.session_date, ClinicSession.starts_at, ClinicSession.id)
            )
        )

    async def slot_counts(self, session_id: uuid.UUID) -> dict[time, int]:
        """Visits holding each hourly slot (cancelled ones gave their place back)."""
        rows = await self.session.execute(
            select(Visit.slot_start, func.count())
            .where(Visit.session_id == session_id, Visit.status != VisitStatus.CANCELLED)
            .group_by(Visit.slot_start)
        )
        return {slot: int(count) for slot, count in rows.all()}

    async def booked_counts(self, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not session_ids:
            return {}
        rows = await self.session.execute(
            select(Visit.session_id, func.count())
            .where(Visit.session_id.in_(session_ids), Visit.status != VisitStatus.CANCELLED)
            .group_by(Visit.session_id)
        )
        return {sid: int(count) for sid, count in rows.all()}

    async def slot_counts_of(
        self, session_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, dict[time, int]]:
        """Per session, the visits holding each hourly slot (one query for a calendar)."""
        out: dict[uuid.UUID, dict[time, int]] = {s: {} for s in session_ids}
        if not session_ids:
            return out
        rows = await self.session.execute(
            select(Visit.session_id, Visit.slot_start, func.count())
            .where(Visit.session_id.in_(session_ids), Visit.status != VisitStatus.CANCELLED)
            .group_by(Visit.session_id, Visit.slot_start)
        )
        for sid, slot, count in rows.all():
            out[sid][slot] = int(count)
        return out

    async def stations(self) -> list[Station]:
        """Every station (its rooms count towards a session's capacity), by code."""
        return list(await self.session.scalars(select(Station).order_by(Station.code)))

    async def visits_of_sessions(self, session_ids: list[uuid.UUID]) -> list[Visit]:
        """The visits a session's stations serve: booked, here, or done (not cancelled or
        missed), by booked time."""
        if not session_ids:
            return []
        return list(
            await self.session.scalars(
                select(Visit)
                .where(
                    Visit.session_id.in_(session_ids),
                    Visit.status.in_(sorted(FORECAST_STATUSES)),
                )
                .order_by(Visit.scheduled_at, Visit.id)
            )
        )

    # Visits ---------------------------------------------------------------------------------

    async def listed_visits(
        self,
        *,
        day: date | None,
        statuses: frozenset[VisitStatus],
        mother_id: uuid.UUID | None,
        only_mothers: Select[uuid.UUID] | None,
    ) -> list[tuple[Visit, Mother, ClinicSession]]:
        """Visits (of a day, of a mother) with her and the session, by booked time."""
        stmt = (
            select(Visit, Mother, ClinicSession)
            .join(Mother, Mother.id == Visit.mother_id)
            .join(ClinicSession, ClinicSession.id == Visit.session_id)
            .order_by(Visit.scheduled_at, Visit.id)
        )
        if day is not None:
            stmt = stmt.where(Visit.visit_date == day)
        if statuses:
            stmt = stmt.where(Visit.status.in_(sorted(statuses)))
        if mother_id is not None:
            stmt = stmt.where(Visit.mother_id == mother_id)
        if only_mothers is not None:
            stmt = stmt.where(Visit.mother_id.in_(only_mothers))
        rows = await self.session.execute(stmt.limit(2000))
        return [(v, m, s) for v, m, s in rows.all()]

    async def butler_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Butler.id, Butler.display_name).where(Butler.id.in_(ids))
        )
        return dict(rows.all())

    async def entries_of_visits(
        self, visit_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[tuple[QueueEntry, Station]]]:
        """Each visit's queue places with their station, in the order she got them."""
        out: dict[uuid.UUID, list[tuple[QueueEntry, Station]]] = {v: [] for v in visit_ids}
        if not visit_ids:
            return out
        rows = await self.session.execute(
            select(QueueEntry, Station)
            .join(Station, Station.id == QueueEntry.station_id)
            .where(QueueEntry.visit_id.in_(visit_ids))
            .order_by(QueueEntry.entered_at, QueueEntry.id)
        )
        for entry, station in rows.all():
            out[entry.visit_id].append((entry, station))
        return out

    async def active_visits_elsewhere(self, mother_id: uuid.UUID, day: date) -> list[Visit]:
        """Her booked visits on other days than ``day``, nearest first."""
        rows = await self.session.scalars(
            select(Visit).where(
                Visit.mother_id == mother_id,
                Visit.visit_date != day,
                Visit.status == VisitStatus.BOOKED,
            )
        )
        return sorted(rows, key=lambda v: (abs((v.visit_date - day).days), v.visit_date < day))

    async def mothers_by_scan(self, value: str) -> list[Mother]:
        """Mothers whose MRN is the value, ignoring case (the exact spelling first)."""
        exact = await self.session.scalar(select(Mother).where(Mother.mrn == value))
        if exact is not None:
            return [exact]
        return list(
            await self.session.scalars(
                select(Mother).where(func.upper(Mother.mrn) == value.upper()).limit(2)
            )
        )

    async def session_of(self, visit: Visit) -> ClinicSession:
        found = await self.session.get(ClinicSession, visit.session_id)
        assert found is not None
        return found

    async def visit(self, visit_id: uuid.UUID, *, for_update: bool = False) -> Visit | None:
        stmt = select(Visit).where(Visit.id == visit_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def active_visit_on(self, mother_id: uuid.UUID, day: date) -> Visit | None:
        return await self.session.scalar(
            select(Visit).where(
                Visit.mother_id == mother_id,
                Visit.visit_date == day,
                Visit.status.in_(ACTIVE),
            )
        )

    async def visits_of_pregnancy(self, pregnancy_id: uuid.UUID) -> list[Visit]:
        return list(
            await self.session.scalars(
                select(Visit)
                .where(Visit.pregnancy_id == pregnancy_id)
                .order_by(Visit.scheduled_at, Visit.id)
            )
        )

    async def visits_on(self, day: date) -> list[tuple[Visit, Mother]]:
        rows = await self.session.execute(
            select(Visit, Mother)
            .join(Mother, Mother.id == Visit.mother_id)
            .where(Visit.visit_date == day)
            .order_by(Visit.scheduled_at, Visit.id)
        )
        return [(v, m) for v, m in rows.all()]

    async def booked_until(self, day: date) -> list[tuple[Visit, ClinicSession]]:
        rows = await self.session.execute(
            select(Visit, ClinicSession)
            .join(ClinicSession, ClinicSession.id == Visit.session_id)
            .where(Visit.status == VisitStatus.BOOKED, Visit.visit_date <= day)
            .order_by(Visit.visit_date, Visit.id)
            .with_for_update(of=Visit)
        )
        return [(v, s) for v, s in rows.all()]

    async def status_changes(self, visit_id: uuid.UUID) -> list[VisitStatusChange]:
        return list(
            await self.session.scalars(
                select(VisitStatusChange)
                .where(VisitStatusChange.visit_id == visit_id)
                .order_by(VisitStatusChange.changed_at, VisitStatusChange.id)
            )
        )

    # Exam orders ----------------------------------------------------------------------------

    async def orders_of(self, visit_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ExamOrder]]:
        out: dict[uuid.UUID, list[ExamOrder]] = {v: [] for v in visit_ids}
        if not visit_ids:
            return out
        rows = await self.session.scalars(
            select(ExamOrder)
            .where(ExamOrder.visit_id.in_(visit_ids))
            .order_by(ExamOrder.created_at, ExamOrder.id)
        )
        for order in rows:
            out[order.visit_id].append(order)
        return out

    async def done_exam_codes(self, visit_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        out: dict[uuid.UUID, set[str]] = {v: set() for v in visit_ids}
        if not visit_ids:
            return out
        rows = await self.session.execute(
            select(ExamOrder.visit_id, ExamOrder.exam_code).where(
                ExamOrder.visit_id.in_(visit_ids), ExamOrder.status == ExamOrderStatus.DONE
            )
        )
        for visit_id, code in rows.all():
            out[visit_id].add(code)
        return out
