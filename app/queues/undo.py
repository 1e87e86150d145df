"""Undo a mis-tap (issue 19): a room takes back its last call, start or finish, within two
minutes, when nothing has happened since that depends on it.

- **A call** undone: she waits again, where she was (her place in the call order comes from her
  booked time, ticket and flags, none of which a call changes). Not once she was called again
  (a recall): the room called her on purpose.
- **A start** undone: she is called again, not yet in the room.
- **A finish** undone: she is in service again; the exam's steps are pending again and its
  orders open. The places the finish opened for her (the next exams now open to her) are given
  back, and her places are routed again. Refused when something since depends on it: she was
  called anywhere since, her glucose drink was recorded on it, a lab report came for its orders,
  readings were taken with it, or her visit ended.

Only the room's last action: nothing the room did since (another call) may be left standing
on top of it. The request names what it undoes (``call``, ``start``, ``finish``) so that two
taps at once undo one thing, not two steps back: the entry is locked for the request
(``EntryDep``, ``FOR UPDATE`` on PostgreSQL) and each move is a conditional ``UPDATE … WHERE
state = …`` inside a savepoint, so the second sees what the first did and is refused, and a
concurrent call elsewhere that took her (or the room) trips the partial unique indexes and is
refused too, not a 500.

An undone finish takes back what it taught the learned service time (the finish keeps its
sample on the entry; the EWMA loses it exactly, though others were learned since); see
docs/queues.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Conflict
from app.measurements.models import Measurement
from app.queues.changes import queue_changed
from app.queues.domain import Catalogue
from app.queues.models import EntryState, ExamStep, QueueEntry, Station, StepState
from app.queues.operations import unlearned
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository
from app.queues.routing import route_visit
from app.reports.models import LabReport
from app.visits.domain import VisitStatus
from app.visits.models import ExamOrder, ExamOrderStatus

UNDO_WINDOW = timedelta(minutes=2)


class UndoAction(StrEnum):
    CALL = "call"
    START = "start"
    FINISH = "finish"


class UndoRefused(Conflict):
    slug = "undo-refused"
    title = "This cannot be undone"


# The state each action leaves the entry in, and the column that says when it happened.
_LEFT = {
    UndoAction.CALL: EntryState.CALLED,
    UndoAction.START: EntryState.IN_SERVICE,
    UndoAction.FINISH: EntryState.DONE,
}
_BACK = {
    UndoAction.CALL: EntryState.WAITING,
    UndoAction.START: EntryState.CALLED,
    UndoAction.FINISH: EntryState.IN_SERVICE,
}


def _when(entry: QueueEntry, action: UndoAction) -> datetime | None:
    if action is UndoAction.CALL:
        return entry.called_at
    if action is UndoAction.START:
        return entry.started_at
    return entry.finished_at


@dataclass(frozen=True, slots=True)
class Undone:
    action: UndoAction
    at: datetime  # when the undone action happened
    room: int
    given_back: list[QueueEntry]  # places the undone finish had opened, closed now


def _refuse(entry: QueueEntry, reason: str, detail: str, **extra: Any) -> NoReturn:
    raise UndoRefused(detail, extra={"reason": reason, "ticket": entry.ticket, **extra})


async def undo(
    session: AsyncSession,
    entry: QueueEntry,
    action: UndoAction,
    catalogue: Catalogue,
    ctx: Ctx,
    *,
    room: int | None = None,
) -> Undone:
    """Take back the room's last ``action`` on ``entry`` (locked by the caller); ``room``, when
    given, is the room asking: another room's action is not its to undo."""
    at = _when(entry, action)
    if entry.state != _LEFT[action] or at is None or entry.room is None:
        _refuse(
            entry,
            "not-last-action",
            f"Ticket {entry.ticket} is {entry.state.replace('_', ' ')}: there is no {action} of"
            " it to undo (already undone, or it moved on).",
            current_state=entry.state,
        )
    if room is not None and room != entry.room:
        _refuse(
            entry,
            "not-last-action",
            f"Ticket {entry.ticket} was seen in room {entry.room}, not room {room}: only the"
            " room that did it can undo it.",
        )
    room = entry.room
    repo = QueueRepository(session)
    station = await repo.station(entry.station_id)
    assert station is not None
    # A call or a start: she is still in the room, so the room has done nothing since (a
    # recall is refused below). A finish: the room must have called nobody since.
    later = await _room_called_since(session, entry) if action is UndoAction.FINISH else None
    if later is not None:
        _refuse(
            entry,
            "not-last-action",
            f"Room {room} of {station.code} has called ticket {later} since; only the room's"
            " last action can be undone.",
        )
    if ctx.now - at > UNDO_WINDOW:
        local = at.astimezone(ctx.tz).strftime("%H:%M:%S")
        _refuse(
            entry,
            "too-late",
            f"The {action} of ticket {entry.ticket} was at {local}, more than"
            f" {UNDO_WINDOW.seconds // 60} minutes ago: it can no longer be undone.",
            done_at=at.isoformat(),
        )
    given_back: list[QueueEntry] = []
    if action is UndoAction.CALL:
        if entry.recalls:
            _refuse(
                entry,
                "depends",
                f"Ticket {entry.ticket} was called again since ({entry.recalls}×): the room"
                " called her on purpose.",
            )
        await _move(session, entry, action, at, state=EntryState.WAITING, room=None, called_at=None)
    elif action is UndoAction.START:
        await _move(session, entry, action, at, state=EntryState.CALLED, started_at=None)
    else:
        given_back = await _unfinish(session, entry, station, at, ctx)
    stations = {entry.station_id} | {e.station_id for e in given_back}
    if action is UndoAction.FINISH:
        visit = await repo.visit(entry.visit_id)
        assert visit is not None
        routed = await route_visit(session, visit, catalogue, ctx)
        stations |= routed.stations | await repo.live_station_ids_of_mother(entry.mother_id)
    await queue_changed(session, await repo.stations(stations), ctx, mother_ids=[entry.mother_id])
    return Undone(action, at, room, given_back)


