"""Who is calling and may they: authentication, role checks, Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.audit.service import AuditTrail
from app.auth import service
from app.auth.models import Role
from app.auth.repository import AuthRepository
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import Forbidden, NotAuthenticated
from app.core.idempotency import claim_key, fingerprint
from app.core.principal import Principal
from app.core.routing import SessionDep

bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from POST /v1/auth/login.", scheme_name="bearer"
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An integration client's API key (lab report system).",
    scheme_name="apiKey",
)


async def get_auth_repository(session: SessionDep) -> AuthRepository:
    return AuthRepository(session)


AuthRepoDep = Annotated[AuthRepository, Depends(get_auth_repository)]


async def pre_authenticate(request: Request) -> bool:
    """Who is calling, found before the embedded database's write lock is taken.

    ``TransactionalRoute`` calls this (as ``app.state.pre_authenticate``) for a writing request
    on SQLite, in a short read-only session of its own; ``get_principal`` then uses the answer,
    a principal or the refusal, without looking again. A flood of bogus tokens is turned away
    without ever waiting for, or holding up, anyone's write. False when no credentials were
    sent or they were refused."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    api_key = request.headers.get("x-api-key")
    if not (scheme.lower() == "bearer" and secret.strip()) and not api_key:
        return False  # no credentials: a route that needs a caller answers 401
    clock = request.app.state.clock
    async with request.app.state.session_factory() as session:
        repo = AuthRepository(session)
        try:
            if scheme.lower() == "bearer" and secret.strip():
                outcome: Principal | NotAuthenticated = await service.authenticate_bearer(
                    repo,
                    secret=secret.strip(),
                    now=clock.now(),
                    cache=request.app.state.token_cache,
                )
            else:
                outcome = await service.authenticate_api_key(repo, key=api_key or "")
        except NotAuthenticated as refusal:
            outcome = refusal
        await session.rollback()
    request.state.pre_authenticated = outcome
    return not isinstance(outcome, NotAuthenticated)


async def get_principal(
    request: Request,
    repo: AuthRepoDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    known = getattr(request.state, "pre_authenticated", None)
    if isinstance(known, NotAuthenticated):
        raise known
    if isinstance(known, Principal):
        request.state.principal = known
        return known
    if credentials is not None and credentials.scheme.lower() == "bearer":
        principal = await service.authenticate_bearer(
            repo,
            secret=credentials.credentials,
            now=clock.now(),
            cache=request.app.state.token_cache,
        )
    elif api_key:
        principal = await service.authenticate_api_key(repo, key=api_key)
    else:
        raise NotAuthenticated("Send 'Authorization: Bearer <token>' or 'X-API-Key'.")
    request.state.principal = principal
    return principal


# The transactional route looks for this mark to know a route needs a caller (core/routing).
get_principal.identifies_caller = True  # type: ignore[attr-defined]

CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


RoleCheck = Callable[..., Awaitable[Principal]]


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def require_roles(*roles: Role) -> RoleCheck:
    allowed = frozenset(r.value for r in roles)

    async def check_role(
        request: Request, principal: CurrentPrincipal, clock: ClockDep
    ) -> Principal:
        if principal.role not in allowed:
            route = request.scope.get("route")
            # A refusal on her record's routes is on her trail: it names the mother tried.
            mother_id = _uuid_or_none(request.path_params.get("mother_id"))
            AuditTrail(
                session=None, request=request, principal=principal, clock=clock
            ).record_denied(
                f"{request.method} {getattr(route, 'path', request.url.path)}",
                "route",
                str(mother_id) if mother_id else None,
                reason="role not allowed",
                mother_id=mother_id,
            )
            raise Forbidden(
                f"This needs one of the roles: {', '.join(sorted(allowed))}.",
                extra={"required_roles": sorted(allowed)},
            )
        return principal

    check_role.allowed_roles = allowed  # type: ignore[attr-defined]
    return check_role


# Who may call a route: one alias per set of roles, named for who is in it. Every router takes
# its role check from here, so one set has one name (the route x role table:
# tests/test_authorization.py).
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
DoctorOnly = Annotated[Principal, Depends(require_roles(Role.DOCTOR))]
ButlerOnly = Annotated[Principal, Depends(require_roles(Role.BUTLER))]
LabSystemOnly = Annotated[Principal, Depends(require_roles(Role.LAB_SYSTEM))]
AdminOrDoctor = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.DOCTOR))]
AdminOrStation = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.STATION))]
# The front desk, with the admin who may do anything the desk does.
DeskStaff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK))]
DeskOrButler = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.BUTLER))
]
DeskOrStation = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.STATION))
]
# The clinic's staff: admin, front desk and doctors.
ClinicStaff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR))]
ClinicStaffOrButler = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.BUTLER))
]
ClinicStaffOrStation = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION))
]
# The nutritionist runs the nutrition station: the station routes admit her, and the queues
# keep her to that station (object level).
StationOrNutritionist = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.STATION, Role.NUTRITIONIST))
]
ClinicStaffStationOrNutritionist = Annotated[
    Principal,
    Depends(
        require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION, Role.NUTRITIONIST)
    ),
]
# The clinicians who sign a health-management plan: doctors and the nutritionist.
Clinician = Annotated[Principal, Depends(require_roles(Role.DOCTOR, Role.NUTRITIONIST))]
NutritionistOnly = Annotated[Principal, Depends(require_roles(Role.NUTRITIONIST))]
ClinicStaffOrNutritionist = Annotated[
    Principal,
    Depends(require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.NUTRITIONIST)),
]
# Who reads her record's health views (her charts): the clinic's staff, her butler (object
# level) and the nutritionist.
ClinicStaffButlerOrNutritionist = Annotated[
    Principal,
    Depends(
        require_roles(Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.BUTLER, Role.NUTRITIONIST)
    ),
]
# Every person's role (an integration client is not among them).
AnyStaff = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.ADMIN, Role.FRONT_DESK, Role.DOCTOR, Role.STATION, Role.BUTLER, Role.NUTRITIONIST
        )
    ),
]


async def get_audit(
    request: Request, session: SessionDep, clock: ClockDep, principal: CurrentPrincipal
) -> AuditTrail:
    return AuditTrail(session=session, request=request, principal=principal, clock=clock)


AuditDep = Annotated[AuditTrail, Depends(get_audit)]


async def idempotent(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    clock: ClockDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description=(
                "Any unique string (a UUID is best). A retry with the same key and body returns "
                "the first answer; the same key with another body gets 422; while the first is "
                "still running, 409. Keys are kept per client for at least 24 hours."
            ),
        ),
    ] = None,
) -> None:
    """Honour Idempotency-Key (SPEC.md section 4); every creating POST depends on this."""
    if not idempotency_key:
        return
    # Nothing is written yet: end the request's read transaction so that it gives its pooled
    # connection back while the claim uses one (a request never holds two; no pool deadlock).
    await session.rollback()
    body = await request.body()
    request.state.idempotency_claim = await claim_key(
        request.app.state.session_factory,
        scope=principal.scope_key,
        key=idempotency_key,
        fingerprint_=fingerprint(request.method, request.url.path, request.url.query, body),
        now=clock.now(),
        lock_for=timedelta(seconds=settings.idempotency_lock_seconds),
        keep_for=timedelta(hours=settings.idempotency_ttl_hours),
    )


Idempotent = Depends(idempotent)
