"""Login, logout, token checks and account administration. Services flush; they never commit."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
import weakref
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from app.auth.cache import TokenCache
from app.auth.models import ApiClient, AuthToken, Role, User
from app.auth.repository import AuthRepository
from app.core.errors import Conflict, NotAuthenticated, NotFound, invalid_field
from app.core.ids import uuid7
from app.core.principal import Principal, PrincipalKind
from app.core.secretbox import SecretBox
from app.core.security import (
    hash_password,
    needs_rehash,
    new_token,
    token_digest,
    verify_password,
)

INVALID_LOGIN = "Unknown username or wrong password."
# Password checks running at once in one process: half the cores, at least one.
HASHING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _hashing_gate() -> asyncio.Semaphore:
    """The event loop's semaphore (one per loop: a semaphore is bound to the loop it waits in)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(HASHING_AT_ONCE)
    return gate


async def account_named(repo: AuthRepository, username: str) -> User | None:
    """The account a login names, if there is one (no password is looked at)."""
    return await repo.user_by_username(username.strip().lower())


async def check_password(repo: AuthRepository, *, username: str, password: str) -> User | None:
    """The active account these credentials open (detached from the session), or None. Reads
    only, ends the session's transaction, and hashes off the event loop: the login runs this
    before it takes the embedded database's write lock."""
    user = await repo.user_by_username(username.strip().lower())
    # The read is over: give its connection back before queueing for the hashing gate, or a
    # burst of guesses waiting there would hold the whole pool. The account stays readable.
    if user is not None:
        repo.session.expunge(user)
    await repo.session.rollback()
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop. An unknown name is
    # hashed too (against a dummy), so that its answer takes as long as a wrong password's.
    # At most HASHING_AT_ONCE hash at a time: a flood of guesses queues behind itself instead
    # of taking every core from the clinic's other requests.
    async with _hashing_gate():
        verified = await asyncio.to_thread(
            verify_password, user.password_hash if user else None, password
        )
    if not verified or user is None or not user.is_active:
        return None
    return user


async def issue_token(
    repo: AuthRepository, *, user: User, password: str, now: datetime, ttl: timedelta
) -> tuple[str, AuthToken]:
    """A new token for an account whose password was just checked (``check_password``)."""
    if needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    secret = new_token("pbt")
    token = AuthToken(
        user_id=user.id,
        token_hash=token_digest(secret),
        created_at=now,
        expires_at=now + ttl,
    )
    repo.session.add(token)
    await repo.session.flush()
    return secret, token


async def login(
    repo: AuthRepository,
    *,
    username: str,
    password: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[str, AuthToken, User]:
    """Check the password and issue a token in one go (the CLI and tests; the HTTP login
    splits the two around the write lock)."""
    checked = await check_password(repo, username=username, password=password)
    if checked is None:
        raise NotAuthenticated(INVALID_LOGIN)
    user = await get_user(repo, user_id=checked.id)
    secret, token = await issue_token(repo, user=user, password=password, now=now, ttl=ttl)
    return secret, token, user


async def authenticate_bearer(
    repo: AuthRepository, *, secret: str, now: datetime, cache: TokenCache | None = None
) -> Principal:
    digest = token_digest(secret)
    if cache is not None and (cached := cache.get(digest, now)) is not None:
        return cached
    epoch = cache.epoch if cache is not None else 0
    row = await repo.token_principal_row(digest)
    if row is None:
        raise NotAuthenticated("The token is not valid.")
    token, user, butler_id = row
    if token.revoked_at is not None:
        raise NotAuthenticated("The token was revoked; log in again.")
    if token.expires_at <= now:
        raise NotAuthenticated("The token has expired; log in again.")
    if not user.is_active:
        raise NotAuthenticated("The account is disabled.")
    principal = Principal(
        kind=PrincipalKind.USER,
        id=user.id,
        name=user.username,
        role=user.role.value,
        token_id=token.id,
        butler_id=butler_id,
        token_expires_at=token.expires_at,
        station_code=user.station_code,
        display_name=user.display_name,
    )
    if cache is not None:
        cache.put(digest, principal, token.expires_at, epoch)
    return principal


async def authenticate_api_key(repo: AuthRepository, *, key: str) -> Principal:
    client = await repo.client_by_key_hash(token_digest(key))
    if client is None or not client.is_active:
        raise NotAuthenticated("The API key is not valid.")
    return Principal(
        kind=PrincipalKind.CLIENT, id=client.id, name=client.name, role=client.role.value
    )


async def logout(repo: AuthRepository, *, principal: Principal, now: datetime) -> None:
    if principal.kind is PrincipalKind.USER and principal.token_id is not None:
        await repo.revoke_tokens(
            user_id=principal.id, at=now, reason="logout", only=principal.token_id
        )


async def create_user(
    repo: AuthRepository,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    now: datetime,
    station_code: str | None = None,
) -> User:
    station_code = await _station_binding(repo, role, station_code, is_active=True)
    if await repo.user_by_username(username) is not None:
        raise Conflict(f"The username {username!r} is taken.")
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        station_code=station_code,
        password_hash=await asyncio.to_thread(hash_password, password),
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    repo.session.add(user)
    try:
        await repo.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"The username {username!r} is taken.") from exc
    return user


