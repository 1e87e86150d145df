from __future__ import annotations

import ipaddress
import logging
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Body, Request, Response, status
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.audit.service import AuditTrail, audit_row
from app.auth import service
from app.auth.dependencies import AdminOnly, AuditDep, AuthRepoDep, CurrentPrincipal, Idempotent
from app.auth.models import Role
from app.auth.repository import AuthRepository
from app.auth.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientList,
    ApiClientPublic,
    LoginRequest,
    Me,
    RevokedTokens,
    SigningSecretRotate,
    SigningSecretRotated,
    TokenResponse,
    UserCreate,
    UserPage,
    UserPublic,
    UserUpdate,
)
from app.core import ratelimit
from app.core.clock import Clock
from app.core.deps import ClockDep, SecretBoxDep, SettingsDep
from app.core.errors import NotAuthenticated, TooManyRequests, problem_responses
from app.core.etag import IfMatch, check_if_match, etag_for
from app.core.pagination import PageDep, paginate
from app.core.principal import Principal, PrincipalKind
from app.core.routing import make_router, takes_write_lock_late, write_lock

router = make_router(prefix="/v1", responses=problem_responses(401, 422))
logger = logging.getLogger("app.auth")


def login_bucket(username: str) -> str:
    return f"login:{username.strip().lower()}"


def client_bucket(username: str, client: str) -> str:
    """Failed logins of one account from one client address."""
    return f"{login_bucket(username)}@{client}"


def client_address(request: Request) -> str:
    """The caller's address as the server saw it, as failed logins are counted by: an IPv4
    address, or an IPv6 address's /64 (one home or phone network holds 2^64 addresses, and
    counting each apart would give a guesser as many tries). Behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips=<the proxy>`` so that this is the client's."""
    host = request.client.host if request.client is not None else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


async def _known_client(
    repo: AuthRepository, user_id: uuid.UUID, client: str, now: datetime
) -> bool:
    """Has this account logged in from this address lately? The audit trail says: every
    login is written there with its client address, and it is never purged."""
    since = now - timedelta(days=KNOWN_CLIENT_DAYS)
    found = await repo.session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.actor_id == user_id,
            AuditEvent.action == "auth.login",
            AuditEvent.outcome == "success",
            AuditEvent.occurred_at >= since,
            AuditEvent.detail["client"].as_string() == client,
        )
        .limit(1)
    )
    return found is not None


# An address this account logged in from within this many days is its own "recent client":
# with the right password it gets in even while the account as a whole is being guessed at.
KNOWN_CLIENT_DAYS = 30


async def _refuse_login(
    request: Request,
    clock: Clock,
    *,
    username: str,
    client: str,
    reason: str,
) -> None:
    """A refused login: audited and logged at warning level. The row goes through the audit
    group commit, so that a flood of refusals shares commits (on SQLite, one hold of the write
    lock for many rows) instead of taking the lock once each; the refusal leaves once its row
    is committed. A refusal made while this request holds the lock is written after the
    rollback instead, as other refusals are."""
    row = audit_row(
        None,
        "auth.login",
        "user",
        None,
        occurred_at=clock.now(),
        request_id=getattr(request.state, "request_id", None),
        outcome="denied",
        detail={"reason": reason, "username": username, "client": client},
    )
    if write_lock(request).held:  # the group commit would wait for this very lock
        pending: list[AuditEvent] = getattr(request.state, "audit_on_failure", [])
        request.state.audit_on_failure = [*pending, AuditEvent(**row)]
    else:
        # Give the request's connection back first: the writer needs one of its own, and a
        # burst of refusals each holding one while waiting for it would empty the pool.
        await request.state.db.rollback()
        await request.app.state.audit_writer.write([row])
    logger.warning(
        "login refused",
        extra={"event": "login_refused", "username": username, "client": client, "reason": reason},
    )


