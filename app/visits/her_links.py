"""The links to her own page: made by the desk for one visit, valid on that visit's day only,
revocable, one live per visit. Only a SHA-256 digest of the token is stored; the token itself
is handed back once, in the URL's fragment (``#k=``), which a browser sends to no server and no
Referer carries. Flushes only."""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import segno
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict
from app.core.principal import Principal
from app.visits.domain import TERMINAL
from app.visits.models import HerVisitLink, Visit

PAGE = "/console/her.html"
TOKEN_BYTES = 24  # 192 bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """Midnight after ``day`` in the clinic's zone (when her link stops working)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def page_url(token: str) -> str:
    return f"{PAGE}#k={token}"


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an SVG element (no XML declaration), dark on light."""
    out = io.BytesIO()
    segno.make_qr(url, error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False, svgclass="her-qr", lineclass=None
    )
    return out.getvalue().decode()


@dataclass(frozen=True, slots=True)
class NewLink:
    link: HerVisitLink
    token: str


async def live_link(session: AsyncSession, visit: Visit) -> HerVisitLink | None:
    return await session.scalar(
        select(HerVisitLink)
        .where(HerVisitLink.visit_id == visit.id, HerVisitLink.revoked_at.is_(None))
        .with_for_update()
    )


async def revoke(
    session: AsyncSession, visit: Visit, *, actor: Principal, now: datetime
) -> HerVisitLink | None:
    """Revoke her live link, if any (the one revoked, or None)."""
    link = await live_link(session, visit)
    if link is None:
        return None
    await session.execute(
        update(HerVisitLink)
        .where(HerVisitLink.id == link.id)
        .values(revoked_at=now, revoked_by_name=actor.name)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return link


async def create(
    session: AsyncSession, visit: Visit, *, actor: Principal, now: datetime, tz: ZoneInfo
) -> tuple[NewLink, HerVisitLink | None]:
    """A new link for the visit, revoking the one before (returned too)."""
    if visit.status in TERMINAL:
        raise Conflict(f"A {visit.status.value} visit has no page for her.")
    expires = end_of_day(visit.visit_date, tz)
    if expires <= now:
        raise Conflict(f"The visit was on {visit.visit_date.isoformat()}: its day is over.")
    old = await revoke(session, visit, actor=actor, now=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = HerVisitLink(
        visit_id=visit.id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=expires,
        created_by_id=actor.id,
        created_by_name=actor.name,
    )
    session.add(link)
    await session.flush()
    return NewLink(link, token), old


async def resolve(
    session: AsyncSession, token: str, *, now: datetime, tz: ZoneInfo
) -> tuple[HerVisitLink, Visit] | None:
    """The live link and its visit for this token, on the visit's day; else None."""
    if not token or len(token) > 100:
        return None
    row = (
        await session.execute(
            select(HerVisitLink, Visit)
            .join(Visit, Visit.id == HerVisitLink.visit_id)
            .where(HerVisitLink.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return None
    link, visit = row
    if link.revoked_at is not None or now >= link.expires_at:
        return None
    if now.astimezone(tz).date() != visit.visit_date:
        return None
    return link, visit
