"""One path for every inbound lab message: store it verbatim, then process it, then record
the outcome. HTTP routes, the MLLP listener and admin replays all come through here."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.settings import Settings
from app.reports import domain, fhir, hl7v2
from app.reports.domain import ParsedReport
from app.reports.models import InboundMessage
from app.reports.repository import ReportRepository
from app.reports.service import ingest
from app.worklist import service as worklist

logger = logging.getLogger("app.reports.intake")

# Request headers worth keeping with the message (never the API key).
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "x-request-id")


@dataclass(frozen=True, slots=True)
class Answer:
    """What goes back to the sender, and what is recorded about the message."""

    status: int
    body: str
    media_type: str
    state: str  # processed | rejected | failed
    code: str  # AA | AE | AR (HL7) or information | error (FHIR)
    outcome: str


@dataclass(frozen=True, slots=True)
class IntakeContext:
    tz: ZoneInfo
    thresholds: list[domain.Threshold]
    ack_within: timedelta
    # One message's size in reports and observations (lab_max_reports_per_message,
    # lab_max_observations_per_message): past them it is refused, after it is stored.
    max_reports: int = 50
    max_observations: int = 2_000

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeContext:
        return cls(
            tz=settings.tz,
            thresholds=thresholds_from(settings.critical_values_file),
            ack_within=timedelta(minutes=settings.critical_ack_minutes),
            max_reports=settings.lab_max_reports_per_message,
            max_observations=settings.lab_max_observations_per_message,
        )


def over_caps(reports: list[ParsedReport], context: IntakeContext) -> str | None:
    """Why a message is too large to take in, or None. A whole message is refused (AR, or an
    OperationOutcome), never a part of it: half a message would look like all of it."""
    if len(reports) > context.max_reports:
        return (
            f"The message holds {len(reports)} reports; at most {context.max_reports} are "
            "taken in one message: send them in several."
        )
    observations = sum(len(r.observations) for r in reports)
    if observations > context.max_observations:
        return (
            f"The message holds {observations} observations; at most "
            f"{context.max_observations} are taken in one message: send them in several."
        )
    return None


@lru_cache(maxsize=4)
def thresholds_from(path: str | None) -> list[domain.Threshold]:
    return domain.load_thresholds(Path(path)) if path else domain.load_thresholds()


def kept_headers(headers: Any) -> dict[str, str]:
    return {k: headers[k] for k in KEPT_HEADERS if k in headers}


async def store(
    factory: async_sessionmaker[AsyncSession],
    *,
    channel: str,
    sender_id: uuid.UUID | None,
    sender_name: str,
    body: bytes,
    headers: dict[str, str],
    message_key: str | None,
    webhook_id: str | None,
    now: datetime,
    state: str = "received",
    outcome: str | None = None,
    replay_of: uuid.UUID | None = None,
    take_over: bool = False,
    content_hash: str | None = None,
    reused_key_of: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Write the message in its own transaction, before any processing. None: a duplicate
    arrived at the same moment (the unique index said so)."""
    async with factory() as session:
        if replay_of is not None and take_over:
            # Take the earlier one over, once: of two resends at the same moment one wins;
            # a take that is still alive holds its row and this waits for its outcome.
            taken = await session.execute(
                update(InboundMessage)
                .where(
                    InboundMessage.id == replay_of,
                    InboundMessage.state.in_(("received", "failed")),
                )
                .values(state="superseded")
            )
            if getattr(taken, "rowcount", 0) != 1:
                await session.rollback()
                return None
        message = InboundMessage(
            channel=channel,
            sender_id=sender_id,
            sender_name=sender_name,
            message_key=message_key,
            webhook_id=webhook_id,
            headers=headers,
            body=body,
            received_at=now,
            state=state,
            outcome=outcome,
            replay_of=replay_of,
            content_hash=content_hash,
            reused_key_of=reused_key_of,
        )
        session.add(message)
        try:
            if reused_key_of is not None:  # the admins hear of it with the message, or not at all
                await session.flush()
                await worklist.add(
                    session,
                    audiences=[worklist.ADMIN],
                    kind="message.control_id_reused",
                    title=(
                        f"{sender_name}: a message id was used before for another message; "
                        "both are kept and processed"
                    ),
                    now=now,
                    message_id=message.id,
                )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return None
        return message.id


