"""What a station's screens show: its queue (who is served, who waits in call order with
estimated waits, whose glucose drink is not yet recorded), the answer to a call, and the
waiting-room display (tickets and masked names only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.mothers.domain import mask_name
from app.queues.domain import GLUCOSE_DRINK, TIMING_EVENTS, Catalogue
from app.queues.longpoll import Built
from app.queues.models import EntryState, ExamStep, QueueEntry, Station
from app.queues.policy import Ctx
from app.queues.positions import (
    Claims,
    callable_now,
    claims,
    estimates_in_order,
    waiting_in_call_order,
)
from app.queues.repository import QueueRepository
from app.queues.schemas import (
    AwaitingStart,
    BoardTicket,
    CalledMother,
    CallResult,
    StationBoard,
    StationQueue,
)
from app.queues.timing import awaiting_timing_start
from app.queues.views import entry_facts, entry_views, station_views

BOARD_NEXT = 5  # tickets shown as next on the waiting-room display
BOARD_LATER = 8  # draws not yet due shown apart


async def station_queue(
    session: AsyncSession,
    station: Station,
    catalogue: Catalogue,
    ctx: Ctx,
    order: CallOrder | None = None,
) -> tuple[StationQueue, list[uuid.UUID]]:
    """The station's queue in its true order, and the mothers it shows (for the audit trail).

    ``waiting`` is the order call-next takes (``call_order``, read through ``callable_now``,
    the rule call-next itself follows): first whom it calls now, then those it passes over now
    (busy at another exam, called first by a free room of a longer exam, or kept for a timed
    draw due soon), each saying why. A draw (or a rejoin) not callable yet is apart in
    ``scheduled`` with its time. One line per mother."""
    order = order or await call_order(session, station, ctx)
    at = station.queue_changed_at or ctx.now
    in_turn = [*order.next, *order.held]
    estimates = estimates_in_order(station, order.busy, [*in_turn, *order.later], at)
    serving = await entry_views(session, order.busy, catalogue)
    waiting = await entry_views(session, in_turn, catalogue, estimates=estimates)
    waiting = [w.model_copy(update={"held": order.held_because.get(w.id)}) for w in waiting]
    scheduled = await entry_views(session, order.later, catalogue, estimates=estimates)
    awaiting = await awaiting_timing_start(session, station, ctx)
    shown = [*order.busy, *in_turn, *order.later]
    queue = StationQueue(
        station=(await station_views(session, [station]))[0],
        serving=serving,
        waiting=waiting,
        scheduled=scheduled,
        awaiting_start=await _awaiting_views(session, awaiting, catalogue),
        next_to_call=[e.id for e in order.next],
        as_of=station.queue_changed_at,
    )
    return queue, [e.mother_id for e in shown] + [a.mother_id for a, _ in awaiting]


async def _awaiting_views(
    session: AsyncSession, awaiting: list[tuple[QueueEntry, ExamStep]], catalogue: Catalogue
) -> list[AwaitingStart]:
    if not awaiting:
        return []
    names = await QueueRepository(session).mother_names({e.mother_id for e, _ in awaiting})
    out = []
    for entry, first in awaiting:
        rule = catalogue.rule(first.exam_code)
        assert first.done_at is not None
        out.append(
            AwaitingStart(
                entry_id=entry.id,
                ticket=entry.ticket,
                masked_name=mask_name(names[entry.mother_id]),
                exam=rule.name if rule else first.exam_code,
                exam_zh=rule.zh if rule else first.exam_code,
                event=GLUCOSE_DRINK,
                first_step_done_at=first.done_at,
                waiting_for=f"{TIMING_EVENTS[GLUCOSE_DRINK]} not started",
            )
        )
    return out


async def call_result(
    session: AsyncSession, station: Station, entry: QueueEntry | None, catalogue: Catalogue
) -> CallResult:
    """The answer to a station's call: whom it called (name and MRN, to check her wristband),
    or why nobody, and how many still wait."""
    waiting = await QueueRepository(session).waiting_count(station.id)
    if entry is None:
        return CallResult(
            called=None,
            waiting=waiting,
            reason="Nobody waiting may be called now (busy elsewhere, about to be called by a"
            " free room of a longer exam, not yet due, or none)."
            if waiting
            else "Nobody is waiting.",
        )
    view = (await entry_views(session, [entry], catalogue))[0]
    facts = (await entry_facts(session, [entry], catalogue))[entry.id]
    return CallResult(
        called=CalledMother(entry=view, name=facts.name, mrn=facts.mrn), waiting=waiting
    )


HELD_BUSY = "at another exam now"
HELD_FOR_DRAW = "her timed draw is due first"
HELD_CLAIMED = "a free room of a longer exam calls her first"


@dataclass(frozen=True, slots=True)
class CallOrder:
    """A station's queue as a waiting room sees it, at one moment."""

    calling: list[QueueEntry]  # called, not yet come in
    busy: list[QueueEntry]  # called or in service, by room
    next: list[QueueEntry]  # in the order call-next takes them, one per mother
    held: list[QueueEntry]  # waiting now, passed over by call-next now, in call order
    held_because: dict[uuid.UUID, str]  # why each held one (by id) is passed over
    later: list[QueueEntry]  # not callable yet (a timed draw, a rejoin), one per mother
    waiting: int  # mothers waiting here
    claims: Claims  # held ones a free room of a longer exam calls first, and whom to watch


