"""Her own page: her tickets, where she is called, her place in each queue and what comes
next, with no name, MRN or id of hers. Positions are read through ``boards.call_order``, the
order call-next takes, so her page and the waiting-room board never disagree."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.queues.boards import call_order, claims_end
from app.queues.domain import Catalogue
from app.queues.longpoll import Built
from app.queues.models import EntryState, QueueEntry, Station
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository
from app.queues.schemas import HerCall, HerNext, HerTicket, HerVisit
from app.queues.views import EntryFacts, entry_facts
from app.queues.visit_queue import visit_queue
from app.visits.models import Visit


async def her_visit(
    session: AsyncSession,
    visit: Visit,
    catalogue: Catalogue,
    ctx: Ctx,
    *,
    now: datetime,
    expires_at: datetime,
) -> Built:
    at = replace(ctx, now=now)
    repo = QueueRepository(session)
    q = await visit_queue(session, visit, catalogue, at)
    done = [e for e in await repo.closed_entries(visit.id) if e.state == EntryState.DONE]
    stations: dict[uuid.UUID, Station] = {p.station.id: p.station for p in q.places}
    for station in await repo.stations({e.station_id for e in done} - set(stations)):
        stations[station.id] = station
    facts = await entry_facts(session, [*[p.entry for p in q.places], *done], catalogue)
    tickets: list[HerTicket] = []
    called = None
    claim_ends: list[datetime] = []
    for place in q.places:
        e, station = place.entry, place.station
        position = not_before = None
        if e.state == EntryState.WAITING:
            order = await call_order(session, station, at, as_if_free=e.mother_id)
            claim_ends.extend(claims_end(order))  # she is called here again then
            position = next(
                (i for i, n in enumerate(order.next, start=1) if n.mother_id == e.mother_id), None
            )
            if e.available_at > now:
                not_before = e.available_at
        tickets.append(_ticket(e, station, facts[e.id], position, not_before, place))
        if e.state == EntryState.CALLED:
            called = HerCall(
                ticket=e.ticket,
                station=station.code,
                station_name=station.name,
                station_name_zh=station.name_zh,
                place_kind=station.place_kind,
                room=e.room,
                called_at=e.called_at,
                recalls=e.recalls,
            )
    for e in done:
        tickets.append(_ticket(e, stations[e.station_id], facts[e.id], None, None, None))
    nxt = None
    if q.suggested is not None:
        s = q.suggested.entry
        nxt = HerNext(
            exams=facts[s.id].exams,
            exams_zh=facts[s.id].exams_zh,
            station=q.suggested.station.code,
            station_name=q.suggested.station.name,
            station_name_zh=q.suggested.station.name_zh,
            ticket=s.ticket,
            not_before=s.available_at if s.available_at > now else None,
            due_at=s.due_at,
        )
    elif not q.places and q.pending:
        step, why = q.pending[0]
        rule = catalogue.rule(step.exam_code)
        name = rule.name if rule else step.exam_code
        zh = rule.zh if rule else step.exam_code
        nxt = HerNext(
            exams=[f"{name} ({step.label})" if step.label else name],
            exams_zh=[f"{zh}（{step.label}）" if step.label else zh],
            station=None,
            station_name=None,
            ticket=None,
            not_before=None,
            due_at=None,
            waiting_for=why,
        )
    as_of = max((s.queue_changed_at for s in stations.values() if s.queue_changed_at), default=None)
    body = HerVisit(
        date=visit.visit_date.isoformat(),
        visit_status=visit.status.value,
        tickets=tickets,
        called=called,
        next=nxt,
        steps_done=q.done_steps,
        steps_total=q.total_steps,
        expected_finish=q.expected_finish,
        expires_at=expires_at,
        as_of=as_of,
    )
    opens = [t.not_before for t in tickets if t.not_before is not None] + claim_ends
    # Her stations' moves change her page (a new place comes with a move of the one she left).
    watched = frozenset(s.id for s in stations.values())
    return Built(body, watched, min(opens) if opens else None)


def _ticket(
    e: QueueEntry,
    station: Station,
    facts: EntryFacts,
    position: int | None,
    not_before: datetime | None,
    place: object | None,
) -> HerTicket:
    wait = getattr(place, "wait_minutes", None) if e.state == EntryState.WAITING else None
    return HerTicket(
        ticket=e.ticket,
        station=station.code,
        station_name=station.name,
        station_name_zh=station.name_zh,
        place_kind=station.place_kind,
        room=e.room if e.state != EntryState.DONE else None,
        status=e.state,
        exams=facts.exams,
        exams_zh=facts.exams_zh,
        position=position,
        estimated_wait_minutes=wait,
        called_at=e.called_at,
        recalls=e.recalls,
        not_before=not_before,
        due_at=e.due_at,
    )
