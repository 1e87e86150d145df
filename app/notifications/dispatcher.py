"""Delivering the outbox: at least once, with retries and backoff; exactly once in effect.

Each outbox row is one (event, recipient, channel). Its id is the delivery key: the SMS gateway
receives it as Idempotency-Key, so a dispatcher killed between sending and recording sends the
same key again and the gateway does not send the text twice. In-app channels (the butler's
assignments, the front desk's lists) are read by the apps; delivering there means marking the
row delivered. SMS texts never carry results or diagnoses.

A row is taken, decided and counted in one short transaction (due again only after
``CLAIM_LEASE``: a dispatcher that dies mid-call leaves it to the next, same key); the gateway
is called with no transaction open; the answer is recorded in another short one. A slow
gateway so holds up no other write (SQLite has one writer) and no staff text to her (her
counter's row on PostgreSQL).

The automatic "report ready" texts (written by the lab intake, one per report) are sent as
one per mother per ``sms_report_ready_window_minutes``: a 25-report bundle is one text, the
other rows end ``coalesced``. The one that is sent counts in her daily limit
(``sms_per_mother_per_day``, the same counter as the staff's texts) and may take it to one
below the limit only: the last text of her day is kept for the staff (a call-back). Past it,
the row ends ``suppressed`` with the reason, and a warning is logged: never lost silently.
The OGTT's preparation text (one per visit, the day before) counts in the same limit but is
never held back: fasting instructions that do not arrive cost her the test. Only the SMS to
her is held back: the butler's and the doctors' notices, critical-value pages among them,
are other rows and are never delayed by this.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.careplan.registry import load_guidelines
from app.careplan.service import sweep_late_pregnancies
from app.core import ratelimit
from app.core.idempotency import purge_expired
from app.core.logging import scrub
from app.core.settings import Environment, Settings, SmsProvider, get_settings
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


REPORT_READY_TOPIC = "sms.report_ready"
BUSY_RETRY = timedelta(seconds=2)  # another dispatcher is texting her right now
DAY = timedelta(days=1)
# The gateway is called with no transaction open. A row taken for sending is due again only
# after CLAIM_LEASE: a dispatcher that died inside the call leaves it to the next one, which
# sends it with the same Idempotency-Key. The whole call is cut off well inside the lease.
CLAIM_LEASE = timedelta(seconds=20)
SEND_DEADLINE = 15.0  # seconds; HttpSms's own timeout is 10 s per step


@dataclass(frozen=True, slots=True)
class MotherTexts:
    """How many texts she is sent: the report-ready window and her daily limit."""

    report_ready_window: timedelta
    per_day: int
    tz: tzinfo  # her day is the clinic's calendar day, as for the staff's texts

    @property
    def automatic_per_day(self) -> int:
        """The texts nobody typed may take her day's count this far: the last one is kept
        for the staff (a call-back after a result). With one a day, that one is the staff's:
        her butler has every report-ready notice in the app and calls her."""
        return max(self.per_day - 1, 0)

    @classmethod
    def from_settings(cls, settings: Settings) -> MotherTexts:
        return cls(
            report_ready_window=timedelta(minutes=settings.sms_report_ready_window_minutes),
            per_day=settings.sms_per_mother_per_day,
            tz=settings.tz,
        )


def is_automatic_report_ready(message: OutboxMessage) -> bool:
    """Written by the lab intake, not sent by a person (a person's text has ``sent_by`` and
    was counted when she asked for it)."""
    return (
        message.channel == "sms"
        and message.topic == REPORT_READY_TOPIC
        and message.mother_id is not None
        and "sent_by" not in message.payload
    )


def counted_here(message: OutboxMessage) -> bool:
    """A text to her that nobody typed (report-ready, the OGTT's preparation): the dispatcher
    counts it in her daily limit, once, when it first takes it; a person's text was counted
    by the request that asked for it."""
    return (
        message.channel == "sms"
        and message.mother_id is not None
        and ("sent_by" not in message.payload)
    )


def _her_bucket(mother_id: uuid.UUID) -> str:
    return f"sms:mother:{mother_id}"  # the staff's texts count here too (router.send_sms)


async def _hold_her_texts(session: AsyncSession, mother_id: uuid.UUID) -> bool:
    """One dispatcher at a time decides her report-ready texts, until its (short)
    transaction ends. PostgreSQL: a transaction advisory lock, tried, not waited for (a
    dispatcher never stalls: it comes back to her text in a moment). SQLite: the claim's
    UPDATE has taken the database's one write lock before anything was read, so the decision
    reads what the last writer committed."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b(b"sms.report_ready:" + mother_id.bytes, digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(key))))
    return True


async def _her_window_text(
    session: AsyncSession, message: OutboxMessage, *, since: datetime
) -> OutboxMessage | None:
    """The report-ready text she was sent, is being sent (decided: ``dispatched_at`` on a
    pending row), or that her limit held back, within the window."""
    result: OutboxMessage | None = await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.mother_id == message.mother_id,
            OutboxMessage.topic == REPORT_READY_TOPIC,
            OutboxMessage.channel == "sms",
            OutboxMessage.state.in_(
                [OutboxState.DELIVERED, OutboxState.SUPPRESSED, OutboxState.PENDING]
            ),
            OutboxMessage.dispatched_at > since,
            OutboxMessage.id != message.id,
        )
        .order_by(OutboxMessage.dispatched_at.desc())
        .limit(1)
    )
    return result


