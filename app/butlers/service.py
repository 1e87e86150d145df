"""Butler records and rosters. Services flush; the request commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app.auth.models import Role
from app.auth.repository import AuthRepository
from app.butlers.models import Butler, RosterShift, Skill
from app.butlers.repository import ButlerRepository
from app.butlers.schemas import ButlerCreate, ButlerPublic, ButlerUpdate, Shift
from app.core.errors import Conflict, NotFound, invalid_field


def _shift_rows(butler_id: uuid.UUID, shifts: list[Shift]) -> list[RosterShift]:
    return [
        RosterShift(
            butler_id=butler_id, weekday=s.weekday, starts_at=s.starts_at, ends_at=s.ends_at
        )
        for s in shifts
    ]


async def create_butler(
    repo: ButlerRepository, users: AuthRepository, *, data: ButlerCreate, now: datetime
) -> tuple[Butler, list[RosterShift]]:
    user = await users.user_by_id(data.user_id)
    if user is None or user.role is not Role.BUTLER:
        raise invalid_field(
            "user_id",
            "no butler account with that id",
            message="user_id must name an account with the butler role.",
        )
    if await repo.by_user(data.user_id) is not None:
        raise Conflict("That account is already linked to a butler record.")
    butler = Butler(
        user_id=data.user_id,
        display_name=data.display_name,
        skills=[s.value for s in data.skills],
        languages=list(data.languages),
        max_caseload=data.max_caseload,
        is_active=True,
        created_at=now,
        updated_at=now,
        version=1,
    )
    repo.session.add(butler)
    try:
        await repo.session.flush()
    except IntegrityError as exc:  # the same account linked by a concurrent request
        raise Conflict("That account is already linked to a butler record.") from exc
    shifts = _shift_rows(butler.id, data.roster)
    await repo.replace_shifts(butler.id, shifts)
    return butler, shifts


async def get_butler(
    repo: ButlerRepository, *, butler_id: uuid.UUID, for_update: bool = False
) -> Butler:
    butler = await repo.get(butler_id, for_update=for_update)
    if butler is None:
        raise NotFound("No butler with that id.")
    return butler


async def update_butler(
    repo: ButlerRepository, *, butler: Butler, data: ButlerUpdate, now: datetime
) -> list[str]:
    changed: list[str] = []
    values: dict[str, object] = {
        "display_name": data.display_name,
        "skills": sorted({s.value for s in data.skills}) if data.skills is not None else None,
        "languages": data.languages,
        "max_caseload": data.max_caseload,
        "is_active": data.is_active,
    }
    for field, value in values.items():
        if field in data.model_fields_set and value is not None and getattr(butler, field) != value:
            setattr(butler, field, value)
            changed.append(field)
    if changed:
        butler.version += 1
        butler.updated_at = now
    await repo.session.flush()
    return changed


async def replace_roster(
    repo: ButlerRepository, *, butler: Butler, shifts: list[Shift], now: datetime
) -> list[RosterShift]:
    rows = _shift_rows(butler.id, shifts)
    await repo.replace_shifts(butler.id, rows)
    butler.version += 1
    butler.updated_at = now
    await repo.session.flush()
    return rows


def butler_view(butler: Butler, shifts: list[RosterShift]) -> ButlerPublic:
    return ButlerPublic(
        id=butler.id,
        user_id=butler.user_id,
        display_name=butler.display_name,
        skills=[Skill(s) for s in butler.skills],
        languages=list(butler.languages),
        max_caseload=butler.max_caseload,
        is_active=butler.is_active,
        roster=[Shift(weekday=s.weekday, starts_at=s.starts_at, ends_at=s.ends_at) for s in shifts],
        created_at=butler.created_at,
        updated_at=butler.updated_at,
        version=butler.version,
    )
