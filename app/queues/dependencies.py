"""What a queue route runs with: its moment and policy, the catalogue, the entry it acts on."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import Depends

from app.core.deps import ClockDep, SettingsDep
from app.core.principal import Principal, PrincipalKind
from app.core.routing import SessionDep
from app.queues.catalogue import load_catalogue
from app.queues.domain import Catalogue
from app.queues.models import QueueEntry
from app.queues.operations import entry_by_id
from app.queues.policy import Ctx, QueuePolicy


async def get_ctx(clock: ClockDep, settings: SettingsDep) -> Ctx:
    """The actor is filled in per route; this carries the clock, zone and routing policy."""
    nobody = Principal(kind=PrincipalKind.USER, id=uuid.UUID(int=0), name="-", role="-")
    return Ctx(
        now=clock.now(),
        tz=settings.tz,
        actor=nobody,
        policy=QueuePolicy.from_settings(settings),
    )


CtxDep = Annotated[Ctx, Depends(get_ctx)]


def acting(ctx: Ctx, principal: Principal) -> Ctx:
    """The route's context with its caller as the actor."""
    return replace(ctx, actor=principal)


async def get_catalogue(session: SessionDep) -> Catalogue:
    return await load_catalogue(session)


CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]


async def entry_for_station(session: SessionDep, entry_id: uuid.UUID) -> QueueEntry:
    """The entry a station acts on, locked for the request."""
    return await entry_by_id(session, entry_id, for_update=True)


EntryDep = Annotated[QueueEntry, Depends(entry_for_station)]