def _settle(message: OutboxMessage, state: OutboxState, note: str, now: datetime) -> None:
    """A row that ends without a text: when it was decided, and why (staff read it in
    GET /v1/notifications)."""
    message.state = state
    message.dispatched_at = now
    message.last_error = note[:500]


def _fail(message: OutboxMessage, exc: Exception, now: datetime, max_attempts: int) -> None:
    message.last_error = scrub(str(exc))[:500]
    if isinstance(exc, PermanentFailure) or message.attempts >= max_attempts:
        message.state = OutboxState.FAILED
        logger.error("notification failed", extra={"outbox_id": str(message.id)})
    else:
        message.next_attempt_at = now + backoff(message.attempts)


@dataclass(frozen=True, slots=True)
class _Send:
    """A text taken for sending, with all the gateway needs: nothing is read while it is
    in flight. ``attempts`` is the claim's token: the result is recorded only if the row is
    still this claim's (not taken again by another dispatcher after the lease)."""

    id: uuid.UUID
    attempts: int
    to: str
    text: str
    counted_at: datetime | None  # her day it was counted in, to take back if it never goes


async def _text_for(session: AsyncSession, message: OutboxMessage) -> tuple[str, str]:
    """Her number and the text, or PermanentFailure."""
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
    return mother.phone, text


