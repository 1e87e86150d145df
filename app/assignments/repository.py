"""Every query of care assignments, leave, and what the choice rules need to know."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.assignments.models import AssignmentRole, ButlerLeave, CareAssignment
from app.butlers.models import Butler, RosterShift
from app.mothers.domain import RiskGrade
from app.mothers.models import Mother, Pregnancy, PregnancyStatus
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.reports.domain import PickupState
from app.reports.models import LabReport
from app.visits.domain import ACTIVE, VisitStatus
from app.visits.models import Visit


def _sees_on(day: date) -> ColumnElement[bool]:
    """An assignment through which its butler sees its mother that day: an active primary, or a
    cover valid that day. The one definition of "her butlers today", both ways round."""
    return and_(
        CareAssignment.ends_at.is_(None),
        or_(
            CareAssignment.role == AssignmentRole.PRIMARY,
            and_(CareAssignment.role == AssignmentRole.COVER, CareAssignment.valid_on == day),
        ),
    )


def visible_mother_ids(butler_id: uuid.UUID, today: date) -> Select[uuid.UUID]:
    """Mothers a butler may see: her active primary assignments, and covers for today."""
    return select(CareAssignment.mother_id).where(
        CareAssignment.butler_id == butler_id, _sees_on(today)
    )


async def butlers_who_see(
    session: AsyncSession, mother_ids: Iterable[uuid.UUID], today: date
) -> set[uuid.UUID]:
    """The butlers who have any of these mothers on their phone today (primary or cover)."""
    ids = sorted(set(mother_ids))
    if not ids:
        return set()
    rows = await session.scalars(
        select(CareAssignment.butler_id).where(CareAssignment.mother_id.in_(ids), _sees_on(today))
    )
    return set(rows)


async def who_sees_whom(
    session: AsyncSession, mother_ids: Iterable[uuid.UUID], today: date
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Of these mothers, the ones each butler has on their phone today (primary or cover)."""
    ids = sorted(set(mother_ids))
    out: dict[uuid.UUID, set[uuid.UUID]] = {}
    if not ids:
        return out
    rows = await session.execute(
        select(CareAssignment.butler_id, CareAssignment.mother_id).where(
            CareAssignment.mother_id.in_(ids), _sees_on(today)
        )
    )
    for butler_id, mother_id in rows:
        out.setdefault(butler_id, set()).add(mother_id)
    return out


class AssignmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def can_see(self, butler_id: uuid.UUID, mother_id: uuid.UUID, today: date) -> bool:
        stmt = visible_mother_ids(butler_id, today).where(CareAssignment.mother_id == mother_id)
        return await self.session.scalar(stmt.limit(1)) is not None

    async def at_station_today(self, station_code: str, mother_id: uuid.UUID, today: date) -> bool:
        """She is at this station today: her visit of today is checked in or in progress and
        has a place in the station's queue (waiting, called, served, done or missed there: it
        may correct what it recorded) or an exam still to do there. A place sent elsewhere
        (transferred) or cancelled does not count, nor does a completed, cancelled or missed
        visit: once her visit is over, her data is no longer the station's."""
        station = await self.session.scalar(select(Station).where(Station.code == station_code))
        if station is None:
            return False
        placed = select(QueueEntry.id).where(
            QueueEntry.visit_id == Visit.id,
            QueueEntry.station_id == station.id,
            QueueEntry.state.not_in([EntryState.TRANSFERRED, EntryState.CANCELLED]),
        )
        pending = select(ExamStep.id).where(
            ExamStep.visit_id == Visit.id,
            ExamStep.station_type == station.station_type,
            ExamStep.state == StepState.PENDING,
        )
        stmt = select(Visit.id).where(
            Visit.mother_id == mother_id,
            Visit.visit_date == today,
            Visit.status.in_([VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS]),
            placed.exists() | pending.exists(),
        )
        return await self.session.scalar(stmt.limit(1)) is not None

    async def lock_butlers(self) -> list[Butler]:
        """Every butler row, locked in id order: assignments are decided one at a time."""
        return list(
            await self.session.scalars(select(Butler).order_by(Butler.id).with_for_update())
        )

    async def butlers(self) -> list[Butler]:
        return list(await self.session.scalars(select(Butler).order_by(Butler.id)))

    async def loads(self, weights: Mapping[RiskGrade, int]) -> dict[uuid.UUID, int]:
        """Weighted caseload per butler: her active primary mothers, by current risk grade."""
        rows = await self.session.execute(
            select(CareAssignment.butler_id, Pregnancy.risk_grade, Pregnancy.purple, func.count())
            .join(
                Pregnancy,
                and_(
                    Pregnancy.mother_id == CareAssignment.mother_id,
                    Pregnancy.status == PregnancyStatus.ACTIVE,
                ),
            )
            .where(CareAssignment.role == AssignmentRole.PRIMARY, CareAssignment.ends_at.is_(None))
            .group_by(CareAssignment.butler_id, Pregnancy.risk_grade, Pregnancy.purple)
        )
        loads: Counter[uuid.UUID] = Counter()
        for butler_id, grade, purple, count in rows.all():
            weight = weights[RiskGrade(grade)]
            if purple:  # purple beside her colour: the heavier of the two
                weight = max(weight, weights[RiskGrade.PURPLE])
            loads[butler_id] += weight * int(count)
        return dict(loads)

    async def grade_counts(self) -> dict[uuid.UUID, dict[str, int]]:
        rows = await self.session.execute(
            select(CareAssignment.butler_id, Pregnancy.risk_grade, func.count())
            .join(
                Pregnancy,
                and_(
                    Pregnancy.mother_id == CareAssignment.mother_id,
                    Pregnancy.status == PregnancyStatus.ACTIVE,
                ),
            )
            .where(CareAssignment.role == AssignmentRole.PRIMARY, CareAssignment.ends_at.is_(None))
            .group_by(CareAssignment.butler_id, Pregnancy.risk_grade)
        )
        out: dict[uuid.UUID, dict[str, int]] = {}
        for butler_id, grade, count in rows.all():
            out.setdefault(butler_id, {})[RiskGrade(grade).value] = int(count)
        return out

    async def rostered(self) -> set[uuid.UUID]:
        return set(await self.session.scalars(select(RosterShift.butler_id).distinct()))

    async def shifts_on(self, weekday: int) -> dict[uuid.UUID, list[RosterShift]]:
        out: dict[uuid.UUID, list[RosterShift]] = {}
        for shift in await self.session.scalars(
            select(RosterShift).where(RosterShift.weekday == weekday)
        ):
            out.setdefault(shift.butler_id, []).append(shift)
        return out

    async def on_leave(self, day: date) -> set[uuid.UUID]:
        return set(
            await self.session.scalars(
                select(ButlerLeave.butler_id).where(
                    ButlerLeave.starts_on <= day, ButlerLeave.ends_on >= day
                )
            )
        )

    async def escorted_visits(self, day: date) -> list[Visit]:
        """Live visits of that day that already have a butler at their side."""
        return list(
            await self.session.scalars(
                select(Visit).where(
                    Visit.visit_date == day,
                    Visit.status.in_(ACTIVE),
                    Visit.accompanying_butler_id.is_not(None),
                )
            )
        )

    async def active_primary(
        self, mother_id: uuid.UUID, *, for_update: bool = False
    ) -> CareAssignment | None:
        stmt = select(CareAssignment).where(
            CareAssignment.mother_id == mother_id,
            CareAssignment.role == AssignmentRole.PRIMARY,
            CareAssignment.ends_at.is_(None),
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def active_cover(self, visit_id: uuid.UUID) -> CareAssignment | None:
        return await self.session.scalar(
            select(CareAssignment).where(
                CareAssignment.visit_id == visit_id,
                CareAssignment.role == AssignmentRole.COVER,
                CareAssignment.ends_at.is_(None),
            )
        )

    async def history(self, mother_id: uuid.UUID) -> list[CareAssignment]:
        return list(
            await self.session.scalars(
                select(CareAssignment)
                .where(CareAssignment.mother_id == mother_id)
                .order_by(CareAssignment.starts_at, CareAssignment.id)
            )
        )

    async def primary_mothers(self, butler_id: uuid.UUID) -> list[tuple[Mother, Pregnancy]]:
        rows = await self.session.execute(
            select(Mother, Pregnancy)
            .join(CareAssignment, CareAssignment.mother_id == Mother.id)
            .join(
                Pregnancy,
                and_(Pregnancy.mother_id == Mother.id, Pregnancy.status == PregnancyStatus.ACTIVE),
            )
            .where(
                CareAssignment.butler_id == butler_id,
                CareAssignment.role == AssignmentRole.PRIMARY,
                CareAssignment.ends_at.is_(None),
            )
            .order_by(Mother.id)
        )
        return [(m, p) for m, p in rows.all()]

    async def flagged(self) -> list[CareAssignment]:
        return list(
            await self.session.scalars(
                select(CareAssignment)
                .where(CareAssignment.ends_at.is_(None), CareAssignment.flagged_reason.is_not(None))
                .order_by(CareAssignment.id)
            )
        )

    async def future_visits(self, mother_id: uuid.UUID, from_day: date) -> list[Visit]:
        return list(
            await self.session.scalars(
                select(Visit)
                .where(
                    Visit.mother_id == mother_id,
                    Visit.visit_date >= from_day,
                    Visit.status.in_(ACTIVE),
                )
                .order_by(Visit.scheduled_at)
            )
        )

    async def visits_today(self, day: date) -> Counter[uuid.UUID]:
        rows = await self.session.execute(
            select(Visit.accompanying_butler_id, func.count())
            .where(
                Visit.visit_date == day,
                Visit.status != VisitStatus.CANCELLED,
                Visit.accompanying_butler_id.is_not(None),
            )
            .group_by(Visit.accompanying_butler_id)
        )
        return Counter({b: int(n) for b, n in rows.all() if b is not None})

    async def leaves(self, butler_id: uuid.UUID) -> list[ButlerLeave]:
        return list(
            await self.session.scalars(
                select(ButlerLeave)
                .where(ButlerLeave.butler_id == butler_id)
                .order_by(ButlerLeave.starts_on)
            )
        )

    async def my_assignments(self, butler_id: uuid.UUID, today: date) -> list[CareAssignment]:
        return list(
            await self.session.scalars(
                select(CareAssignment)
                .where(CareAssignment.mother_id.in_(visible_mother_ids(butler_id, today)))
                .where(
                    CareAssignment.butler_id == butler_id,
                    CareAssignment.ends_at.is_(None),
                )
                .order_by(CareAssignment.mother_id)
            )
        )

    async def next_visits(self, mother_ids: list[uuid.UUID], today: date) -> dict[uuid.UUID, Visit]:
        if not mother_ids:
            return {}
        out: dict[uuid.UUID, Visit] = {}
        for visit in await self.session.scalars(
            select(Visit)
            .where(
                Visit.mother_id.in_(mother_ids),
                Visit.visit_date >= today,
                Visit.status.in_(ACTIVE),
            )
            .order_by(Visit.scheduled_at)
        ):
            out.setdefault(visit.mother_id, visit)
        return out

    async def open_reports(self, mother_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Per mother: reports the butler still has to pick up or deliver."""
        if not mother_ids:
            return {}
        rows = await self.session.execute(
            select(LabReport.mother_id, func.count())
            .where(
                LabReport.mother_id.in_(mother_ids),
                LabReport.pickup_state.in_((PickupState.READY, PickupState.PICKED_UP)),
            )
            .group_by(LabReport.mother_id)
        )
        return {m: int(n) for m, n in rows.all() if m is not None}
