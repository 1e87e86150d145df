"""Positions: a station's waiting mothers in call order, and their estimated waits as of the
queue's last change (so that they move only with it)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Routing
from app.queues.domain import Busy, Candidate, Estimate, estimate_waits, sort_key
from app.queues.models import QueueEntry, Station
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository
from app.queues.routing import station_open

PLAIN_TIERS = (2, 3)  # domain.sort_key: called in her plain turn (not urgent, due, fasting, aged)
# How long a free room of a longer exam has first claim on a mother who may go there now
# (see ``claims``): a room that has not called her by then is not calling.
CLAIM = timedelta(minutes=2)
# … and only when its service takes at least this many times as long as hers here: a scan
# (12-30 min) or an NST (20) before a blood draw (4-5), urine or vitals (3); not a 4-minute
# draw before a 3-minute blood pressure, whose order matters to nobody.
CLAIM_RATIO = 2.0


async def ordered_waiting(session: AsyncSession, station: Station, ctx: Ctx) -> list[QueueEntry]:
    """The station's waiting entries in call order (the documented sort key)."""
    return (await waiting_in_call_order(session, station, ctx)).ordered


@dataclass(frozen=True, slots=True)
class Waiting:
    """A station's waiting entries in call order, each mother's next timed draw, and which
    entries are called in their plain turn (the sort key's tiers 2 and 3: not urgent, not a
    due draw, not fasting at the blood draw, not aged), the ones a longer exam may go before."""

    ordered: list[QueueEntry]
    timed: dict[uuid.UUID, datetime]
    plain: frozenset[uuid.UUID]


async def waiting_in_call_order(session: AsyncSession, station: Station, ctx: Ctx) -> Waiting:
    """The waiting entries in call order, and each mother's next timed draw."""
    repo = QueueRepository(session)
    rows = await repo.waiting_today(station.id, ctx.today)
    urgent = {e.id for e, flag in rows if flag}
    # Her earliest pending timed draw (nothing else may keep her past it) and her latest
    # (until then she must stay anyway).
    dues = await repo.timed_dues([e.mother_id for e, _flag in rows])

    def key(e: QueueEntry) -> tuple[object, ...]:
        gap = dues.get(e.mother_id)
        return sort_key(
            _candidate(e, urgent=e.id in urgent, gap_until=gap[1] if gap else None),
            now=ctx.now,
            routing=ctx.policy.routing,
            ageing=ctx.policy.ageing,
        )

    keys = {e.id: key(e) for e, _flag in rows}
    ordered = sorted((e for e, _flag in rows), key=lambda e: keys[e.id])
    plain = frozenset(i for i, k in keys.items() if k[0] in PLAIN_TIERS)
    return Waiting(ordered, {m: d[0] for m, d in dues.items()}, plain)


def callable_now(
    ordered: list[QueueEntry],
    timed: dict[uuid.UUID, datetime],
    busy: set[uuid.UUID],
    now: datetime,
    claimed: Collection[uuid.UUID] = (),
) -> list[QueueEntry]:
    """The waiting entries call-next may call now, in the order it tries them: in call order,
    free now (not a timed draw or a rejoin still ahead), she is not called or served elsewhere,
    it would not keep her past her next timed draw, and no free room of a longer exam calls
    her first (``claimed``: those entries, ``claims``). ``call_next`` and the waiting-room
    board both read this: the board's next ticket is the one call-next calls."""
    out = []
    for entry in ordered:
        if entry.available_at > now or entry.mother_id in busy or entry.id in claimed:
            continue
        due = timed.get(entry.mother_id)
        if (
            entry.due_at is None
            and due is not None
            and now + timedelta(minutes=entry.expected_minutes) > due
        ):
            continue  # her timed draw comes first; this would keep her past it
        out.append(entry)
    return out


