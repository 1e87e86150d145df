"""Every query of the auth aggregate."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.cache import REVOKED_CHANNEL
from app.auth.models import ApiClient, AuthToken, User
from app.butlers.models import Butler
from app.core.session_state import session_state
from app.queues.models import Station


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def user_by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        if for_update:
            return await self.session.scalar(
                select(User).where(User.id == user_id).with_for_update()
            )
        return await self.session.get(User, user_id)

    async def list_users(self, *, after: uuid.UUID | None, limit: int) -> list[User]:
        stmt = select(User).order_by(User.id).limit(limit)
        if after is not None:
            stmt = stmt.where(User.id > after)
        return list(await self.session.scalars(stmt))

    async def token_principal_row(
        self, token_hash: str
    ) -> tuple[AuthToken, User, uuid.UUID | None] | None:
        """The token, its user and (for butlers) the butler id, in one round trip."""
        stmt = (
            select(AuthToken, User, Butler.id)
            .join(User, User.id == AuthToken.user_id)
            .outerjoin(Butler, (Butler.user_id == User.id) & Butler.is_active)
            .where(AuthToken.token_hash == token_hash)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        token, user, butler_id = row
        return token, user, butler_id

    async def station_code(self, code: str) -> str | None:
        """The code of that station, if it exists (accounts are bound to it)."""
        return await self.session.scalar(select(Station.code).where(Station.code == code))

    async def client_by_key_hash(self, key_hash: str) -> ApiClient | None:
        return await self.session.scalar(select(ApiClient).where(ApiClient.key_hash == key_hash))

    async def list_clients(self) -> list[ApiClient]:
        return list(await self.session.scalars(select(ApiClient).order_by(ApiClient.name)))

    async def client_by_id(
        self, client_id: uuid.UUID, *, for_update: bool = False
    ) -> ApiClient | None:
        """``for_update``: lock the row, so that two rotations do not lose one's secret."""
        return await self.session.get(ApiClient, client_id, with_for_update=for_update or None)

    async def client_by_name(self, name: str) -> ApiClient | None:
        return await self.session.scalar(select(ApiClient).where(ApiClient.name == name))

    async def revoke_tokens(
        self, *, user_id: uuid.UUID, at: datetime, reason: str, only: uuid.UUID | None = None
    ) -> int:
        stmt = (
            update(AuthToken)
            .where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )
        if only is not None:
            stmt = stmt.where(AuthToken.id == only)
        result = await self.session.execute(stmt)
        await self.forget_cached(user_id)
        return int(getattr(result, "rowcount", 0) or 0)

    async def forget_cached(self, user_id: uuid.UUID) -> None:
        """Cached verifications of this user's tokens end when the transaction commits."""
        session_state(self.session).revoked_users.add(user_id)
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            await self.session.execute(select(func.pg_notify(REVOKED_CHANNEL, str(user_id))))