async def call_order(
    session: AsyncSession, station: Station, ctx: Ctx, *, as_if_free: uuid.UUID | None = None
) -> CallOrder:
    """Who call-next calls, in turn, if the rooms called now: ``callable_now``, the rule
    ``operations.call_next`` itself follows, over the same call order; a mother once only
    (called, she is busy: call-next passes over her other places). Then who waits now but is
    passed over now (busy elsewhere, kept for her timed draw), in call order; then who waits
    for a time still ahead, by that time. ``as_if_free``: that mother as if she were not busy
    elsewhere (her own page: her place here once she is back)."""
    repo = QueueRepository(session)
    queue = await waiting_in_call_order(session, station, ctx)
    waiting = queue.ordered
    busy_here = await repo.busy_entries(station.id)
    busy = await repo.busy_mothers([e.mother_id for e in waiting]) - {as_if_free}
    claimed = await claims(session, station, queue, busy, ctx)
    listed = {e.mother_id for e in busy_here}
    nxt = []
    for entry in callable_now(waiting, queue.timed, busy, ctx.now, claimed.by_entry):
        if entry.mother_id not in listed:
            listed.add(entry.mother_id)
            nxt.append(entry)
    held: list[QueueEntry] = []
    why: dict[uuid.UUID, str] = {}
    for entry in waiting:
        if entry.available_at <= ctx.now and entry.mother_id not in listed:
            listed.add(entry.mother_id)
            held.append(entry)
            why[entry.id] = (
                HELD_BUSY
                if entry.mother_id in busy
                else HELD_CLAIMED
                if entry.id in claimed.by_entry
                else HELD_FOR_DRAW
            )
    later = []
    ahead = sorted(
        (e for e in waiting if e.available_at > ctx.now),
        key=lambda e: (e.available_at, e.ticket_number),
    )
    for entry in ahead:
        if entry.mother_id not in listed:
            listed.add(entry.mother_id)
            later.append(entry)
    return CallOrder(
        calling=[e for e in busy_here if e.state == EntryState.CALLED],
        busy=busy_here,
        next=nxt,
        held=held,
        held_because=why,
        later=later,
        waiting=len({e.mother_id for e in waiting}),
        claims=claimed,
    )


