"""Fixed-window counters in the database: login failures per account, SMS per mother and
per account. Every server process shares them, and they survive a restart."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import Index, Integer, String, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base
from app.core.errors import TooManyRequests


class RateCounter(Base):
    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rate_limit_counters_window_start", "window_start"),)


def window_of(now: datetime, window: timedelta, tz: tzinfo | None = None) -> datetime:
    """The start of the fixed window ``now`` falls in; with ``tz``, windows of a day or more
    start at local midnight (a clinic's "per day" is its calendar day, not UTC's)."""
    seconds = window.total_seconds()
    shift = (now.astimezone(tz).utcoffset() if tz is not None else None) or timedelta()
    epoch = now.astimezone(UTC).timestamp() + shift.total_seconds()
    start = math.floor(epoch / seconds) * seconds - shift.total_seconds()
    return datetime.fromtimestamp(start, UTC)


def retry_after(now: datetime, window: timedelta, tz: tzinfo | None = None) -> int:
    """Seconds until the current window ends (what the Retry-After header says)."""
    ends = window_of(now, window, tz) + window
    return max(1, math.ceil((ends - now).total_seconds()))


async def hits(session: AsyncSession, bucket: str, window: timedelta, now: datetime) -> int:
    value = await session.scalar(
        select(RateCounter.hits).where(
            RateCounter.bucket == bucket, RateCounter.window_start == window_of(now, window)
        )
    )
    return int(value or 0)


async def hit(
    session: AsyncSession,
    bucket: str,
    window: timedelta,
    now: datetime,
    tz: tzinfo | None = None,
) -> int:
    """Count one more in this window; returns the count including it (atomic upsert)."""
    maker = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    upsert = (
        maker(RateCounter)
        .values(bucket=bucket, window_start=window_of(now, window, tz), hits=1)
        .on_conflict_do_update(
            index_elements=[RateCounter.bucket, RateCounter.window_start],
            set_={"hits": RateCounter.hits + 1},
        )
        .returning(RateCounter.hits)
    )
    return int((await session.execute(upsert)).scalar_one())


async def unhit(session: AsyncSession, bucket: str, window: timedelta, now: datetime) -> None:
    """Take back one use counted by ``hit`` (an attempt that turned out fine)."""
    await session.execute(
        update(RateCounter)
        .where(
            RateCounter.bucket == bucket,
            RateCounter.window_start == window_of(now, window),
            RateCounter.hits > 0,
        )
        .values(hits=RateCounter.hits - 1)
    )


async def clear(session: AsyncSession, bucket: str) -> None:
    """Forget every window of a bucket (an admin reset the account)."""
    await session.execute(delete(RateCounter).where(RateCounter.bucket == bucket))


async def clear_prefix(session: AsyncSession, bucket: str) -> None:
    """Forget every window of a bucket and of every bucket under it (``bucket@...``)."""
    escaped = bucket.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    await session.execute(
        delete(RateCounter).where(
            (RateCounter.bucket == bucket) | RateCounter.bucket.like(f"{escaped}@%", escape="\\")
        )
    )


async def spend(
    session: AsyncSession,
    bucket: str,
    *,
    limit: int,
    window: timedelta,
    now: datetime,
    what: str,
    tz: tzinfo | None = None,
) -> None:
    """Count this use in the caller's transaction; over the limit is a 429 (and, since the
    request then rolls back, is not counted)."""
    if await hit(session, bucket, window, now, tz) > limit:
        wait = retry_after(now, window, tz)
        raise TooManyRequests(
            f"{what}: at most {limit} per {_span(window)}. Try again later.",
            headers={"Retry-After": str(wait)},
            extra={"limit": limit, "retry_after_seconds": wait},
        )


def _span(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


async def purge(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(delete(RateCounter).where(RateCounter.window_start < before))
    return int(getattr(result, "rowcount", 0) or 0)