async def _decide_report_ready(
    session: AsyncSession, message: OutboxMessage, now: datetime, texts: MotherTexts
) -> bool:
    """Coalesce or suppress her automatic report-ready text, or count it; True: send it."""
    assert message.mother_id is not None
    window = texts.report_ready_window
    earlier = await _her_window_text(session, message, since=now - window)
    if earlier is not None:
        minutes = int(window.total_seconds() // 60)
        _settle(
            message,
            OutboxState.COALESCED,
            f"sent as one with {earlier.id}: one report-ready text per {minutes} min",
            now,
        )
        return False
    counted = await session.begin_nested()
    limit = texts.automatic_per_day
    if await ratelimit.hit(session, _her_bucket(message.mother_id), DAY, now, texts.tz) > limit:
        await counted.rollback()  # not sent, not counted
        _settle(
            message,
            OutboxState.SUPPRESSED,
            f"not sent: she has had {limit} texts today and the last of her {texts.per_day} "
            "(sms_per_mother_per_day) is kept for the staff; her butler still has the "
            "report-ready notice",
            now,
        )
        logger.warning(
            "report-ready text suppressed: daily limit",
            extra={"outbox_id": str(message.id), "limit": texts.per_day},
        )
        return False
    await counted.commit()
    return True


async def _claim(
    session: AsyncSession, *, now: datetime, max_attempts: int, texts: MotherTexts
) -> _Send | bool | None:
    """The next due row, decided in this (short) transaction: None when none is due; True when
    it is settled here (in-app, coalesced, suppressed, failed, put back); a ``_Send`` when the
    gateway is to be called, after the caller commits."""
    message = await session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if message is None:
        return None
    # Taken: due again only after the lease. On SQLite (no row locks) the one whose UPDATE
    # still finds it due has it, and that UPDATE takes the write lock before any decision.
    taken = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message.id,
            OutboxMessage.state == OutboxState.PENDING,
            OutboxMessage.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + CLAIM_LEASE)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(taken, "rowcount", 0):
        return True  # another dispatcher took it between our read and our write
    if message.channel in IN_APP:  # read by the apps: delivered is a mark
        message.attempts += 1
        message.state = OutboxState.DELIVERED
        message.dispatched_at = now
        return True
    try:
        if message.channel != "sms":
            raise PermanentFailure(f"unknown channel {message.channel!r}")
        to, text = await _text_for(session, message)
    except PermanentFailure as exc:
        message.attempts += 1
        _fail(message, exc, now, max_attempts)
        return True
    counted = counted_here(message)
    if counted and message.dispatched_at is None:  # first taken: decided and counted once
        assert message.mother_id is not None
        if is_automatic_report_ready(message):
            if not await _hold_her_texts(session, message.mother_id):
                message.next_attempt_at = now + BUSY_RETRY  # not an attempt: nothing was tried
                return True
            if not await _decide_report_ready(session, message, now, texts):
                return True
        else:  # the OGTT's preparation: one per visit, counted, never held back
            await ratelimit.hit(session, _her_bucket(message.mother_id), DAY, now, texts.tz)
        message.dispatched_at = now  # on a pending row: decided, counted, being sent
    message.attempts += 1
    return _Send(
        id=message.id,
        attempts=message.attempts,
        to=to,
        text=text,
        counted_at=message.dispatched_at if counted else None,
    )


async def _uncount(
    session: AsyncSession, mother_id: uuid.UUID, at: datetime, texts: MotherTexts
) -> None:
    """Take back the count of a text that never went (failed for good)."""
    await session.execute(
        update(ratelimit.RateCounter)
        .where(
            ratelimit.RateCounter.bucket == _her_bucket(mother_id),
            ratelimit.RateCounter.window_start == ratelimit.window_of(at, DAY, texts.tz),
            ratelimit.RateCounter.hits > 0,
        )
        .values(hits=ratelimit.RateCounter.hits - 1)
    )


async def _record(
    session: AsyncSession,
    send: _Send,
    error: Exception | None,
    *,
    now: datetime,
    max_attempts: int,
    texts: MotherTexts,
) -> None:
    """The gateway's answer, on the row, if it is still this claim's."""
    message = await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.id == send.id,
            OutboxMessage.state == OutboxState.PENDING,
            OutboxMessage.attempts == send.attempts,
        )
        .with_for_update()
    )
    if message is None:  # taken again after the lease (same key: the gateway sends once)
        logger.warning(
            "outbox row taken again before its result", extra={"outbox_id": str(send.id)}
        )
        return
    if error is None:
        message.state = OutboxState.DELIVERED
        message.dispatched_at = now
        return
    _fail(message, error, now, max_attempts)
    if message.state == OutboxState.FAILED and send.counted_at is not None:
        assert message.mother_id is not None
        await _uncount(session, message.mother_id, send.counted_at, texts)  # never went


