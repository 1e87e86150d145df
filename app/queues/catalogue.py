"""The exam catalogue: the rules each exam type routes by, and the admin's changes to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, invalid_field
from app.queues.domain import Catalogue, ExamRule, parse_precedence, parse_sequence
from app.queues.models import ExamType
from app.queues.policy import Ctx
from app.queues.repository import QueueRepository


def rule_of(row: ExamType) -> ExamRule:
    return ExamRule(
        code=row.code,
        name=row.name,
        name_zh=row.name_zh,
        station_type=row.station_type,
        position=row.position,
        fasting=row.fasting,
        after_meal=row.after_meal,
        last=row.last,
        precedence=parse_precedence(row.precedence or ()),
        sequence=parse_sequence(row.sequence or ()),
        service_minutes=row.learned_service_minutes or row.default_service_minutes,
    )


async def load_catalogue(session: AsyncSession) -> Catalogue:
    rows = await QueueRepository(session).exam_types()
    return Catalogue({r.code: rule_of(r) for r in rows})


async def exam_types(session: AsyncSession) -> list[ExamType]:
    """The catalogue in its order."""
    return await QueueRepository(session).exam_types_in_order()


async def exam_type_for_update(session: AsyncSession, code: str) -> ExamType:
    row = await QueueRepository(session).exam_type_for_update(code)
    if row is None:
        raise NotFound(f"No exam type {code!r}.")
    return row


async def update_exam_type(
    session: AsyncSession, row: ExamType, changes: dict[str, Any], ctx: Ctx
) -> None:
    """Apply an admin's changes to an exam type, if the catalogue stays valid with them."""
    for field in ("precedence", "sequence"):
        if field in changes:
            try:
                (parse_precedence if field == "precedence" else parse_sequence)(changes[field])
            except (ValueError, KeyError, TypeError) as exc:
                raise invalid_field(field, str(exc)) from exc
    for field, value in changes.items():
        setattr(row, field, value)
    catalogue = await load_catalogue(session)
    try:
        catalogue.validate()
    except ValueError as exc:
        raise invalid_field("precedence", str(exc)) from exc
    row.version += 1
    row.updated_at = ctx.now
