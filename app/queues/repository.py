"""Every query of the queues: the catalogue, stations, queue entries and exam steps.

``claim`` is the one subtle one: on PostgreSQL it locks her waiting row with ``FOR UPDATE SKIP
LOCKED`` inside a savepoint, so that stations calling at the same moment never wait on each
other or get the same mother; SQLite serialises writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Update, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.mothers.models import Mother, Pregnancy
from app.queues.models import (
    EntryState,
    ExamStep,
    ExamType,
    QueueEntry,
    Station,
    StationTicket,
    StepState,
)
from app.visits.domain import VisitStatus
from app.visits.models import ExamOrder, ExamOrderStatus, Visit


def queue_changed_at_update(station_id: uuid.UUID, at: datetime) -> Update:
    """The write of a station's ``queue_changed_at`` (run at commit, see ``changes``)."""
    return (
        update(Station)
        .where(Station.id == station_id)
        .values(queue_changed_at=at)
        .execution_options(synchronize_session=False)
    )


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # The catalogue ----------------------------------------------------------------------

    async def exam_types(self) -> list[ExamType]:
        return list((await self.session.scalars(select(ExamType))).all())

    async def exam_types_in_order(self) -> list[ExamType]:
        return list(
            (await self.session.scalars(select(ExamType).order_by(ExamType.position))).all()
        )

    async def exam_type_for_update(self, code: str) -> ExamType | None:
        """The exam type's row, locked (PostgreSQL), as it is now in the database (its learned
        mean is updated in SQL, behind any copy this session holds)."""
        return await self.session.scalar(
            select(ExamType)
            .where(ExamType.code == code)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def learn_service_minutes(
        self, code: str, minutes: float, alpha: float
    ) -> tuple[float, int] | None:
        """An EWMA of how long the exam takes, updated in SQL (no lost update); the mean right
        after this sample and its number (None: no such exam type)."""
        current = func.coalesce(ExamType.learned_service_minutes, minutes)
        row = (
            await self.session.execute(
                update(ExamType)
                .where(ExamType.code == code)
                .values(
                    learned_service_minutes=alpha * minutes + (1 - alpha) * current,
                    learned_samples=ExamType.learned_samples + 1,
                )
                .returning(ExamType.learned_service_minutes, ExamType.learned_samples)
                .execution_options(synchronize_session=False)
            )
        ).first()
        return None if row is None or row[0] is None else (float(row[0]), int(row[1]))

    # Stations ---------------------------------------------------------------------------

    async def station(self, station_id: uuid.UUID) -> Station | None:
        return await self.session.get(Station, station_id)

    async def stations(self, ids: Iterable[uuid.UUID]) -> list[Station]:
        ids = list(set(ids))
        if not ids:
            return []
        return list((await self.session.scalars(select(Station).where(Station.id.in_(ids)))).all())

    async def stations_by_code(self) -> list[Station]:
        return list((await self.session.scalars(select(Station).order_by(Station.code))).all())

    async def station_by_code(self, code: str, *, for_update: bool = False) -> Station | None:
        query = select(Station).where(Station.code == code.upper())
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def station_code_taken(self, code: str) -> bool:
        return bool(await self.session.scalar(select(Station.id).where(Station.code == code)))

    async def station_codes(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await self.session.execute(
            select(Station.id, Station.code).where(Station.id.in_(set(ids)))
        )
        return dict(rows.all())

    async def open_stations_of_type(self, station_type: str) -> list[Station]:
        return list(
            (
                await self.session.scalars(
                    select(Station).where(Station.station_type == station_type, Station.is_open)
                )
            ).all()
        )

    async def live_load(self, station_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """The expected minutes of every live place, per station."""
        rows = await self.session.execute(
            select(QueueEntry.station_id, func.sum(QueueEntry.expected_minutes))
            .where(
                QueueEntry.station_id.in_(station_ids),
                QueueEntry.state.in_(EntryState.LIVE),
            )
            .group_by(QueueEntry.station_id)
        )
        return dict(rows.all())

    async def live_counts(self) -> list[tuple[uuid.UUID, str, int]]:
        """Live places per station and state."""
        rows = await self.session.execute(
            select(QueueEntry.station_id, QueueEntry.state, func.count())
            .where(QueueEntry.state.in_(EntryState.LIVE))
            .group_by(QueueEntry.station_id, QueueEntry.state)
        )
        return [(sid, state, n) for sid, state, n in rows.all()]

    async def highest_busy_room(self, station_id: uuid.UUID) -> int | None:
        return await self.session.scalar(
            select(func.max(QueueEntry.room)).where(
                QueueEntry.station_id == station_id, QueueEntry.state.in_(EntryState.BUSY)
            )
        )

    async def next_ticket(self, station_id: uuid.UUID, day: date) -> int:
        """The station's next ticket number of the day, counted under its row lock."""
        dialect = self.session.get_bind().dialect.name
        maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
        upsert = (
            maker(StationTicket)
            .values(station_id=station_id, day=day, last_number=1)
            .on_conflict_do_update(
                index_elements=[StationTicket.station_id, StationTicket.day],
                set_={"last_number": StationTicket.last_number + 1},
            )
            .returning(StationTicket.last_number)
        )
        return int((await self.session.execute(upsert)).scalar_one())

    # Queue entries ----------------------------------------------------------------------

    async def entry(self, entry_id: uuid.UUID, *, for_update: bool = True) -> QueueEntry | None:
        query = select(QueueEntry).where(QueueEntry.id == entry_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def entries(self, ids: Iterable[uuid.UUID]) -> list[QueueEntry]:
        return list(
            (await self.session.scalars(select(QueueEntry).where(QueueEntry.id.in_(ids)))).all()
        )

    async def live_entries(self, visit_id: uuid.UUID) -> list[QueueEntry]:
        return list(
            (
                await self.session.scalars(
                    select(QueueEntry).where(
                        QueueEntry.visit_id == visit_id, QueueEntry.state.in_(EntryState.LIVE)
                    )
                )
            ).all()
        )

    async def closed_entries(self, visit_id: uuid.UUID) -> list[QueueEntry]:
        """Her places that ended, in the order they did."""
        return list(
            (
                await self.session.scalars(
                    select(QueueEntry)
                    .where(
                        QueueEntry.visit_id == visit_id,
                        QueueEntry.state.not_in(EntryState.LIVE),
                    )
                    .order_by(QueueEntry.closed_at, QueueEntry.entered_at)
                )
            ).all()
        )

    async def waiting_entries(self, station_id: uuid.UUID) -> list[QueueEntry]:
        return list(
            (
                await self.session.scalars(
                    select(QueueEntry).where(
                        QueueEntry.station_id == station_id,
                        QueueEntry.state == EntryState.WAITING,
                    )
                )
            ).all()
        )

    async def waiting_count(self, station_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(QueueEntry)
                .where(QueueEntry.station_id == station_id, QueueEntry.state == EntryState.WAITING)
            )
            or 0
        )

    async def waiting_today(
        self, station_id: uuid.UUID, day: date
    ) -> list[tuple[QueueEntry, bool | None]]:
        """The station's waiting entries of the day, each with her visit's urgent flag."""
        rows = await self.session.execute(
            select(QueueEntry, Visit.urgent)
            .join(Visit, Visit.id == QueueEntry.visit_id)
            .where(
                QueueEntry.station_id == station_id,
                QueueEntry.state == EntryState.WAITING,
                QueueEntry.day == day,
            )
        )
        return [(e, flag) for e, flag in rows.all()]

    async def busy_entries(self, station_id: uuid.UUID) -> list[QueueEntry]:
        """Who is called or in service at the station, by room."""
        return list(
            (
                await self.session.scalars(
                    select(QueueEntry)
                    .where(
                        QueueEntry.station_id == station_id,
                        QueueEntry.state.in_(EntryState.BUSY),
                    )
                    .order_by(QueueEntry.room)
                )
            ).all()
        )

    async def ticket_in_room(self, station_id: uuid.UUID, room: int) -> str | None:
        return await self.session.scalar(
            select(QueueEntry.ticket).where(
                QueueEntry.station_id == station_id,
                QueueEntry.room == room,
                QueueEntry.state.in_(EntryState.BUSY),
            )
        )

    async def live_station_ids_of_mother(self, mother_id: uuid.UUID) -> set[uuid.UUID]:
        return set(
            (
                await self.session.scalars(
                    select(QueueEntry.station_id).where(
                        QueueEntry.mother_id == mother_id, QueueEntry.state.in_(EntryState.LIVE)
                    )
                )
            ).all()
        )

    async def live_mother_ids_at(self, station_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return set(
            (
                await self.session.scalars(
                    select(QueueEntry.mother_id).where(
                        QueueEntry.station_id.in_(station_ids),
                        QueueEntry.state.in_(EntryState.LIVE),
                    )
                )
            ).all()
        )

    async def busy_mothers(self, mother_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Of these mothers, those called or in service somewhere."""
        ids = list(set(mother_ids))
        if not ids:
            return set()
        rows = await self.session.scalars(
            select(QueueEntry.mother_id).where(
                QueueEntry.mother_id.in_(ids), QueueEntry.state.in_(EntryState.BUSY)
            )
        )
        return set(rows)

    async def waiting_elsewhere(
        self, mother_ids: Iterable[uuid.UUID], station_id: uuid.UUID, day: date, now: datetime
    ) -> list[QueueEntry]:
        """These mothers' places of the day at other stations, waiting and callable by now."""
        ids = list(set(mother_ids))
        if not ids:
            return []
        rows = await self.session.scalars(
            select(QueueEntry).where(
                QueueEntry.mother_id.in_(ids),
                QueueEntry.station_id != station_id,
                QueueEntry.state == EntryState.WAITING,
                QueueEntry.day == day,
                QueueEntry.available_at <= now,
            )
        )
        return list(rows.all())

    async def fasting_mothers(self, mother_ids: Iterable[uuid.UUID], day: date) -> set[uuid.UUID]:
        """Of these mothers, those with a fasting place of the day still waiting (due or not)."""
        ids = list(set(mother_ids))
        if not ids:
            return set()
        rows = await self.session.scalars(
            select(QueueEntry.mother_id).where(
                QueueEntry.mother_id.in_(ids),
                QueueEntry.day == day,
                QueueEntry.state == EntryState.WAITING,
                QueueEntry.fasting.is_(True),
            )
        )
        return set(rows.all())

    async def last_finished(
        self, mother_ids: Iterable[uuid.UUID], day: date
    ) -> dict[uuid.UUID, datetime]:
        """When each of these mothers' last service of the day ended (none yet: absent)."""
        ids = list(set(mother_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(QueueEntry.mother_id, func.max(QueueEntry.finished_at))
            .where(
                QueueEntry.mother_id.in_(ids),
                QueueEntry.day == day,
                QueueEntry.finished_at.is_not(None),
            )
            .group_by(QueueEntry.mother_id)
        )
        return {m: at for m, at in rows.all() if at is not None}

    async def timed_dues(
        self, mother_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[datetime, datetime]]:
        """Each mother's earliest and latest due time of a waiting timed draw."""
        ids = list(set(mother_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(QueueEntry.mother_id, func.min(QueueEntry.due_at), func.max(QueueEntry.due_at))
            .where(
                QueueEntry.mother_id.in_(ids),
                QueueEntry.state == EntryState.WAITING,
                QueueEntry.due_at.is_not(None),
            )
            .group_by(QueueEntry.mother_id)
        )
        return {m: (lo, hi) for m, lo, hi in rows.all() if lo is not None and hi is not None}

    async def close_stale(
        self,
        *,
        today: date,
        now: datetime,
        mother_id: uuid.UUID | None = None,
        station_id: uuid.UUID | None = None,
    ) -> None:
        """Cancel the live places of days before ``today``."""
        query = (
            update(QueueEntry)
            .where(QueueEntry.day < today, QueueEntry.state.in_(EntryState.LIVE))
            .values(
                state=EntryState.CANCELLED,
                closed_at=now,
                close_reason="not finished on its day",
            )
            .execution_options(synchronize_session=False)
        )
        if mother_id is not None:
            query = query.where(QueueEntry.mother_id == mother_id)
        if station_id is not None:
            query = query.where(QueueEntry.station_id == station_id)
        await self.session.execute(query)

    async def claim(
        self, entry_id: uuid.UUID, room: int, now: datetime, *, skip_locked: bool
    ) -> bool:
        """Turn her waiting entry into a call, unless another station got there first.

        With ``skip_locked`` (PostgreSQL) the row is locked with SKIP LOCKED (a station never
        waits on another), and a concurrent call of the same mother elsewhere trips the partial
        unique index: the savepoint is rolled back and False returned. SQLite writes are
        serialised.
        """
        claim = select(QueueEntry.id).where(
            QueueEntry.id == entry_id, QueueEntry.state == EntryState.WAITING
        )
        move = (
            update(QueueEntry)
            .where(QueueEntry.id == entry_id, QueueEntry.state == EntryState.WAITING)
            .values(state=EntryState.CALLED, room=room, called_at=now)
            .execution_options(synchronize_session=False)
        )
        session = self.session
        if not skip_locked:
            if await session.scalar(claim) is None:
                return False
            return bool(getattr(await session.execute(move), "rowcount", 1) == 1)
        try:
            async with session.begin_nested():
                if await session.scalar(claim.with_for_update(skip_locked=True)) is None:
                    return False
                return bool(getattr(await session.execute(move), "rowcount", 1) == 1)
        except IntegrityError:
            return False

    async def awaiting_timing_start(
        self, station_id: uuid.UUID, day: date
    ) -> list[tuple[QueueEntry, ExamStep]]:
        """The day's finished services at the station whose first step's timed test has not
        had its start recorded, with that first step, in the order they finished."""
        timed = aliased(ExamStep)
        first = aliased(ExamStep)
        rows = await self.session.execute(
            select(QueueEntry, first)
            .join(first, first.entry_id == QueueEntry.id)
            .join(Visit, Visit.id == QueueEntry.visit_id)
            .where(
                QueueEntry.station_id == station_id,
                QueueEntry.day == day,
                QueueEntry.state == EntryState.DONE,
                first.offset_minutes == 0,
                first.state == StepState.DONE,
                first.timing_started_at.is_(None),
                Visit.status.in_([VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS]),
                exists().where(
                    timed.order_id == first.order_id,
                    timed.offset_minutes > 0,
                    timed.state == StepState.PENDING,
                    timed.timed_from.is_not(None),
                ),
            )
            .order_by(QueueEntry.finished_at, QueueEntry.id)
        )
        return [(e, s) for e, s in rows.all()]

    # Exam steps -------------------------------------------------------------------------

    async def steps_of_visits(self, visit_ids: Sequence[uuid.UUID]) -> list[ExamStep]:
        if not visit_ids:
            return []
        return list(
            (
                await self.session.scalars(
                    select(ExamStep)
                    .where(ExamStep.visit_id.in_(visit_ids))
                    .order_by(
                        ExamStep.created_at,
                        ExamStep.exam_code,
                        ExamStep.offset_minutes,
                        ExamStep.id,
                    )
                )
            ).all()
        )

    async def planned_order_ids(self, visit_id: uuid.UUID) -> set[uuid.UUID]:
        """The visit's orders that have their steps already."""
        return set(
            (
                await self.session.scalars(
                    select(ExamStep.order_id).where(ExamStep.visit_id == visit_id)
                )
            ).all()
        )

    async def steps_of_order(self, order_id: uuid.UUID) -> list[ExamStep]:
        return list(
            await self.session.scalars(select(ExamStep).where(ExamStep.order_id == order_id))
        )

    async def steps_of_entries(self, entry_ids: Sequence[uuid.UUID]) -> list[ExamStep]:
        return list(
            (
                await self.session.scalars(select(ExamStep).where(ExamStep.entry_id.in_(entry_ids)))
            ).all()
        )

    async def steps_of_entry(self, entry_id: uuid.UUID) -> list[ExamStep]:
        return list(
            await self.session.scalars(select(ExamStep).where(ExamStep.entry_id == entry_id))
        )

    async def pending_steps_of_entry(self, entry_id: uuid.UUID) -> list[ExamStep]:
        return list(
            (
                await self.session.scalars(
                    select(ExamStep).where(
                        ExamStep.entry_id == entry_id, ExamStep.state == StepState.PENDING
                    )
                )
            ).all()
        )

    async def count_pending_steps_of_entry(self, entry_id: uuid.UUID) -> int | None:
        return await self.session.scalar(
            select(func.count())
            .select_from(ExamStep)
            .where(ExamStep.entry_id == entry_id, ExamStep.state == StepState.PENDING)
        )

    async def finish_steps_of_entry(self, entry_id: uuid.UUID, now: datetime) -> int | None:
        """Mark the entry's pending steps done; the number written (None if unknown)."""
        done = await self.session.execute(
            update(ExamStep)
            .where(ExamStep.entry_id == entry_id, ExamStep.state == StepState.PENDING)
            .values(state=StepState.DONE, done_at=now)
            .execution_options(synchronize_session=False)
        )
        rowcount: int | None = getattr(done, "rowcount", None)
        return rowcount

    async def first_steps_of_entry(self, entry_id: uuid.UUID) -> list[ExamStep]:
        return list(
            (
                await self.session.scalars(
                    select(ExamStep).where(
                        ExamStep.entry_id == entry_id, ExamStep.offset_minutes == 0
                    )
                )
            ).all()
        )

    async def timed_steps(self, order_ids: Sequence[uuid.UUID], event: str) -> list[ExamStep]:
        """The steps of these orders timed from ``event``, by offset."""
        return list(
            (
                await self.session.scalars(
                    select(ExamStep)
                    .where(
                        ExamStep.order_id.in_(order_ids),
                        ExamStep.offset_minutes > 0,
                        ExamStep.timed_from == event,
                    )
                    .order_by(ExamStep.offset_minutes)
                )
            ).all()
        )

    async def record_timing_start(self, step_id: uuid.UUID, values: dict[str, Any]) -> int:
        """Write the start of a timed test on its first step, once; the rows written."""
        written = await self.session.execute(
            update(ExamStep)
            .where(ExamStep.id == step_id, ExamStep.timing_started_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(written, "rowcount", 1))

    async def orders_with_pending_steps(self, order_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        return set(
            (
                await self.session.scalars(
                    select(ExamStep.order_id).where(
                        ExamStep.order_id.in_(order_ids), ExamStep.state == StepState.PENDING
                    )
                )
            ).all()
        )

    # Her visit, orders and pregnancy -----------------------------------------------------

    async def visit(self, visit_id: uuid.UUID, *, for_update: bool = False) -> Visit | None:
        if for_update:
            return await self.session.get(Visit, visit_id, with_for_update=True)
        return await self.session.get(Visit, visit_id)

    async def mother_of_visit(self, visit_id: uuid.UUID) -> uuid.UUID | None:
        return await self.session.scalar(select(Visit.mother_id).where(Visit.id == visit_id))

    async def edd_of(self, pregnancy_id: uuid.UUID) -> date | None:
        return await self.session.scalar(
            select(Pregnancy.edd_date).where(Pregnancy.id == pregnancy_id)
        )

    async def open_orders(self, visit_id: uuid.UUID) -> list[ExamOrder]:
        return list(
            (
                await self.session.scalars(
                    select(ExamOrder).where(
                        ExamOrder.visit_id == visit_id,
                        ExamOrder.status == ExamOrderStatus.ORDERED,
                    )
                )
            ).all()
        )

    async def order_for_update(self, order_id: uuid.UUID) -> ExamOrder | None:
        return await self.session.scalar(
            select(ExamOrder).where(ExamOrder.id == order_id).with_for_update()
        )

    async def complete_orders(self, order_ids: set[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(ExamOrder)
            .where(ExamOrder.id.in_(order_ids), ExamOrder.status == ExamOrderStatus.ORDERED)
            .values(status=ExamOrderStatus.DONE, completed_at=now)
            .execution_options(synchronize_session=False)
        )

    async def visit_facts(
        self, visit_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, bool | None, str, str, bool | None]]:
        """Per visit: its id, urgent flag, her name and MRN, and the pregnancy's purple flag."""
        rows = await self.session.execute(
            select(Visit.id, Visit.urgent, Mother.name, Mother.mrn, Pregnancy.purple)
            .join(Mother, Mother.id == Visit.mother_id)
            .join(Pregnancy, Pregnancy.id == Visit.pregnancy_id)
            .where(Visit.id.in_(visit_ids))
        )
        return {r[0]: (r[0], r[1], r[2], r[3], r[4]) for r in rows.all()}

    async def mother_names(self, mother_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await self.session.execute(
            select(Mother.id, Mother.name).where(Mother.id.in_(mother_ids))
        )
        return dict(rows.all())

    async def names_of_entries(self, entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await self.session.execute(
            select(QueueEntry.id, Mother.name)
            .join(Mother, Mother.id == QueueEntry.mother_id)
            .where(QueueEntry.id.in_(entry_ids))
        )
        return dict(rows.all())