async def record(
    session: AsyncSession, message_id: uuid.UUID, answer: Answer, *, now: datetime
) -> None:
    message = await session.get(InboundMessage, message_id)
    assert message is not None
    message.state = answer.state
    message.outcome = answer.outcome[:1000]
    message.ack_code = answer.code
    message.response_status = answer.status
    message.response_body = answer.body
    message.processed_at = now


def hl7_answer(
    message: Any,
    code: str,
    text: str,
    *,
    now: datetime,
    state: str,
    control_id: str | None = None,
) -> Answer:
    return Answer(
        status=200,
        body=hl7v2.ack(message, code, text, now=now, control_id=control_id),
        media_type="application/hl7-v2",
        state=state,
        code=code,
        outcome=text,
    )


def fhir_answer(status: int, severity: str, code: str, text: str, *, state: str) -> Answer:
    return Answer(
        status=status,
        body=json.dumps(fhir.outcome(severity, code, text)),
        media_type="application/fhir+json",
        state=state,
        code=severity,
        outcome=text,
    )


async def process(
    session: AsyncSession,
    *,
    channel: str,
    raw: bytes,
    sender_id: uuid.UUID,
    message_id: uuid.UUID,
    context: IntakeContext,
    now: datetime,
    note: str | None = None,
) -> Answer:
    """Decode, parse and ingest in the caller's transaction. Raises nothing on bad input: it
    answers (AR/AE echoing MSH-10 whenever it can be read; a FHIR OperationOutcome)."""
    repo = ReportRepository(session)
    notes = [note] if note else []
    if channel in ("hl7v2", "mllp"):
        try:
            body = hl7v2.decode(raw)
            message = hl7v2.parse_message(body)
        except hl7v2.Hl7Rejected as exc:
            return hl7_answer(
                None, "AR", str(exc), now=now, state="rejected", control_id=exc.control_id
            )
        try:
            _, reports = hl7v2.parse_oru(message, tz=context.tz)
            too_large = over_caps(reports, context)
            if too_large is not None:
                return hl7_answer(message, "AR", too_large, now=now, state="rejected")
            for report in reports:
                domain.check_sizes(report)
        except hl7v2.Hl7Rejected as exc:
            return hl7_answer(message, "AR", str(exc), now=now, state="rejected")
        except (hl7v2.Hl7Unprocessable, ValueError) as exc:
            return hl7_answer(message, "AE", str(exc), now=now, state="rejected")
        result = await ingest(
            repo,
            sender_id=sender_id,
            message_id=message_id,
            reports=reports,
            thresholds=context.thresholds,
            today=now.astimezone(context.tz).date(),
            now=now,
            ack_within=context.ack_within,
        )
        text = "; ".join([result.summary(), *notes])
        return hl7_answer(message, "AA", text, now=now, state="processed")
    try:
        payload = json.loads(_fhir_text(raw))
        _, reports = fhir.parse_reports(payload)
        too_large = over_caps(reports, context)
        if too_large is not None:
            return fhir_answer(422, "error", "too-costly", too_large, state="rejected")
        for report in reports:
            domain.check_sizes(report)
    except UnicodeDecodeError:
        return fhir_answer(
            400, "error", "structure", "The body is not UTF-8 text.", state="rejected"
        )
    except (json.JSONDecodeError, RecursionError):
        return fhir_answer(400, "error", "structure", "The body is not JSON.", state="rejected")
    except fhir.FhirInvalid as exc:
        return fhir_answer(exc.status, "error", exc.code, str(exc), state="rejected")
    except ValueError as exc:
        return fhir_answer(422, "error", "too-long", str(exc), state="rejected")
    result = await ingest(
        repo,
        sender_id=sender_id,
        message_id=message_id,
        reports=reports,
        thresholds=context.thresholds,
        today=now.astimezone(context.tz).date(),
        now=now,
        ack_within=context.ack_within,
    )
    text = "; ".join([result.summary(), *notes])
    return fhir_answer(200, "information", "informational", text, state="processed")


