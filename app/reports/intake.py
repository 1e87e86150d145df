"""One path for every inbound lab message: store it verbatim, then process it, then record
the outcome. HTTP routes, the MLLP listener and admin replays all come through here."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.reports import domain, fhir, hl7v2
from app.reports.models import InboundMessage
from app.reports.repository import ReportRepository
from app.reports.service import ingest

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
        )
        session.add(message)
        try:
            await session.commit()
        except IntegrityError:
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


def hl7_answer(message: Any, code: str, text: str, *, now: datetime, state: str) -> Answer:
    return Answer(
        status=200,
        body=hl7v2.ack(message, code, text, now=now),
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
    body: str,
    sender_id: uuid.UUID,
    message_id: uuid.UUID,
    context: IntakeContext,
    now: datetime,
) -> Answer:
    """Parse and ingest in the caller's transaction. Raises nothing on bad input: it answers."""
    repo = ReportRepository(session)
    if channel in ("hl7v2", "mllp"):
        try:
            message = hl7v2.parse_message(body)
        except hl7v2.Hl7Rejected as exc:
            return hl7_answer(None, "AR", str(exc), now=now, state="rejected")
        try:
            _, reports = hl7v2.parse_oru(message, tz=context.tz)
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
        return hl7_answer(message, "AA", result.summary(), now=now, state="processed")
    try:
        payload = json.loads(body)
        _, reports = fhir.parse_reports(payload)
        for report in reports:
            domain.check_sizes(report)
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
    return fhir_answer(200, "information", "informational", result.summary(), state="processed")


def hl7_control_id(body: str) -> str | None:
    """MSH-10 when the message parses that far (for de-duplication before processing).

    FHIR deliveries are de-duplicated by webhook-id only: a resource keeps its id across
    versions, so the id of a report cannot tell a resend from an amendment.
    """
    try:
        control_id = hl7v2.header_of(hl7v2.parse_message(body)).control_id
    except (hl7v2.Hl7Rejected, IndexError, ValueError):
        return None
    return control_id if control_id and len(control_id) <= 199 else None