async def dispatch_one(
    factory: async_sessionmaker[AsyncSession],
    *,
    sms: Sms,
    now: datetime,
    max_attempts: int,
    texts: MotherTexts | None = None,
    write_lock: asyncio.Lock | None = None,
) -> bool:
    """Deliver the next due message; False when none is due.

    Three steps, the gateway call between two short transactions and inside none: a slow
    gateway holds neither SQLite's one write lock nor, on PostgreSQL, her counter's row (a
    staff text to her would wait). ``write_lock``: the web process's (SQLite), taken for each
    transaction as a request takes it; the CLI worker has none (busy_timeout then applies)."""
    texts = texts or MotherTexts.from_settings(get_settings())
    lock: contextlib.AbstractAsyncContextManager[Any] = (
        write_lock if write_lock is not None else contextlib.nullcontext()
    )
    async with lock, factory() as session:
        send = await _claim(session, now=now, max_attempts=max_attempts, texts=texts)
        await session.commit()
    if not isinstance(send, _Send):
        return send is not None
    error: Exception | None = None
    try:
        async with asyncio.timeout(SEND_DEADLINE):
            await sms.send(to=send.to, text=send.text, key=str(send.id))
    except TimeoutError:
        error = RuntimeError(f"the SMS gateway did not answer within {SEND_DEADLINE:g} s")
    except Exception as exc:  # a failed delivery is recorded and retried, never raised
        error = exc
    async with lock, factory() as session:
        await _record(session, send, error, now=now, max_attempts=max_attempts, texts=texts)
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


async def purge_idempotency_copies(factory: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Delete the stored answers of Idempotency-Keys past their keep time: they are copies of
    answers about her, kept only as long as a retry may come (idempotency_ttl_hours)."""
    async with factory() as session:
        purged = await purge_expired(session, now)
        await session.commit()
    if purged:
        logger.info("idempotency copies purged", extra={"purged": purged})
    return purged


async def run(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: Callable[[], datetime],
    sms: Sms | None = None,
    stop: asyncio.Event | None = None,
    heartbeat: Path | None = None,
    write_lock: asyncio.Lock | None = None,
) -> None:
    """The dispatcher loop: drain what is due, run the time rules, sleep, repeat. With
    ``heartbeat``, the file's time is set after every tick that went through: the worker's
    health check (``python -m app.cli dispatch-health``) reads it. ``write_lock``: in the web
    process on SQLite, the app's (``app.state.write_lock``): every transaction here takes it
    as a writing request does, and none is open across a gateway call."""
    sms = sms or sms_from(settings)
    lock: contextlib.AbstractAsyncContextManager[Any] = (
        write_lock if write_lock is not None else contextlib.nullcontext()
    )
    stop = stop or asyncio.Event()
    texts = MotherTexts.from_settings(settings)
    prepare_at: datetime | None = None  # the day-before texts are looked for every few minutes
    purge_at: datetime | None = None  # Idempotency-Key copies, every idempotency_purge_minutes
    while not stop.is_set():
        try:
            while await dispatch_one(
                factory,
                sms=sms,
                now=now(),
                max_attempts=settings.outbox_max_attempts,
                texts=texts,
                write_lock=write_lock,
            ):
                if stop.is_set():
                    return
            async with lock:
                await maintenance(factory, settings, now())
            if prepare_at is None or now() >= prepare_at:
                async with lock:
                    await preparation.send_due(factory, settings, now())
                prepare_at = now() + preparation.EVERY
            if purge_at is None or now() >= purge_at:
                async with lock:
                    await purge_idempotency_copies(factory, now())
                purge_at = now() + timedelta(minutes=settings.idempotency_purge_minutes)
            if heartbeat is not None:
                await asyncio.to_thread(heartbeat.touch)
        except Exception:  # the loop outlives a bad tick (database restart, etc.)
            logger.exception("dispatcher tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.dispatch_interval_seconds)