def _fhir_text(raw: bytes) -> str:
    """JSON is UTF-8 (RFC 8259); a byte-order mark, which some senders write, is accepted."""
    text = raw.decode("utf-8")
    if "\x00" in text:
        raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL in the body")
    return text.removeprefix("\ufeff")


def content_hash(channel: str, raw: bytes) -> str:
    """What a message says, hashed: for HL7 with its segment separators and framing
    normalised (a resend over MLLP or with CRLF is the same message), else the signed bytes."""
    if channel in ("hl7v2", "mllp"):
        text = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        while b"\r\r" in text:
            text = text.replace(b"\r\r", b"\r")
        raw = text.strip(b"\r \t\x0b\x1c")
    return hashlib.sha256(raw).hexdigest()


def hl7_control_id(raw: bytes) -> str | None:
    """MSH-10 when it can be read (for de-duplication before processing and the ACK); from
    the decoded text, else from the bytes read as Latin-1.

    FHIR deliveries are de-duplicated by webhook-id only: a resource keeps its id across
    versions, so the id of a report cannot tell a resend from an amendment.
    """
    try:  # decoded as MSH-18 says: a GBK byte 0x7C in MSH-4 would shift the fields
        return hl7v2.control_id_of(hl7v2.decode(raw))
    except hl7v2.Hl7Rejected:
        return hl7v2.control_id_of(raw.decode("latin-1"))


# Taking a stored message in: HTTP and MLLP alike ----------------------------------------

STALE_AFTER = timedelta(minutes=2)  # a "received" message older than this was cut off
# A stored message nobody is processing any more (its server died) is taken again at once by
# a resend; the grace covers the moment between storing a message and starting on it.
TAKE_GRACE = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Taken:
    answer: Answer
    replayed: bool = False  # the first answer to the same message, sent again


def busy(channel: str, now: datetime, control_id: str | None = None) -> Answer:
    text = "The same message is still being processed; send it again later."
    if channel in ("hl7v2", "mllp"):
        return hl7_answer(None, "AE", text, now=now, state="received", control_id=control_id)
    return fhir_answer(409, "error", "conflict", text, state="received")