async def board(
    session: AsyncSession, station: Station, ctx: Ctx, order: CallOrder | None = None
) -> StationBoard:
    """The waiting-room display: now calling (with each recall, so a TV chimes again), the
    next tickets in the true call order, and the draws not yet due with their time."""
    order = order or await call_order(session, station, ctx)
    shown = [*order.calling, *order.next[:BOARD_NEXT], *order.later[:BOARD_LATER]]
    names = await QueueRepository(session).names_of_entries([e.id for e in shown]) if shown else {}
    return StationBoard(
        station=station.code,
        name=station.name,
        name_zh=station.name_zh,
        place_kind=station.place_kind,
        now_calling=[
            BoardTicket(
                ticket=e.ticket,
                masked_name=mask_name(names[e.id]),
                room=e.room,
                called_at=e.called_at,
                recalls=e.recalls,
            )
            for e in order.calling
        ],
        next=[
            BoardTicket(ticket=e.ticket, masked_name=mask_name(names[e.id]), position=i)
            for i, e in enumerate(order.next[:BOARD_NEXT], start=1)
        ],
        later=[
            BoardTicket(
                ticket=e.ticket,
                masked_name=mask_name(names[e.id]),
                not_before=e.available_at,
                due_at=e.due_at,
            )
            for e in order.later[:BOARD_LATER]
        ],
        waiting=order.waiting,
        busy_elsewhere=sum(why in (HELD_BUSY, HELD_CLAIMED) for why in order.held_because.values()),
        held=sum(why == HELD_FOR_DRAW for why in order.held_because.values()),
        as_of=station.queue_changed_at,
    )


async def board_at(session: AsyncSession, code: str, ctx: Ctx, now: datetime) -> Built:
    """The board as of ``now``, for the long-poll (it changes by the clock too: a draw's
    window opens)."""
    station = await QueueRepository(session).station_by_code(code)
    if station is None:
        raise NotFound(f"No station {code!r}.")
    at = replace(ctx, now=now)
    order = await call_order(session, station, at)
    shown = await board(session, station, at, order)
    opens = [t.not_before for t in shown.later if t.not_before is not None]
    return Built(
        shown,
        frozenset({station.id, *_claiming(order)}),
        _first(*opens, *claims_end(order), await _turns_held_at(session, station, at)),
    )


async def station_queue_at(
    session: AsyncSession, station: Station, catalogue: Catalogue, ctx: Ctx, now: datetime
) -> tuple[Built, list[uuid.UUID]]:
    """The station's queue as of ``now``, for its long-poll (a timed draw falling due changes
    who may be called next, so the clock changes it too), with the mothers it shows."""
    at = replace(ctx, now=now)
    order = await call_order(session, station, at)
    queue, shown = await station_queue(session, station, catalogue, at, order)
    opens = [e.available_at for e in queue.scheduled]
    changes_at = _first(*opens, *claims_end(order), await _turns_held_at(session, station, at))
    return Built(queue, frozenset({station.id, *_claiming(order)}), changes_at), shown


def _first(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


async def _turns_held_at(session: AsyncSession, station: Station, ctx: Ctx) -> datetime | None:
    """When the clock alone next holds a callable mother back for her timed draw (this exam
    would keep her past it): her draw's due time less this exam's minutes, as
    ``callable_now`` reads it. A queue's move wakes the long-poll anyway; this does not."""
    queue = await waiting_in_call_order(session, station, ctx)
    turns = [
        queue.timed[e.mother_id] - timedelta(minutes=e.expected_minutes)
        for e in queue.ordered
        if e.due_at is None and e.mother_id in queue.timed
    ]
    ahead = [t for t in turns if t > ctx.now]
    return min(ahead) if ahead else None


def _claiming(order: CallOrder) -> frozenset[uuid.UUID]:
    """The stations whose rooms may call a mother of this queue first: their moves move it
    (a room frees there, and a claim begins; it calls her, and the claim ends)."""
    return order.claims.watched


def claims_end(order: CallOrder) -> list[datetime]:
    """When each claim ends by the clock alone (she is called here again then)."""
    return [c.until for c in order.claims.by_entry.values()]
