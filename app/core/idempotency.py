"""Idempotency-Key for creating POSTs (SPEC.md section 4).

A key is claimed in its own short transaction, so a concurrent duplicate sees it at once and gets
409. The stored answer is written in the request's own transaction, so the answer and the data it
describes commit together. A failed request releases its claim; a crashed one expires after
``idempotency_lock_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import JSON, LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from app.core.database import Base, UUIDPrimaryKey, str_enum
from app.core.errors import IdempotencyInProgress, IdempotencyKeyReused

REPLAYED_HEADERS = ("content-type", "etag", "location")


class IdempotencyStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class IdempotencyRecord(UUIDPrimaryKey, Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[IdempotencyStatus] = mapped_column(str_enum(IdempotencyStatus, "status"))
    response_status: Mapped[int | None]
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("scope", "key"),)


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: uuid.UUID


class IdempotentReplay(Exception):
    """Raised to short-circuit a request whose answer is already stored."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    headers = dict(record.response_headers or {})
    headers["Idempotent-Replayed"] = "true"
    return Response(
        content=record.response_body or b"",
        status_code=record.response_status or 200,
        headers=headers,
    )


async def claim_key(
    factory: async_sessionmaker[AsyncSession],
    *,
    scope: str,
    key: str,
    fingerprint_: str,
    now: datetime,
    lock_for: timedelta,
    keep_for: timedelta,
) -> Claim:
    """Take the key for this request, or raise the replay / 409 / 422 that a duplicate gets."""
    for _attempt in range(3):
        async with factory() as session:
            record = await session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            )
            if record is not None and record.expires_at <= now:
                await session.delete(record)
                await session.flush()
                record = None
            if record is None:
                record = IdempotencyRecord(
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint_,
                    status=IdempotencyStatus.IN_PROGRESS,
                    created_at=now,
                    locked_until=now + lock_for,
                    expires_at=now + keep_for,
                )
                session.add(record)
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    continue  # somebody claimed it at the same moment: look again
                return Claim(record.id)
            if record.fingerprint != fingerprint_:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different method, path or body. "
                    "Use a new key for a new request."
                )
            if record.status is IdempotencyStatus.COMPLETED:
                raise IdempotentReplay(_replay(record))
            if record.locked_until > now:
                raise _in_progress()
            record.locked_until = now + lock_for
            await session.commit()
            return Claim(record.id)
    raise _in_progress()


def _in_progress() -> IdempotencyInProgress:
    return IdempotencyInProgress(
        "The first request with this Idempotency-Key has not finished; retry later.",
        headers={"Retry-After": "1"},
    )


async def complete_claim(session: AsyncSession, claim: Claim, response: Response) -> None:
    """Store the answer in the request's own transaction."""
    headers = {
        name: value for name, value in response.headers.items() if name.lower() in REPLAYED_HEADERS
    }
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claim.record_id)
        .values(
            status=IdempotencyStatus.COMPLETED,
            response_status=response.status_code,
            response_headers=json.loads(json.dumps(headers)),
            response_body=bytes(response.body),
        )
    )


async def release_claim(session: AsyncSession, claim: Claim) -> None:
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == claim.record_id,
            IdempotencyRecord.status == IdempotencyStatus.IN_PROGRESS,
        )
    )


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