@dataclass(slots=True)
class Taker:
    """De-duplicates, stores, processes and records lab messages, for HTTP and MLLP alike.

    A message is stored before anything else. The same message again gets the first answer;
    one that failed on our side, or whose processing died with its server, is taken again by
    the resend (once, as a replay); one being processed right now gets AE "send it later".
    """

    factory: async_sessionmaker[AsyncSession]
    context: IntakeContext
    taking: set[uuid.UUID] = field(default_factory=set)  # processing in this process now

    async def being_taken(self, message_id: uuid.UUID) -> bool:
        """In this process the set says so; across processes (PostgreSQL) the processing
        transaction holds the message's row lock, which dies with a killed server."""
        if message_id in self.taking:
            return True
        async with self.factory() as db:
            if db.get_bind().dialect.name != "postgresql":
                return False
            free = await db.scalar(
                select(InboundMessage.id)
                .where(InboundMessage.id == message_id)
                .with_for_update(skip_locked=True)
            )
            await db.rollback()
            return free is None

    async def take(
        self,
        session: AsyncSession,
        *,
        channel: str,
        raw: bytes,
        sender_id: uuid.UUID,
        sender_name: str,
        headers: dict[str, str],
        webhook_id: str | None,
        now: datetime,
    ) -> Taken:
        """Processing runs in ``session``; a processed message is recorded in it too, so that
        it commits with the reports (the caller commits).

        A control id (or webhook-id) seen before with other content is not a resend: LIS
        counters roll over and reset, and answering it with the earlier AA would lose it. It
        is stored and processed as the new message it is, and shown to the admins.
        """
        key = hl7_control_id(raw) if channel in ("hl7v2", "mllp") else None
        digest = content_hash(channel, raw)
        async with self.factory() as db:
            earlier, reused = await ReportRepository(db).seen(
                sender_id=sender_id,
                channel=channel,
                key=key,
                webhook_id=webhook_id,
                content_hash=digest,
            )
        replay_of = None
        if earlier is not None:
            reused = None
            age = now - earlier.received_at
            stale = earlier.state == "received" and (
                age > STALE_AFTER or (age > TAKE_GRACE and not await self.being_taken(earlier.id))
            )
            if earlier.state == "failed" or stale:
                # A failure (or a crash) on our side: processed again, as a replay that keeps
                # the webhook-id, so that the next resend finds the replay's answer.
                replay_of = earlier.id
            elif earlier.response_body is not None and earlier.response_status is not None:
                kept = Answer(
                    status=earlier.response_status,
                    body=earlier.response_body,
                    media_type=MEDIA.get(channel, "text/plain"),
                    state=earlier.state,
                    code="",
                    outcome=earlier.outcome or "",
                )
                return Taken(kept, replayed=True)
            else:
                return Taken(busy(channel, now, key))
        message_id = await store(
            self.factory,
            channel=channel,
            sender_id=sender_id,
            sender_name=sender_name,
            body=raw,
            headers=headers,
            message_key=key,
            webhook_id=webhook_id,
            now=now,
            replay_of=replay_of,
            take_over=replay_of is not None,
            content_hash=digest,
            reused_key_of=reused.id if reused is not None else None,
        )
        if message_id is None:  # the same message is being taken in by another one right now
            return Taken(busy(channel, now, key))
        note = None
        if reused is not None:
            what = f"MSH-10 {key!r}" if key and reused.message_key == key else "webhook-id"
            note = f"{what} was used before for another message; taken as a new message"
        return Taken(
            await self.process_stored(
                session,
                channel=channel,
                raw=raw,
                sender_id=sender_id,
                message_id=message_id,
                now=now,
                note=note,
            )
        )

    async def process_stored(
        self,
        session: AsyncSession,
        *,
        channel: str,
        raw: bytes,
        sender_id: uuid.UUID,
        message_id: uuid.UUID,
        now: datetime,
        note: str | None = None,
    ) -> Answer:
        """Process a message already stored (a new one, or an admin's replay copy)."""
        self.taking.add(message_id)
        try:
            return await self._process(session, channel, raw, sender_id, message_id, now, note)
        finally:
            self.taking.discard(message_id)

    async def _process(
        self,
        session: AsyncSession,
        channel: str,
        raw: bytes,
        sender_id: uuid.UUID,
        message_id: uuid.UUID,
        now: datetime,
        note: str | None,
    ) -> Answer:
        answer: Answer | None = None
        for attempt in (1, 2):
            try:
                # Hold the stored message's row while it is processed: a resend can tell a
                # live processing (locked) from one whose server died (free). If a resend took
                # it over while this one was slow to start, this one leaves it to the resend.
                state = await session.scalar(
                    select(InboundMessage.state)
                    .where(InboundMessage.id == message_id)
                    .with_for_update()
                )
                if state != "received":
                    await session.rollback()
                    return busy(channel, now, hl7_control_id(raw) if channel != "fhir" else None)
                answer = await process(
                    session,
                    channel=channel,
                    raw=raw,
                    sender_id=sender_id,
                    message_id=message_id,
                    context=self.context,
                    now=now,
                    note=note,
                )
                break
            except IntegrityError:
                # Another message about the same report was taken in at the same moment; once
                # it has committed, this one updates the report it created.
                await session.rollback()
                if attempt == 2:
                    logger.exception(
                        "lab message conflicted twice", extra={"message_id": str(message_id)}
                    )
            except Exception:  # stored, so nothing is lost: AE, and a resend is taken again
                logger.exception(
                    "lab message processing failed", extra={"message_id": str(message_id)}
                )
                await session.rollback()
                break
        if answer is None:
            text = "Internal error while processing; the message is stored: send it again."
            answer = (
                hl7_answer(
                    None, "AE", text, now=now, state="failed", control_id=hl7_control_id(raw)
                )
                if channel in ("hl7v2", "mllp")
                else fhir_answer(500, "error", "exception", text, state="failed")
            )
        if answer.state == "processed":
            await record(session, message_id, answer, now=now)  # commits with the reports
        else:
            await session.rollback()
            async with self.factory() as db:
                await record(db, message_id, answer, now=now)
                await db.commit()
        return answer


MEDIA = {
    "hl7v2": "application/hl7-v2",
    "mllp": "application/hl7-v2",
    "fhir": "application/fhir+json",
}