async def _unlearn(session: AsyncSession, entry: QueueEntry) -> None:
    """Take back what the undone finish taught the learned service time (exactly, though
    others finished the same exam since: ``operations.unlearned``); the exam type's row is
    locked for it (``FOR UPDATE`` on PostgreSQL), as a finish's update is atomic."""
    exam_code, minutes = entry.taught_exam, entry.taught_minutes
    mean_after, sample = entry.taught_mean, entry.taught_sample
    if exam_code is None or minutes is None or mean_after is None or sample is None:
        return  # it taught nothing (never started, or before this was kept)
    exam = await QueueRepository(session).exam_type_for_update(exam_code)
    if (
        exam is not None
        and exam.learned_service_minutes is not None
        and exam.learned_samples >= sample
    ):
        mean = unlearned(
            exam.learned_service_minutes,
            exam.learned_samples,
            minutes=minutes,
            mean_after=mean_after,
            sample=sample,
        )
        exam.learned_service_minutes = None if mean is None else max(0.5, mean)
        exam.learned_samples -= 1
    entry.taught_exam = entry.taught_minutes = entry.taught_mean = entry.taught_sample = None


async def _room_called_since(session: AsyncSession, entry: QueueEntry) -> str | None:
    """A ticket the room called after this one (so after its finish: a room calls one mother
    at a time), or that it holds now."""
    return await session.scalar(
        select(QueueEntry.ticket)
        .where(
            QueueEntry.station_id == entry.station_id,
            QueueEntry.room == entry.room,
            QueueEntry.id != entry.id,
            (QueueEntry.called_at > entry.called_at) | QueueEntry.state.in_(EntryState.BUSY),
        )
        .limit(1)
    )


