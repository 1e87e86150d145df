"""Every query of the mother aggregate (mother, her pregnancies, risk-grade history)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.assignments.repository import visible_mother_ids
from app.mothers.domain import RiskGrade
from app.mothers.models import DatingChange, Mother, Pregnancy, PregnancyStatus, RiskGradeChange
from app.mothers.search_keys import Query, prefix_upper
from app.worklist.models import WorklistItem


@dataclass(frozen=True, slots=True)
class MotherFilter:
    mrn: str | None = None
    name: str | None = None
    phone: str | None = None
    risk_grades: tuple[RiskGrade, ...] = ()
    edd_from: date | None = None
    edd_to: date | None = None
    primary_butler_id: uuid.UUID | None = None
    visible_to_butler: uuid.UUID | None = None  # only her assigned mothers (as of visible_on)
    visible_on: date | None = None
    query: Query | None = None  # the search box (best matches first)


@dataclass(frozen=True, slots=True)
class Tier:
    """One way a typed query finds her: an exact key or a key's prefix. The tiers are tried
    in order, and a mother is listed in the first tier that finds her only."""

    column: InstrumentedAttribute[str | None] | InstrumentedAttribute[str]
    value: str
    prefix: bool

    def matches(self) -> ColumnElement[bool]:
        if not self.prefix:
            return self.column == self.value
        # A range, not LIKE: one btree range read on both databases (keys compare by code
        # point: PostgreSQL's "C" collation on these columns, SQLite's BINARY).
        return and_(self.column >= self.value, self.column < prefix_upper(self.value))

    def holds_for(self, mother: Mother) -> bool:
        key = getattr(mother, self.column.key)
        if key is None:
            return False
        return bool(key.startswith(self.value) if self.prefix else key == self.value)


def tiers(q: Query) -> list[Tier]:
    """Best matches first: an identifier typed whole, then her name as typed (characters,
    pinyin, initials), then the everyday reading of a polyphonic surname, then an MRN prefix
    (a name typed as letters is not drowned by MRNs that start with the same letters)."""
    out: list[Tier] = []
    if q.mrn:
        out.append(Tier(Mother.search_mrn, q.mrn, prefix=False))
    if q.national_id:
        out.append(Tier(Mother.national_id, q.national_id, prefix=False))
    if q.mobile:
        out.append(Tier(Mother.phone, q.mobile, prefix=False))
    if q.phone4:
        out.append(Tier(Mother.search_phone4, q.phone4, prefix=False))
    if q.name:
        out.append(Tier(Mother.search_name, q.name, prefix=True))
        out.append(Tier(Mother.search_given, q.name, prefix=True))
    if q.latin:
        # One letter: the initials that start with it are the pinyin that starts with it (her
        # initials begin with her pinyin's first letter), so that tier is left out rather than
        # read through thousands of mothers already listed.
        initials = len(q.latin) > 1
        out.append(Tier(Mother.search_pinyin, q.latin, prefix=True))
        if initials:
            out.append(Tier(Mother.search_initials, q.latin, prefix=True))
        out.append(Tier(Mother.search_pinyin_alt, q.latin, prefix=True))
        if initials:
            out.append(Tier(Mother.search_initials_alt, q.latin, prefix=True))
    if q.mrn:
        out.append(Tier(Mother.search_mrn, q.mrn, prefix=True))
    return out


class MotherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, mother_id: uuid.UUID, *, for_update: bool = False) -> Mother | None:
        stmt = select(Mother).where(Mother.id == mother_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def active_pregnancy(self, mother_id: uuid.UUID) -> Pregnancy | None:
        return await self.session.scalar(
            select(Pregnancy).where(
                Pregnancy.mother_id == mother_id, Pregnancy.status == PregnancyStatus.ACTIVE
            )
        )

    async def pregnancy(self, pregnancy_id: uuid.UUID) -> Pregnancy | None:
        return await self.session.scalar(select(Pregnancy).where(Pregnancy.id == pregnancy_id))

    async def open_worklist_items(
        self, mother_id: uuid.UUID, kinds: tuple[str, ...]
    ) -> list[WorklistItem]:
        """Her open risk items (the re-assessment prompts a doctor's decision closes)."""
        return list(
            await self.session.scalars(
                select(WorklistItem)
                .where(
                    WorklistItem.mother_id == mother_id,
                    WorklistItem.kind.in_(kinds),
                    WorklistItem.acknowledged_at.is_(None),
                )
                .order_by(WorklistItem.created_at, WorklistItem.id)
                .with_for_update()
            )
        )

    async def mrn_taken(self, mrn: str) -> bool:
        return await self.session.scalar(select(Mother.id).where(Mother.mrn == mrn)) is not None

    async def national_id_owner(self, national_id: str) -> uuid.UUID | None:
        return await self.session.scalar(select(Mother.id).where(Mother.national_id == national_id))

    def _search(self, f: MotherFilter) -> Select[Mother, Pregnancy]:
        stmt = select(Mother, Pregnancy).outerjoin(
            Pregnancy,
            (Pregnancy.mother_id == Mother.id) & (Pregnancy.status == PregnancyStatus.ACTIVE),
        )
        if f.mrn:
            stmt = stmt.where(Mother.mrn == f.mrn)
        if f.name:
            escaped = f.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Mother.name.ilike(f"%{escaped}%", escape="\\"))
        if f.phone:
            stmt = stmt.where(Mother.phone == f.phone)
        if f.risk_grades:  # 'purple' (beside the colour) is the flag
            colours = [g for g in f.risk_grades if g is not RiskGrade.PURPLE]
            wanted = [Pregnancy.risk_grade.in_(colours)] if colours else []
            if RiskGrade.PURPLE in f.risk_grades:
                wanted.append(Pregnancy.purple.is_(True))
            stmt = stmt.where(or_(*wanted))
        if f.edd_from:
            stmt = stmt.where(Pregnancy.edd_date >= f.edd_from)
        if f.edd_to:
            stmt = stmt.where(Pregnancy.edd_date <= f.edd_to)
        if f.primary_butler_id:
            stmt = stmt.where(Mother.primary_butler_id == f.primary_butler_id)
        if f.visible_to_butler is not None:
            assert f.visible_on is not None
            stmt = stmt.where(Mother.id.in_(visible_mother_ids(f.visible_to_butler, f.visible_on)))
        return stmt

    async def search(
        self, f: MotherFilter, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[Mother, Pregnancy | None]]:
        if f.query is not None:
            return await self._ranked(f, f.query, after=after, limit=limit)
        stmt = self._search(f).order_by(Mother.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Mother.id > after)
        rows = (await self.session.execute(stmt)).all()
        return [(mother, pregnancy) for mother, pregnancy in rows]

    async def _ranked(
        self, f: MotherFilter, q: Query, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[Mother, Pregnancy | None]]:
        """Tier by tier, each in its key's order (then id) read from the key's index, until
        the page is full: a short query that finds thousands reads only a page of them.

        The cursor stays the last mother's id: where she stands (her tier and key) is worked
        out again from her row, so the next page starts right after her. Should her keys have
        changed so that the query no longer finds her, the list ends there."""
        order = tiers(q)
        start = 0
        anchor: tuple[str, uuid.UUID] | None = None
        if after is not None:
            last = await self.get(after)
            found = [i for i, t in enumerate(order) if last is not None and t.holds_for(last)]
            if last is None or not found:
                return []
            start = found[0]
            anchor = (getattr(last, order[start].column.key), last.id)
        out: list[tuple[Mother, Pregnancy | None]] = []
        for i in range(start, len(order)):
            tier = order[i]
            stmt = self._search(f).where(tier.matches())
            earlier = [t.matches() for t in order[:i]]
            if earlier:  # she was listed in an earlier tier (IS NOT TRUE: a NULL key is no match)
                stmt = stmt.where(or_(*earlier).is_not(True))
            if anchor is not None and i == start:
                stmt = stmt.where(tuple_(tier.column, Mother.id) > tuple_(*anchor))
            stmt = stmt.order_by(tier.column, Mother.id).limit(limit - len(out))
            out.extend((m, p) for m, p in (await self.session.execute(stmt)).all())
            if len(out) >= limit:
                break
        return out

    async def dating_history(self, pregnancy_id: uuid.UUID) -> list[DatingChange]:
        return list(
            await self.session.scalars(
                select(DatingChange)
                .where(DatingChange.pregnancy_id == pregnancy_id)
                .order_by(DatingChange.changed_at, DatingChange.id)
            )
        )

    async def by_mrn(self, mrn: str) -> Mother | None:
        return await self.session.scalar(select(Mother).where(Mother.mrn == mrn))

    async def risk_history(self, pregnancy_id: uuid.UUID) -> list[RiskGradeChange]:
        return list(
            await self.session.scalars(
                select(RiskGradeChange)
                .where(RiskGradeChange.pregnancy_id == pregnancy_id)
                .order_by(RiskGradeChange.changed_at, RiskGradeChange.id)
            )
        )
