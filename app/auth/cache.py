"""A short-lived cache of verified tokens, so that a poll does not cost a database round trip.

Revocation clears it at once in this process (logout, revoke-tokens, disable, password change,
butler record changes) and, on PostgreSQL, in every other process through NOTIFY; the short
lifetime bounds what a lost notification could cost.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.core.principal import Principal
from app.core.session_state import session_state

REVOKED_CHANNEL = "auth_revoked"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    token_expires_at: datetime
    cached_until: float


class TokenCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self.epoch = 0  # bumped by every revocation: a verification older than it is not cached

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.cached_until < time.monotonic() or entry.token_expires_at <= now:
            self._entries.pop(digest, None)
            return None
        return entry.principal

    def put(
        self, digest: str, principal: Principal, token_expires_at: datetime, epoch: int
    ) -> None:
        if self.ttl <= 0 or epoch != self.epoch:  # a revocation happened meanwhile
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded: the next requests refill it
        self._entries[digest] = _Entry(principal, token_expires_at, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def forget_user(self, user_id: uuid.UUID) -> None:
        self.epoch += 1
        for digest in [d for d, e in self._entries.items() if e.principal.id == user_id]:
            self._entries.pop(digest, None)

    def on_revoked(self, payload: str) -> None:
        """A NOTIFY from another process: that user's tokens were revoked there."""
        with contextlib.suppress(ValueError):
            self.forget_user(uuid.UUID(payload))

    def __len__(self) -> int:
        return len(self._entries)


def forget_revoked(session: Session) -> None:
    """Commit hook (after commit): revoked users' cached verifications end in this process.
    Not at a savepoint's release (app/core/hooks.py): forgotten then, a verification made before
    the commit would be cached again, and the commit would have nobody left to forget."""
    state = session_state(session)
    revoked, state.revoked_users = state.revoked_users, set()
    cache = state.services.token_cache
    if cache is not None:
        for user_id in sorted(revoked):
            cache.forget_user(user_id)


def keep_cached(session: Session) -> None:
    """Commit hook (after rollback): a revocation that did not commit revokes nothing. Not at a
    savepoint's rollback: the revocations noted before it stand (app/core/hooks.py)."""
    session_state(session).revoked_users.clear()