async def _move(
    session: AsyncSession,
    entry: QueueEntry,
    action: UndoAction,
    at: datetime,
    **values: Any,
) -> None:
    """Put the entry back, only if it is still as the action left it (a conditional UPDATE in
    a savepoint: a concurrent undo, or a call that took her or the room, makes it fail)."""
    stamp = {
        UndoAction.CALL: QueueEntry.called_at,
        UndoAction.START: QueueEntry.started_at,
        UndoAction.FINISH: QueueEntry.finished_at,
    }[action]
    move = (
        update(QueueEntry)
        .where(QueueEntry.id == entry.id, QueueEntry.state == _LEFT[action], stamp == at)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    try:
        async with session.begin_nested():
            written = getattr(await session.execute(move), "rowcount", 1)
    except IntegrityError:
        _refuse(
            entry,
            "depends",
            f"Ticket {entry.ticket} cannot go back: she, or room {entry.room}, was called"
            " meanwhile.",
        )
    if written != 1:
        _refuse(
            entry, "not-last-action", f"The {action} of ticket {entry.ticket} was undone already."
        )
    for name, value in values.items():
        set_committed_value(entry, name, value)
    assert entry.state == _BACK[action]


async def _unfinish(
    session: AsyncSession, entry: QueueEntry, station: Station, at: datetime, ctx: Ctx
) -> list[QueueEntry]:
    """The finish undone, unless something since depends on it; the places it opened for her
    are given back (returned)."""
    repo = QueueRepository(session)
    visit = await repo.visit(entry.visit_id, for_update=True)
    assert visit is not None
    if visit.status not in (VisitStatus.CHECKED_IN, VisitStatus.IN_PROGRESS):
        _refuse(entry, "depends", f"Her visit is {visit.status.replace('_', ' ')} now.")
    called = (
        await session.execute(
            select(QueueEntry.ticket, Station.code)
            .join(Station, Station.id == QueueEntry.station_id)
            .where(
                QueueEntry.mother_id == entry.mother_id,
                QueueEntry.id != entry.id,
                QueueEntry.called_at >= at,
            )
            .limit(1)
        )
    ).first()
    if called is not None:
        _refuse(
            entry,
            "depends",
            f"She was called since (ticket {called[0]} at {called[1]}): her next exam began.",
        )
    steps = list(
        (await session.scalars(select(ExamStep).where(ExamStep.entry_id == entry.id))).all()
    )
    if any(s.timing_started_at is not None for s in steps):
        _refuse(
            entry,
            "depends",
            "Her glucose drink was recorded on this draw: its timed draws count from it.",
        )
    orders = {s.order_id for s in steps}
    if orders and await session.scalar(select(exists().where(LabReport.exam_order_id.in_(orders)))):
        _refuse(entry, "depends", "A lab report has come for this exam.")
    since = entry.started_at or entry.called_at or at
    if await session.scalar(
        select(
            exists().where(
                Measurement.visit_id == entry.visit_id,
                Measurement.recorded_at >= since,
            )
        )
    ):
        _refuse(
            entry,
            "depends",
            "Readings were recorded with this exam: correct them instead, then it can be"
            " finished again.",
        )
    # The places this finish opened for her (waiting since): given back, each only if she
    # still waits there. A station that called her at one meanwhile (between this read and
    # the write) made her next exam begin: the undo is refused, not her call cancelled.
    opened = await _opened_by(session, entry, at)
    await _give_back(session, entry, opened, ctx)
    if opened:
        for step in (
            await session.scalars(
                select(ExamStep).where(
                    ExamStep.entry_id.in_([o.id for o in opened]),
                    ExamStep.state == StepState.PENDING,
                )
            )
        ).all():
            step.entry_id = None
    await session.flush()
    await _move(
        session,
        entry,
        UndoAction.FINISH,
        at,
        state=EntryState.IN_SERVICE,
        finished_at=None,
        closed_at=None,
        close_reason=None,
    )
    await _unlearn(session, entry)
    await session.execute(
        update(ExamStep)
        .where(ExamStep.entry_id == entry.id, ExamStep.state == StepState.DONE)
        .values(state=StepState.PENDING, done_at=None)
        .execution_options(synchronize_session=False)
    )
    for step in steps:
        if step.state == StepState.DONE:
            set_committed_value(step, "state", StepState.PENDING)
            set_committed_value(step, "done_at", None)
    if orders:
        await session.execute(
            update(ExamOrder)
            .where(ExamOrder.id.in_(orders), ExamOrder.status == ExamOrderStatus.DONE)
            .values(status=ExamOrderStatus.ORDERED, completed_at=None)
            .execution_options(synchronize_session=False)
        )
        # Any of them this request holds: as written now.
        await session.execute(
            select(ExamOrder)
            .where(ExamOrder.id.in_(orders))
            .execution_options(populate_existing=True)
        )
    return opened


async def _opened_by(session: AsyncSession, entry: QueueEntry, at: datetime) -> list[QueueEntry]:
    """Her places that opened with the finish (waiting since it)."""
    return list(
        (
            await session.scalars(
                select(QueueEntry).where(
                    QueueEntry.visit_id == entry.visit_id,
                    QueueEntry.state == EntryState.WAITING,
                    QueueEntry.entered_at >= at,
                )
            )
        ).all()
    )


async def _give_back(
    session: AsyncSession, entry: QueueEntry, opened: list[QueueEntry], ctx: Ctx
) -> None:
    """Cancel the opened places with one conditional ``UPDATE … WHERE state = 'waiting'`` in a
    savepoint: unless every one of them still waits, nothing is written and the undo is
    refused (on PostgreSQL a call that took one first, committed or not, is seen by the
    UPDATE: it waits for the caller's lock and re-reads the row)."""
    if not opened:
        return
    reason = f"the finish of {entry.ticket} was undone"
    close = (
        update(QueueEntry)
        .where(
            QueueEntry.id.in_([o.id for o in opened]),
            QueueEntry.state == EntryState.WAITING,
        )
        .values(state=EntryState.CANCELLED, closed_at=ctx.now, close_reason=reason)
        .execution_options(synchronize_session=False)
    )
    async with session.begin_nested():
        written = getattr(await session.execute(close), "rowcount", len(opened))
        if written != len(opened):  # raised inside: the savepoint is rolled back
            _refuse(
                entry,
                "depends",
                "She was called since at one of the places this finish opened for her: her"
                " next exam began.",
            )
    for other in opened:
        set_committed_value(other, "state", EntryState.CANCELLED)
        set_committed_value(other, "closed_at", ctx.now)
        set_committed_value(other, "close_reason", reason)
