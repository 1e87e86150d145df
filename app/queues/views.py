"""How a queue entry and a station are shown: her (masked) name, flags and exams beside the
entry, and each station's live counts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.mothers.domain import mask_name
from app.queues.domain import Catalogue, Estimate
from app.queues.models import EntryState, QueueEntry, Station
from app.queues.repository import QueueRepository
from app.queues.schemas import QueueEntryPublic, StationPublic


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What a view of an entry shows besides the entry: her (masked) name and flags."""

    name: str
    mrn: str
    urgent: bool
    infection_control: bool
    exams: list[str]
    exams_zh: list[str]


async def entry_facts(
    session: AsyncSession, entries: Sequence[QueueEntry], catalogue: Catalogue
) -> dict[uuid.UUID, EntryFacts]:
    if not entries:
        return {}
    repo = QueueRepository(session)
    by_visit = await repo.visit_facts({e.visit_id for e in entries})
    steps = await repo.steps_of_entries([e.id for e in entries])
    exams: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)
    for step in steps:
        assert step.entry_id is not None
        rule = catalogue.rule(step.exam_code)
        en = rule.name if rule else step.exam_code
        zh = rule.zh if rule else step.exam_code
        if step.offset_minutes:
            en, zh = f"{en} ({step.label})", f"{zh}（{step.label}）"
        exams[step.entry_id].append((en, zh))
    out = {}
    for e in entries:
        _vid, urgent, name, mrn, purple = by_visit[e.visit_id]
        out[e.id] = EntryFacts(
            name=name,
            mrn=mrn,
            urgent=bool(urgent),
            infection_control=bool(purple),  # purple stands beside her colour (NHFPC 2017)
            exams=[en for en, _ in sorted(exams[e.id])],
            exams_zh=[zh for _, zh in sorted(exams[e.id])],
        )
    return out


async def entry_views(
    session: AsyncSession,
    entries: list[QueueEntry],
    catalogue: Catalogue,
    *,
    estimates: dict[uuid.UUID, Estimate] | None = None,
) -> list[QueueEntryPublic]:
    facts = await entry_facts(session, entries, catalogue)
    codes = (
        await QueueRepository(session).station_codes({e.station_id for e in entries})
        if entries
        else {}
    )
    out = []
    for e in entries:
        f = facts[e.id]
        est = (estimates or {}).get(e.id)
        out.append(
            QueueEntryPublic(
                id=e.id,
                ticket=e.ticket,
                station=codes[e.station_id],
                station_type=e.station_type,
                room=e.room,
                state=e.state,
                visit_id=e.visit_id,
                mother_id=e.mother_id,
                masked_name=mask_name(f.name),
                exams=f.exams,
                exams_zh=f.exams_zh,
                step_offset=e.step_offset,
                fasting=e.fasting,
                urgent=f.urgent,
                infection_control=f.infection_control,
                position=est.position if est else None,
                estimated_wait_minutes=est.wait_minutes if est else None,
                expected_minutes=round(e.expected_minutes, 1),
                entered_at=e.entered_at,
                available_at=e.available_at,
                due_at=e.due_at,
                called_at=e.called_at,
                started_at=e.started_at,
                finished_at=e.finished_at,
                closed_at=e.closed_at,
                close_reason=e.close_reason,
                recalls=e.recalls,
                no_shows=e.no_shows,
                previous_id=e.previous_id,
            )
        )
    return out


async def station_views(session: AsyncSession, stations: list[Station]) -> list[StationPublic]:
    counts = await QueueRepository(session).live_counts()
    waiting: dict[uuid.UUID, int] = {}
    busy: dict[uuid.UUID, int] = {}
    for sid, state, n in counts:
        target = waiting if state == EntryState.WAITING else busy
        target[sid] = target.get(sid, 0) + n
    return [
        StationPublic.model_validate(s).model_copy(
            update={"waiting": waiting.get(s.id, 0), "busy_rooms": busy.get(s.id, 0)}
        )
        for s in stations
    ]