def _candidate(e: QueueEntry, *, urgent: bool, gap_until: datetime | None = None) -> Candidate:
    return Candidate(
        id=e.id,
        ticket_number=e.ticket_number,
        ref_time=e.ref_time,
        entered_at=e.entered_at,
        available_at=e.available_at,
        due_at=e.due_at,
        urgent=urgent,
        fasting=e.fasting,
        station_type=e.station_type,
        gap_until=gap_until if e.due_at is None else None,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    station: Station
    ordered: list[QueueEntry]
    busy: list[QueueEntry]
    estimates: dict[uuid.UUID, Estimate]


async def snapshot(session: AsyncSession, station: Station, ctx: Ctx) -> Snapshot:
    """Positions and waits as of the queue's last change (so that they move only with it)."""
    at = station.queue_changed_at or ctx.now
    as_of = replace(ctx, now=at)
    ordered = await ordered_waiting(session, station, as_of)
    busy = await QueueRepository(session).busy_entries(station.id)
    return Snapshot(station, ordered, list(busy), estimates_in_order(station, busy, ordered, at))


def estimates_in_order(
    station: Station, busy: Sequence[QueueEntry], ordered: Sequence[QueueEntry], at: datetime
) -> dict[uuid.UUID, Estimate]:
    """Each entry's position and estimated wait, ``ordered`` taken in that order, as of
    ``at`` (the rooms in service count their expected remaining minutes)."""
    busy_minutes = [
        Busy(
            max(
                0.0,
                e.expected_minutes
                - ((at - e.started_at).total_seconds() / 60 if e.started_at else 0),
            )
        )
        for e in busy
    ]
    return estimate_waits(
        station.servers,
        busy_minutes,
        [
            (e.id, max(0.0, (e.available_at - at).total_seconds() / 60), e.expected_minutes)
            for e in ordered
        ],
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A free room of a longer exam calls her first: that station, and until when."""

    station: Station
    until: datetime


@dataclass(frozen=True, slots=True)
class Claims:
    """The claims on a station's queue now, by its entry, and the stations whose moves can
    start or end one (a room there frees, its queue moves): a queue's long-poll listens to
    them."""

    by_entry: dict[uuid.UUID, Claim] = field(default_factory=dict)
    watched: frozenset[uuid.UUID] = frozenset()


async def claims(
    session: AsyncSession,
    station: Station,
    waiting: Waiting,
    busy: set[uuid.UUID],
    ctx: Ctx,
) -> Claims:
    """The entries here that call-next passes over now because a free room of a longer exam
    calls the same mother first (keyed by the entry here).

    The bottleneck first: a scan room that stands empty while she has her 3-minute urine
    sample taken is a scan nobody has later, and every mother after her waits for it (the
    clairvoyant day of ``make simulate`` sends her to the free scan room first; issue 19). So
    when she may go now both here and to a station whose service for her is longer, that
    station is open, has a room free, and she is the next it would call there, it calls her
    first. Only in her plain turn here: an urgent mother, a due timed draw, a fasting mother at
    the blood draw and one waiting past the ageing limit are never passed over for it. The
    claim lasts ``CLAIM`` from when she could first go there (her place there opened, or her
    last exam ended): a room that has not called her by then is not calling, and she is
    called here again. Not under ``fixed`` routing (one queue at a time)."""
    if ctx.policy.routing is Routing.FIXED:
        return Claims()
    mine = {
        e.mother_id: e
        for e in reversed(callable_now(waiting.ordered, waiting.timed, busy, ctx.now))
        if e.id in waiting.plain
    }
    if not mine:
        return Claims()
    repo = QueueRepository(session)
    elsewhere = await repo.waiting_elsewhere(mine, station.id, ctx.today, ctx.now)
    longer = [o for o in elsewhere if _longer(o, mine[o.mother_id])]
    if not longer:
        return Claims()
    watched = frozenset(o.station_id for o in longer)
    fasting = await repo.fasting_mothers({o.mother_id for o in longer}, ctx.today)
    longer = [o for o in longer if o.mother_id not in fasting]
    if not longer:
        return Claims(watched=watched)
    since = await repo.last_finished({o.mother_id for o in longer}, ctx.today)
    out: dict[uuid.UUID, Claim] = {}
    for other in await repo.stations({o.station_id for o in longer}):
        if not station_open(other, ctx.local_time):
            continue
        free_rooms = other.servers - len(await repo.busy_entries(other.id))
        if free_rooms <= 0:
            continue
        there = await waiting_in_call_order(session, other, ctx)
        there_busy = await repo.busy_mothers([e.mother_id for e in there.ordered])
        first: list[QueueEntry] = []
        for e in callable_now(there.ordered, there.timed, there_busy, ctx.now):
            if e.mother_id not in {f.mother_id for f in first}:
                first.append(e)
            if len(first) == free_rooms:
                break
        for e in first:
            here = mine.get(e.mother_id)
            if here is None or not _longer(e, here):
                continue
            opened = max(e.entered_at, e.available_at, since.get(e.mother_id, e.entered_at))
            until = opened + CLAIM
            if until > ctx.now:
                out[here.id] = Claim(other, until)
    return Claims(out, watched)


def _longer(there: QueueEntry, here: QueueEntry) -> bool:
    return there.expected_minutes >= CLAIM_RATIO * here.expected_minutes
