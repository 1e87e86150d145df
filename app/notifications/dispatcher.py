"""Delivering the outbox: at least once, with retries and backoff; exactly once in effect.

Each outbox row is one (event, recipient, channel). Its id is the delivery key: the SMS gateway
receives it as Idempotency-Key, so a dispatcher killed between sending and recording sends the
same key again and the gateway does not send the text twice. In-app channels (the butler's
assignments, the front desk's lists) are read by the apps; delivering there means marking the
row delivered. SMS texts never carry results or diagnoses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.careplan.registry import load_guidelines
from app.careplan.service import sweep_late_pregnancies
from app.core.logging import scrub
from app.core.settings import Environment, Settings, SmsProvider
from app.feed.changes import purge_feed
from app.mothers.domain import mask_phone
from app.mothers.models import Mother
from app.notifications import preparation
from app.notifications.models import OutboxMessage, OutboxState
from app.notifications.reminders import remind_overdue_tasks
from app.reports.repository import ReportRepository
from app.reports.service import escalate_overdue, escalation_plan, remind_overdue_pickups

logger = logging.getLogger("app.dispatcher")

IN_APP = frozenset({"butler_app", "front_desk", "front_desk_lead", "doctor"})
SMS_TEXTS = {
    # No clinical content, ever: the butler brings the results.
    "report_ready": "【孕期管家】您好，您的检查报告已出，您的专属管家会尽快与您联系。",
    "visit_reminder": "【孕期管家】您好，提醒您按预约时间来院产检。如需改约，请联系您的专属管家。",
    "call_back": "【孕期管家】您好，您的专属管家正在联系您，请留意来电。",
}
# Texts kept as data with their source: the OGTT's preparation the day before.
PREPARATION_TEXTS = {t.template: t for t in [preparation.load_text()]}


class Sms(Protocol):
    async def send(self, *, to: str, text: str, key: str) -> None: ...


class ConsoleSms:
    async def send(self, *, to: str, text: str, key: str) -> None:
        masked = mask_phone(to)  # never the full number in a log
        logger.info("sms (console)", extra={"to": masked, "key": key, "chars": len(text)})


class HttpSms:
    """POSTs {"to", "text"} with Idempotency-Key; any non-2xx answer is a failure to retry."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 10.0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout

    async def send(self, *, to: str, text: str, key: str) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(
                self.url,
                json={"to": to, "text": text},
                headers={**self.headers, "Idempotency-Key": key},
            )
        if response.status_code >= 300:
            raise RuntimeError(f"SMS gateway answered {response.status_code}")


def sms_from(settings: Settings) -> Sms:
    production = settings.environment is Environment.PRODUCTION
    if settings.sms_provider is SmsProvider.CONSOLE and production:
        # The console provider only logs: in production it would mark unsent texts as sent.
        raise ValueError("SMS_PROVIDER=console is refused in production; configure the gateway")
    if settings.sms_provider is SmsProvider.HTTP:
        if not settings.sms_http_url:
            raise ValueError("SMS_PROVIDER=http needs SMS_HTTP_URL")
        return HttpSms(settings.sms_http_url, settings.sms_http_token)
    return ConsoleSms()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 600))


class PermanentFailure(Exception):
    pass


async def _deliver(session: AsyncSession, message: OutboxMessage, sms: Sms) -> None:
    if message.channel in IN_APP:
        return
    if message.channel == "sms":
        template = str(message.payload.get("template"))
        prepared = PREPARATION_TEXTS.get(template)  # data, in her language after the Chinese
        text = SMS_TEXTS.get(template)
        if text is None and prepared is None:
            raise PermanentFailure(f"no SMS text for template {message.payload.get('template')!r}")
        mother = await session.get(Mother, message.mother_id) if message.mother_id else None
        if mother is None:
            raise PermanentFailure("no mother to text")
        if prepared is not None:
            text = prepared.text_for(mother.language)
        assert text is not None
        await sms.send(to=mother.phone, text=text, key=str(message.id))
        return
    raise PermanentFailure(f"unknown channel {message.channel!r}")


async def dispatch_one(
    factory: async_sessionmaker[AsyncSession],
    *,
    sms: Sms,
    now: datetime,
    max_attempts: int,
) -> bool:
    """Deliver the next due message; False when none is due. One message, one transaction."""
    async with factory() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if message is None:
            return False
        try:
            await _deliver(session, message, sms)
        except Exception as exc:  # a failed delivery is recorded and retried, never raised
            message.attempts += 1
            message.last_error = scrub(str(exc))[:500]
            if isinstance(exc, PermanentFailure) or message.attempts >= max_attempts:
                message.state = OutboxState.FAILED
                logger.error("notification failed", extra={"outbox_id": str(message.id)})
            else:
                message.next_attempt_at = now + backoff(message.attempts)
        else:
            message.attempts += 1
            message.state = OutboxState.DELIVERED
            message.dispatched_at = now
        await session.commit()
        return True


async def maintenance(
    factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> None:
    """Time-driven rules: escalate unanswered critical values, remind overdue pickups."""
    async with factory() as session:
        repo = ReportRepository(session)
        await escalate_overdue(repo, now=now, plan=escalation_plan(settings))
        await remind_overdue_pickups(
            repo,
            now=now,
            today=now.astimezone(settings.tz).date(),
            after=timedelta(minutes=settings.pickup_reminder_minutes),
        )
        await remind_overdue_tasks(
            session, now=now, escalate_after=timedelta(minutes=settings.pickup_reminder_minutes)
        )
        await purge_feed(session, before=now - timedelta(hours=settings.feed_retention_hours))
        await sweep_late_pregnancies(  # 41+0: the doctor decides induction; 42+0 alerts
            session,
            guidelines=load_guidelines(settings.care_plan_dir),
            today=now.astimezone(settings.tz).date(),
            now=now,
        )
        await session.commit()


async def run(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: Callable[[], datetime],
    sms: Sms | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """The dispatcher loop: drain what is due, run the time rules, sleep, repeat."""
    sms = sms or sms_from(settings)
    stop = stop or asyncio.Event()
    prepare_at: datetime | None = None  # the day-before texts are looked for every few minutes
    while not stop.is_set():
        try:
            while await dispatch_one(
                factory, sms=sms, now=now(), max_attempts=settings.outbox_max_attempts
            ):
                if stop.is_set():
                    return
            await maintenance(factory, settings, now())
            if prepare_at is None or now() >= prepare_at:
                await preparation.send_due(factory, settings, now())
                prepare_at = now() + preparation.EVERY
        except Exception:  # the loop outlives a bad tick (database restart, etc.)
            logger.exception("dispatcher tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.dispatch_interval_seconds)
