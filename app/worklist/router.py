"""The worklists of the front desk, the doctors and the admins: ETag and long-poll like the
butler's assignments, acknowledged with a note."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Header, Query, Request, Response, status

from app.auth.dependencies import AuditDep, ClinicStaffOrNutritionist
from app.auth.models import Role
from app.core.deps import ClockDep
from app.core.errors import Conflict, NotFound, problem_responses
from app.core.etag import none_match
from app.core.principal import Principal
from app.core.routing import SessionDep, make_router
from app.feed.fast_path import MAX_WAIT, hold_for
from app.feed.notifier import Notifier
from app.mothers.domain import mask_name
from app.worklist import service
from app.worklist.models import WorklistItem
from app.worklist.repository import WorklistRepository
from app.worklist.schemas import AcknowledgeItem, Worklist, WorklistItemPublic

router = make_router(prefix="/v1", tags=["worklist"], responses=problem_responses(401, 403, 422))


class AlertStillOpen(Conflict):
    slug = "critical-value-still-open"
    title = "The critical value is still open"


CACHE_CONTROL = "private, no-cache"


async def _public(
    repo: WorklistRepository, items: Sequence[WorklistItem]
) -> list[WorklistItemPublic]:
    """Each item with the MRN and masked name of the mother it is about (one query for all):
    an item that says "Nutritionist consultation" with only an id is no use on a screen."""
    mothers = await repo.mothers_of(items)
    out = []
    for item in items:
        public = WorklistItemPublic.model_validate(item)
        if item.mother_id in mothers:
            mrn, name = mothers[item.mother_id]
            public.mother_mrn, public.mother_masked_name = mrn, mask_name(name)
        out.append(public)
    return out


def audiences_of(principal: Principal) -> tuple[str, ...]:
    if principal.role == Role.ADMIN:
        return service.AUDIENCES
    if principal.role == Role.FRONT_DESK:
        return (service.FRONT_DESK,)
    if principal.role == Role.NUTRITIONIST:
        return (service.NUTRITIONIST,)
    return (service.DOCTOR, service.OBSTETRIC_LEAD)


def _etag(audiences: tuple[str, ...], version: str) -> str:
    return f'W/"wl-{"+".join(audiences)}-{version}"'


async def _wait(notifier: Notifier, events: list[asyncio.Event], seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@router.get(
    "/worklist",
    response_model=Worklist,
    summary="What the front desk, the doctor on duty or an admin must act on, critical first",
    description=(
        "Front-desk accounts see the front desk's list, doctors the doctors', admins every "
        "list. Send If-None-Match with the last ETag: 304 when nothing changed; with ?wait=N "
        "(at most 30) the request is held until the list changes or N seconds pass."
    ),
    responses={304: {"description": "Not modified"}},
)
async def read_worklist(
    request: Request,
    principal: ClinicStaffOrNutritionist,
    session: SessionDep,
    audit: AuditDep,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT)] = 0,
    open_only: Annotated[bool, Query(alias="open")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    audiences = audiences_of(principal)
    repo = WorklistRepository(session)
    notifier: Notifier = request.app.state.notifier
    # Subscribe before reading the version, so that no change slips between the two.
    events = [notifier.subscribe(service.wake_key(a)) for a in audiences] if wait else []
    etag = _etag(audiences, await repo.version(audiences))
    if none_match(if_none_match, etag):
        if not wait:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        await session.rollback()  # hold no connection while waiting
        with contextlib.suppress(TimeoutError):
            await _wait(notifier, events, hold_for(wait))
        etag = _etag(audiences, await repo.version(audiences))
        if none_match(if_none_match, etag):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    items = await repo.items(audiences, open_only=open_only, limit=limit)
    audit.record_many(
        "worklist.read",
        "worklist_item",
        [i.id for i in items],
        mothers={i.id: i.mother_id for i in items},
    )
    reports = {i.report_id for i in items if i.report_id is not None}
    mothers = {i.mother_id for i in items if i.mother_id is not None}
    audit.record_many(
        "report.worklist",
        "report",
        sorted(reports),
        mothers={i.report_id: i.mother_id for i in items if i.report_id is not None},
    )
    audit.record_many("mother.worklist", "mother", sorted(mothers))
    body = Worklist(
        items=await _public(repo, items),
        version=etag.removeprefix('W/"').removesuffix('"'),
    )
    return Response(
        body.model_dump_json().encode(),
        media_type="application/json",
        headers={"ETag": etag, "Cache-Control": CACHE_CONTROL},
    )


@router.post(
    "/worklist/{item_id}/acknowledge",
    response_model=WorklistItemPublic,
    summary="Mark an item dealt with, saying what was done (a second time changes nothing)",
    responses=problem_responses(404, 409),
)
async def acknowledge_item(
    item_id: uuid.UUID,
    body: AcknowledgeItem,
    principal: ClinicStaffOrNutritionist,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
) -> WorklistItemPublic:
    repo = WorklistRepository(session)
    item = await repo.item(item_id, for_update=True)
    if item is None or item.audience not in audiences_of(principal):
        if item is not None:
            audit.record_denied(
                "worklist.acknowledge",
                "worklist_item",
                item_id,
                reason="audience",
                mother_id=item.mother_id,
            )
        raise NotFound("No worklist item with that id is on your list.")
    if (
        item.kind in service.CLOSED_WITH_THEIR_ALERT
        and item.audience != service.FRONT_DESK  # the desk's part is to reconcile it
        and await repo.alert_is_open(item.alert_id)
    ):
        raise AlertStillOpen(
            "This item is a critical value's page: it leaves the lists when a doctor closes "
            f"the value (POST /v1/alerts/{item.alert_id}/acknowledge, with the read-back and "
            "the action taken) or when it is voided."
        )
    await service.acknowledge(
        session, item, by=f"{principal.role}:{principal.name}", note=body.note, now=clock.now()
    )
    audit.record("worklist.acknowledge", "worklist_item", item.id, mother_id=item.mother_id)
    return (await _public(WorklistRepository(session), [item]))[0]