async def get_user(repo: AuthRepository, *, user_id: uuid.UUID, for_update: bool = False) -> User:
    user = await repo.user_by_id(user_id, for_update=for_update)
    if user is None:
        raise NotFound("No user with that id.")
    return user


async def update_user(
    repo: AuthRepository,
    *,
    user: User,
    display_name: str | None,
    is_active: bool | None,
    password: str | None,
    now: datetime,
    station_code: str | None = None,
    set_station: bool = False,
) -> User:
    """``set_station``: ``station_code`` was sent (None then unbinds, refused for a station)."""
    new_station = user.station_code
    if set_station or is_active:
        new_station = await _station_binding(
            repo,
            user.role,
            station_code if set_station else user.station_code,
            is_active=is_active if is_active is not None else user.is_active,
        )
    if new_station != user.station_code:
        user.station_code = new_station
        await repo.forget_cached(user.id)  # its tokens act at the new station at once
    if display_name is not None:
        user.display_name = display_name
    if password is not None:
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await repo.revoke_tokens(user_id=user.id, at=now, reason="password changed")
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if not is_active:
            await repo.revoke_tokens(user_id=user.id, at=now, reason="account disabled")
    user.updated_at = now
    user.version += 1
    await repo.session.flush()
    return user


async def _station_binding(
    repo: AuthRepository, role: Role, station_code: str | None, *, is_active: bool
) -> str | None:
    """The station an account is bound to: a station account's must be a known station (only
    a disabled one may have none, as migration 0026 leaves some); other roles have none."""
    if role is not Role.STATION:
        if station_code is not None:
            raise invalid_field("station_code", "only a station account is bound to a station")
        return None
    if station_code is None:
        if is_active:
            raise invalid_field(
                "station_code", "a station account must be bound to its station (e.g. US)"
            )
        return None
    known = await repo.station_code(station_code.strip().upper())
    if known is None:
        raise invalid_field("station_code", f"no station {station_code!r}")
    return known


async def revoke_user_tokens(
    repo: AuthRepository, *, user_id: uuid.UUID, now: datetime, reason: str
) -> int:
    await get_user(repo, user_id=user_id)
    return await repo.revoke_tokens(user_id=user_id, at=now, reason=reason)


async def create_api_client(
    repo: AuthRepository,
    *,
    name: str,
    role: Role,
    now: datetime,
    box: SecretBox,
    api_key: str | None = None,
    signing_secret: str | None = None,
) -> tuple[ApiClient, str, str]:
    if await repo.client_by_name(name) is not None:
        raise Conflict(f"An API client named {name!r} exists.")
    key = api_key or new_token("pbk")
    secret = signing_secret or secrets.token_urlsafe(32)
    client_id = uuid7()  # the sealed secret is bound to it
    client = ApiClient(
        id=client_id,
        name=name,
        role=role,
        key_hash=token_digest(key),
        key_prefix=key[:12],
        signing_secrets=[box.seal(secret, owner=client_id)],
        is_active=True,
        created_at=now,
    )
    repo.session.add(client)
    await repo.session.flush()
    return client, key, secret


MAX_SIGNING_SECRETS = 4


async def rotate_signing_secret(
    repo: AuthRepository,
    *,
    client_id: uuid.UUID,
    now: datetime,
    keep_previous: timedelta,
    box: SecretBox,
) -> tuple[ApiClient, str]:
    """A new newest secret. Every secret accepted until now stays accepted for
    ``keep_previous``, so that the sender can switch over (and a retried rotation, whose
    answer was lost, breaks nothing: the secret it showed is kept too). With four accepted
    already it is refused rather than drop one the lab may still sign with."""
    client = await repo.client_by_id(client_id, for_update=True)
    if client is None:
        raise NotFound("No API client with that id.")
    if not client.is_active:
        raise Conflict("That API client is deactivated; register a new one.")
    still = client.live_signing_secrets(now) if keep_previous > timedelta(0) else []
    if len(still) >= MAX_SIGNING_SECRETS:
        # Dropping the oldest could drop the one the lab still signs with.
        raise Conflict(
            f"{len(still)} signing secrets are still accepted (the most kept at once); wait "
            "until the older ones retire, or rotate with keep_previous_hours 0 after a leak.",
            extra={"retire_at": client.signing_secrets_retire_at.isoformat()}
            if client.signing_secrets_retire_at
            else None,
        )
    secret = secrets.token_urlsafe(32)
    client.signing_secrets = [box.seal(secret, owner=client.id), *still]
    client.signing_secrets_retire_at = now + keep_previous if still else None
    await repo.session.flush()
    return client, secret


async def deactivate_api_client(
    repo: AuthRepository, *, client_id: uuid.UUID, now: datetime
) -> ApiClient:
    client = await repo.client_by_id(client_id)
    if client is None:
        raise NotFound("No API client with that id.")
    client.is_active = False
    client.revoked_at = now
    await repo.session.flush()
    return client
