"""Preparation texts the day before a visit: the OGTT's (fast overnight, eat normally before).

A worker job (the dispatcher runs it every few minutes): from OGTT_PREPARATION_SMS_AT, clinic
time, every visit booked for tomorrow whose expected exams include the OGTT gets one SMS. One
per visit and day (``preparation_notices``, unique in the database): a rerun, or a second
worker, sends nothing new; a visit moved to another day is told again for its new day.
The text is data (``ogtt_preparation.json``, with its source); it carries no result,
diagnosis or date.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.careplan.domain import Guideline
from app.careplan.registry import load_guidelines
from app.careplan.service import exams_expected
from app.core.ids import uuid7
from app.core.settings import Settings
from app.mothers.models import Pregnancy
from app.notifications.models import OutboxMessage
from app.notifications.outbox import enqueue
from app.queues.models import PreparationNotice
from app.visits.domain import VisitStatus
from app.visits.models import Visit

logger = logging.getLogger("app.preparation")

OGTT_FILE = Path(__file__).with_name("ogtt_preparation.json")
# How often the worker looks for visits to prepare (a visit booked for tomorrow after the send
# time is told within this long).
EVERY = timedelta(minutes=5)
CHINESE = ("zh", "yue", "cmn", "wuu", "nan", "hak")


@dataclass(frozen=True, slots=True)
class PreparationText:
    """A fixed text for the day before, for visits expecting one of ``exam_codes``."""

    template: str
    topic: str
    exam_codes: frozenset[str]
    text_zh: str
    text_en: str
    source: str

    def text_for(self, language: str | None) -> str:
        """Chinese first; the English after it when her language is not a Chinese one."""
        tag = (language or "zh").lower()
        if tag.split("-")[0] in CHINESE:
            return self.text_zh
        return f"{self.text_zh}\n{self.text_en}"


@lru_cache(maxsize=4)
def load_text(path: Path = OGTT_FILE) -> PreparationText:
    """The text file; refused when a field is missing or a source is not named."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    try:
        source = raw["source"]
        text = PreparationText(
            template=str(raw["template"]),
            topic=str(raw["topic"]),
            exam_codes=frozenset(str(c) for c in raw["exam_codes"]),
            text_zh=str(raw["text_zh"]).strip(),
            text_en=str(raw["text_en"]).strip(),
            source=f"{source['guideline']} ({source['year']}), {source['section']}",
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path.name}: {exc!r} is missing") from exc
    if not (text.exam_codes and text.text_zh and text.text_en):
        raise ValueError(f"{path.name}: exam codes and both texts are required")
    return text


async def _claim(session: AsyncSession, visit: Visit, kind: str, now: datetime) -> uuid.UUID | None:
    """This visit's notice for its day, unless one exists (another run got there first)."""
    maker = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    claimed = await session.execute(
        maker(PreparationNotice)
        .values(
            id=uuid7(), visit_id=visit.id, visit_date=visit.visit_date, kind=kind, created_at=now
        )
        .on_conflict_do_nothing(index_elements=["visit_id", "visit_date", "kind"])
        .returning(PreparationNotice.id)
    )
    return claimed.scalar_one_or_none()


async def queue_ogtt_preparation(
    session: AsyncSession,
    *,
    now: datetime,
    tz: ZoneInfo,
    guidelines: dict[str, Guideline],
    send_from: time,
    region_flags: frozenset[str] = frozenset(),
    text: PreparationText | None = None,
) -> list[OutboxMessage]:
    """Enqueue the OGTT preparation SMS for tomorrow's visits that expect the OGTT (flushes)."""
    text = text or load_text()
    local = now.astimezone(tz)
    if local.time() < send_from:
        return []
    tomorrow = local.date() + timedelta(days=1)
    told = select(PreparationNotice.visit_id).where(
        PreparationNotice.visit_date == tomorrow, PreparationNotice.kind == text.template
    )
    visits = (
        await session.scalars(
            select(Visit)
            .where(
                Visit.visit_date == tomorrow,
                Visit.status == VisitStatus.BOOKED,
                Visit.id.not_in(told),
            )
            .order_by(Visit.scheduled_at, Visit.id)
        )
    ).all()
    sent = []
    for visit in visits:
        code = await session.scalar(
            select(Pregnancy.care_plan_code).where(Pregnancy.id == visit.pregnancy_id)
        )
        guideline = guidelines.get(str(code))
        if guideline is None:
            logger.warning("no care-plan table %r: no preparation text", code)
            continue
        expected = await exams_expected(
            session,
            visit=visit,
            guideline=guideline,
            on=visit.visit_date,
            region_flags=region_flags,
        )
        if not text.exam_codes & set(expected):
            continue
        notice_id = await _claim(session, visit, text.template, now)
        if notice_id is None:
            continue
        message = await enqueue(
            session,
            topic=text.topic,
            now=now,
            mother_id=visit.mother_id,
            payload={"channel": "sms", "template": text.template, "visit_id": visit.id},
        )
        await session.flush()
        notice = await session.get(PreparationNotice, notice_id)
        assert notice is not None
        notice.outbox_id = message.id
        sent.append(message)
    await session.flush()
    return sent


async def send_due(
    factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> int:
    """The worker's run: one transaction, committed."""
    async with factory() as session:
        sent = await queue_ogtt_preparation(
            session,
            now=now,
            tz=settings.tz,
            guidelines=load_guidelines(settings.care_plan_dir),
            send_from=settings.ogtt_preparation_sms_at,
            region_flags=settings.care_plan_region_flags,
        )
        await session.commit()
    return len(sent)
