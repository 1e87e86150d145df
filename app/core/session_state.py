"""The one typed holder of what a transaction carries besides its rows.

SQLAlchemy gives every session an ``info`` dict. This project keeps exactly two things there,
both typed: the process-wide ``Services`` the session factory was built with (the in-process
notifier, the token cache), and this session's ``SessionState``, which holds what the commit
hooks (``app/wiring.py``) act on. Nothing else reads or writes ``session.info``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


class Publisher(Protocol):
    """Wakes whoever waits on these ids in this process (the feed's notifier)."""

    def publish(self, butler_ids: Iterable[uuid.UUID], /) -> None: ...


class UserForgetter(Protocol):
    """Drops this process's cached verifications of a user's tokens (the token cache)."""

    def forget_user(self, user_id: uuid.UUID, /) -> None: ...


@dataclass(frozen=True)
class Services:
    """Per-process objects a commit tells; set once on the session factory."""

    notifier: Publisher | None = None
    token_cache: UserForgetter | None = None


class FeedBump(NamedTuple):
    """A butler's assignment list changed: her feed version is bumped at commit."""

    butler_id: uuid.UUID
    kind: str
    ref_type: str | None
    ref_id: uuid.UUID | None
    at: datetime


@dataclass
class SessionState:
    services: Services
    # Made at commit (before_commit hooks), dropped on rollback.
    feed_bumps: list[FeedBump] = field(default_factory=list)
    queue_moves: dict[uuid.UUID, datetime] = field(default_factory=dict)  # station id -> when
    # Told after commit (after_commit hooks), dropped on rollback.
    wake: set[uuid.UUID] = field(default_factory=set)  # butlers and worklist audiences
    revoked_users: set[uuid.UUID] = field(default_factory=set)
    # A memo for the session's life (one request): not an effect, kept across rollbacks.
    ga_days: dict[uuid.UUID, int] = field(default_factory=dict)  # visit id -> GA in days


_SERVICES = "services"
_STATE = "state"


def services_info(services: Services) -> dict[str, Services]:
    """The ``info`` a session factory is built with."""
    return {_SERVICES: services}


def session_state(session: Session | AsyncSession) -> SessionState:
    info = session.info
    state = info.get(_STATE)
    if state is None:
        services = info.get(_SERVICES)
        state = info[_STATE] = SessionState(services=services or Services())
    assert isinstance(state, SessionState)
    return state
