from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response, status

from app.auth.dependencies import (
    AdminOnly,
    AuditDep,
    AuthRepoDep,
    ClinicStaffOrButler,
    CurrentPrincipal,
    Idempotent,
)
from app.auth.models import Role
from app.butlers import service
from app.butlers.models import Butler
from app.butlers.repository import ButlerRepository
from app.butlers.schemas import ButlerCreate, ButlerPage, ButlerPublic, ButlerUpdate, RosterUpdate
from app.core.deps import ClockDep
from app.core.errors import NotFound, problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.pagination import PageDep, page_info, paginate
from app.core.routing import SessionDep, make_router

router = make_router(prefix="/v1/butlers", tags=["butlers"], responses=problem_responses(401, 422))


async def get_butler_repository(session: SessionDep) -> ButlerRepository:
    return ButlerRepository(session)


ButlerRepoDep = Annotated[ButlerRepository, Depends(get_butler_repository)]


async def visible_butler(
    butler_id: uuid.UUID, principal: ClinicStaffOrButler, repo: ButlerRepoDep
) -> Butler:
    """A butler may read only its own record; staff roles read every record."""
    butler = await repo.get(butler_id)
    if butler is None or (principal.role == Role.BUTLER and principal.butler_id != butler.id):
        raise NotFound("No butler with that id is visible to you.")
    return butler


VisibleButler = Annotated[Butler, Depends(visible_butler)]


async def _view(repo: ButlerRepository, butler: Butler, response: Response) -> ButlerPublic:
    shifts = (await repo.shifts([butler.id]))[butler.id]
    response.headers["ETag"] = etag_for(butler.version)
    return service.butler_view(butler, shifts)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ButlerPublic,
    summary="Create a butler record for a butler account",
    dependencies=[Idempotent],
    responses=problem_responses(403, 409),
)
async def create_butler(
    body: ButlerCreate,
    _admin: AdminOnly,
    repo: ButlerRepoDep,
    users: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
) -> ButlerPublic:
    butler, shifts = await service.create_butler(repo, users, data=body, now=clock.now())
    audit.record("butler.create", "butler", butler.id)
    response.headers["Location"] = f"/v1/butlers/{butler.id}"
    response.headers["ETag"] = etag_for(butler.version)
    return service.butler_view(butler, shifts)


@router.get(
    "",
    response_model=ButlerPage,
    summary="List butlers with skills, languages, caseload limit and roster",
    responses=problem_responses(403),
)
async def list_butlers(
    principal: ClinicStaffOrButler,
    repo: ButlerRepoDep,
    page: PageDep,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive.")] = None,
) -> ButlerPage:
    if principal.role == Role.BUTLER:
        own = await repo.get(principal.butler_id) if principal.butler_id else None
        butlers = [own] if own is not None and page.after is None else []
        info = page_info([b.id for b in butlers], page, has_more=False)
    else:
        butlers = await repo.list_page(active=active, after=page.after, limit=page.limit + 1)
        butlers, info = paginate(butlers, page, key=lambda r: r.id)
    shifts = await repo.shifts([b.id for b in butlers])
    return ButlerPage(
        items=[service.butler_view(b, shifts[b.id]) for b in butlers],
        page=info,
    )


@router.get(
    "/me",
    response_model=ButlerPublic,
    summary="The calling butler's own record",
    responses=problem_responses(404),
)
async def my_butler_record(
    principal: CurrentPrincipal, repo: ButlerRepoDep, response: Response
) -> ButlerPublic:
    butler = await repo.get(principal.butler_id) if principal.butler_id else None
    if butler is None:
        raise NotFound("Your account is not linked to a butler record.")
    return await _view(repo, butler, response)


@router.get(
    "/{butler_id}",
    response_model=ButlerPublic,
    summary="Read a butler",
    responses=problem_responses(403, 404),
)
async def get_butler(
    butler: VisibleButler, repo: ButlerRepoDep, response: Response
) -> ButlerPublic:
    return await _view(repo, butler, response)


@router.patch(
    "/{butler_id}",
    response_model=ButlerPublic,
    summary="Change skills, languages, caseload limit or active flag (If-Match required)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_butler(
    butler_id: uuid.UUID,
    body: ButlerUpdate,
    _admin: AdminOnly,
    repo: ButlerRepoDep,
    users: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> ButlerPublic:
    butler = await service.get_butler(repo, butler_id=butler_id, for_update=True)
    check_if_match(if_match, version=butler.version)
    changed = await service.update_butler(repo, butler=butler, data=body, now=clock.now())
    if "is_active" in changed:  # her token's cached butler link must not outlive the change
        await users.forget_cached(butler.user_id)
    audit.record("butler.update", "butler", butler.id, detail={"fields": changed})
    return await _view(repo, butler, response)


@router.put(
    "/{butler_id}/roster",
    response_model=ButlerPublic,
    summary="Replace a butler's weekly duty roster (If-Match required)",
    responses=problem_responses(403, 404, 412, 428),
)
async def replace_roster(
    butler_id: uuid.UUID,
    body: RosterUpdate,
    _admin: AdminOnly,
    repo: ButlerRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> ButlerPublic:
    butler = await service.get_butler(repo, butler_id=butler_id, for_update=True)
    check_if_match(if_match, version=butler.version)
    await service.replace_roster(repo, butler=butler, shifts=body.shifts, now=clock.now())
    audit.record("butler.roster", "butler", butler.id, detail={"shifts": len(body.shifts)})
    return await _view(repo, butler, response)