@router.post(
    "/auth/login",
    tags=["auth"],
    response_model=TokenResponse,
    summary="Log in with username and password",
    description=(
        "Failed logins are counted per account **and client address**: after "
        "`LOGIN_MAX_FAILURES` in `LOGIN_WINDOW_MINUTES` that client gets 429 for that account "
        "until the window ends; other clients are not affected, so nobody can lock a colleague "
        "out from another desk. After `LOGIN_ACCOUNT_MAX_FAILURES` from all clients together, "
        "the account lets in only the clients it logged in from in the last 30 days (with the "
        "right password). Every login, refused or not, is audited with the client address."
    ),
    responses=problem_responses(401, 429),
)
@takes_write_lock_late
async def login(
    body: LoginRequest,
    request: Request,
    repo: AuthRepoDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenResponse:
    now = clock.now()
    username = body.username.strip().lower()
    client = client_address(request)
    window = timedelta(minutes=settings.login_window_minutes)
    held = write_lock(request)
    retry = {"Retry-After": str(ratelimit.retry_after(now, window))}
    # Counted first, in a short transaction of its own, before this request touches the
    # database: attempts sent in parallel are all counted (none slips past the limit), and a
    # burst holds one connection each, never two. On SQLite the write lock is held for this
    # count only, never while the password is hashed. An attempt this client's own limit
    # refuses is not counted against the account as a whole: one address cannot push the
    # account over its account-wide limit.
    async with held.briefly(), request.app.state.session_factory() as counter:
        from_client = await ratelimit.hit(counter, client_bucket(username, client), window, now)
        if from_client > settings.login_max_failures:
            from_all = await ratelimit.hits(counter, login_bucket(username), window, now)
        else:
            from_all = await ratelimit.hit(counter, login_bucket(username), window, now)
        await counter.commit()
    # A refusal names the account only when it is one: whatever else was typed as a user
    # name (a password in the wrong box, somebody's name) is not kept.
    account = await service.account_named(repo, username)
    recorded = account.username if account is not None else "(unknown)"
    if from_client > settings.login_max_failures:
        await _refuse_login(
            request, clock, username=recorded, client=client, reason="too many failures"
        )
        raise TooManyRequests(
            "Too many failed logins for this account from this device. Try again later, or "
            "ask an admin to reset the password.",
            headers=retry,
        )
    # Guessed at from many places: only a client it logged in from lately may try, and the
    # answer is given before the password is looked at, so that it is the same whether the
    # guess was right or wrong (and for an account that does not exist).
    if from_all > settings.login_account_max_failures and not (
        account is not None and await _known_client(repo, account.id, client, now)
    ):
        await _refuse_login(
            request, clock, username=recorded, client=client, reason="account under attack"
        )
        raise TooManyRequests(
            "This account has had too many failed logins from many places: for now it "
            "opens only on a device it was used on lately. Ask an admin.",
            headers=retry,
        )
    user = await service.check_password(repo, username=username, password=body.password)
    if user is None:
        await _refuse_login(request, clock, username=recorded, client=client, reason="invalid")
        raise NotAuthenticated(service.INVALID_LOGIN)
    # End the read before the writes: on SQLite a read that turns into a write can be refused.
    user_id, checked_hash = user.id, user.password_hash
    await repo.session.rollback()
    await held.acquire()
    user = await service.get_user(repo, user_id=user_id)
    # Disabled, or given a new password, while this one was being checked: not let in.
    if not user.is_active or user.password_hash != checked_hash:
        await _refuse_login(request, clock, username=recorded, client=client, reason="changed")
        raise NotAuthenticated(service.INVALID_LOGIN)
    secret, token = await service.issue_token(
        repo,
        user=user,
        password=body.password,
        now=now,
        ttl=timedelta(minutes=settings.token_ttl_minutes),
    )
    # A success is not a failure.
    await ratelimit.unhit(repo.session, client_bucket(username, client), window, now)
    await ratelimit.unhit(repo.session, login_bucket(username), window, now)
    principal = Principal(
        kind=PrincipalKind.USER,
        id=user.id,
        name=user.username,
        role=user.role.value,
        token_id=token.id,
    )
    AuditTrail(session=repo.session, request=request, principal=principal, clock=clock).record(
        "auth.login", "user", user.id, detail={"client": client}
    )
    return TokenResponse(
        access_token=secret, expires_at=token.expires_at, user=UserPublic.model_validate(user)
    )


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the token this request carries",
)
async def logout(principal: CurrentPrincipal, repo: AuthRepoDep, clock: ClockDep) -> Response:
    await service.logout(repo, principal=principal, now=clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/me", tags=["auth"], response_model=Me, summary="Who am I")
async def me(principal: CurrentPrincipal) -> Me:
    return Me(
        kind=principal.kind.value,
        id=principal.id,
        name=principal.name,
        role=Role(principal.role),
        butler_id=principal.butler_id,
        station_code=principal.station_code,
        display_name=principal.display_name,
    )


@router.post(
    "/users",
    tags=["users"],
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    summary="Create a staff account",
    dependencies=[Idempotent],
    responses=problem_responses(403, 409),
)
async def create_user(
    body: UserCreate,
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
) -> UserPublic:
    user = await service.create_user(
        repo,
        username=body.username,
        display_name=body.display_name,
        role=Role(body.role),
        password=body.password,
        now=clock.now(),
        station_code=body.station_code,
    )
    audit.record("user.create", "user", user.id, detail={"role": user.role.value})
    return UserPublic.model_validate(user)


@router.get(
    "/users",
    tags=["users"],
    response_model=UserPage,
    summary="List staff accounts",
    responses=problem_responses(403),
)
async def list_users(_admin: AdminOnly, repo: AuthRepoDep, page: PageDep) -> UserPage:
    users = await repo.list_users(after=page.after, limit=page.limit + 1)
    users, info = paginate(users, page, key=lambda r: r.id)
    return UserPage(
        items=[UserPublic.model_validate(u) for u in users],
        page=info,
    )


@router.get(
    "/users/{user_id}",
    tags=["users"],
    response_model=UserPublic,
    summary="Read a staff account",
    responses=problem_responses(403, 404),
)
async def get_user(
    user_id: uuid.UUID, _admin: AdminOnly, repo: AuthRepoDep, response: Response
) -> UserPublic:
    user = await service.get_user(repo, user_id=user_id)
    response.headers["ETag"] = etag_for(user.version)
    return UserPublic.model_validate(user)


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    response_model=UserPublic,
    summary="Rename, disable or re-enable an account, set its password or a station account's "
    "station (If-Match required)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserPublic:
    user = await service.get_user(repo, user_id=user_id, for_update=True)
    check_if_match(if_match, version=user.version)
    user = await service.update_user(
        repo,
        user=user,
        display_name=body.display_name,
        is_active=body.is_active,
        password=body.password,
        now=clock.now(),
        station_code=body.station_code,
        set_station="station_code" in body.model_fields_set,
    )
    if body.password is not None or body.is_active:  # a reset unlocks her at once
        await ratelimit.clear_prefix(repo.session, login_bucket(user.username))
    audit.record("user.update", "user", user.id, detail={"fields": sorted(body.model_fields_set)})
    response.headers["ETag"] = etag_for(user.version)
    return UserPublic.model_validate(user)


@router.post(
    "/users/{user_id}/revoke-tokens",
    tags=["users"],
    response_model=RevokedTokens,
    summary="Revoke every token of an account (lost phone, suspected leak)",
    responses=problem_responses(403, 404),
)
async def revoke_tokens(
    user_id: uuid.UUID,
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
) -> RevokedTokens:
    count = await service.revoke_user_tokens(
        repo, user_id=user_id, now=clock.now(), reason="revoked by admin"
    )
    audit.record("user.revoke_tokens", "user", user_id, detail={"revoked": count})
    return RevokedTokens(revoked=count)


@router.post(
    "/api-clients",
    tags=["api-clients"],
    status_code=status.HTTP_201_CREATED,
    response_model=ApiClientCreated,
    summary="Register an integration client; its API key and signing secret are shown once",
    description=(
        "Idempotency-Key is not honoured here on purpose: replaying would mean keeping the "
        "secrets. A retry is safe anyway, because client names are unique (409)."
    ),
    responses=problem_responses(403, 409),
)
async def create_api_client(
    body: ApiClientCreate,
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    box: SecretBoxDep,
    response: Response,
) -> ApiClientCreated:
    client, key, secret = await service.create_api_client(
        repo, name=body.name, role=Role(body.role), now=clock.now(), box=box
    )
    audit.record("api_client.create", "api_client", client.id)
    response.headers["Cache-Control"] = "no-store"  # it carries the secrets
    return ApiClientCreated(
        **ApiClientPublic.model_validate(client).model_dump(), api_key=key, signing_secret=secret
    )


@router.get(
    "/api-clients",
    tags=["api-clients"],
    response_model=ApiClientList,
    summary="List integration clients",
    responses=problem_responses(403),
)
async def list_api_clients(_admin: AdminOnly, repo: AuthRepoDep) -> ApiClientList:
    return ApiClientList(
        items=[ApiClientPublic.model_validate(c) for c in await repo.list_clients()]
    )


@router.post(
    "/api-clients/{client_id}/rotate-signing-secret",
    tags=["api-clients"],
    response_model=SigningSecretRotated,
    summary="Give an integration client a new webhook signing secret, shown once",
    description=(
        "The secrets accepted until now stay accepted for keep_previous_hours (default 24), so "
        "that the sender can switch over without a refused delivery. After a leak send 0: the "
        "old secrets are refused at once. Idempotency-Key is not honoured (replaying would "
        "mean keeping the secret); a retry is safe anyway, because it keeps the secret the "
        "lost answer showed valid as well. At most four secrets are accepted at once: a fifth "
        "rotation within the window is refused (409) rather than drop one still in use."
    ),
    responses=problem_responses(403, 404, 409),
)
async def rotate_signing_secret(
    client_id: uuid.UUID,
    body: Annotated[SigningSecretRotate, Body(default_factory=SigningSecretRotate)],
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
    box: SecretBoxDep,
    response: Response,
) -> SigningSecretRotated:
    client, secret = await service.rotate_signing_secret(
        repo,
        client_id=client_id,
        now=clock.now(),
        keep_previous=timedelta(hours=body.keep_previous_hours),
        box=box,
    )
    audit.record(
        "api_client.rotate_signing_secret",
        "api_client",
        client.id,
        detail={
            "keep_previous_hours": body.keep_previous_hours,
            "secrets_accepted": len(client.signing_secrets),
        },
    )
    response.headers["Cache-Control"] = "no-store"  # it carries the secret
    return SigningSecretRotated(
        **ApiClientPublic.model_validate(client).model_dump(), signing_secret=secret
    )


@router.post(
    "/api-clients/{client_id}/deactivate",
    tags=["api-clients"],
    response_model=ApiClientPublic,
    summary="Stop accepting an integration client's API key",
    responses=problem_responses(403, 404),
)
async def deactivate_api_client(
    client_id: uuid.UUID,
    _admin: AdminOnly,
    repo: AuthRepoDep,
    audit: AuditDep,
    clock: ClockDep,
) -> ApiClientPublic:
    client = await service.deactivate_api_client(repo, client_id=client_id, now=clock.now())
    audit.record("api_client.deactivate", "api_client", client.id)
    return ApiClientPublic.model_validate(client)
