"""Where the side effects are wired: what a commit does, and who hears PostgreSQL NOTIFYs.

A service writes its rows and *notes* what else must happen (a butler's feed bump, a queue's
"changed" stamp, a token revocation) in the session's typed state
(``app.core.session_state``). The hooks listed here act on those notes, in this order:

before commit (inside the transaction, may write):
  1. feed versions  - bump each touched butler's feed version, write her feed event
                      (app.feed.changes.bump_versions)
  2. queue changes  - stamp each moved station's ``queue_changed_at``
                      (app.queues.changes.stamp_changed_queues)
after commit (durable; tell this process):
  3. wake-ups       - the in-process notifier wakes the long-polls and streams
                      (app.feed.notifier.wake_after_commit)
  4. revoked tokens - the token cache forgets revoked users (app.auth.cache.forget_revoked)
after rollback: each hook drops what its transaction had noted.
A savepoint's release or rollback runs none of them (app/core/hooks.py): only the transaction's
own commit is a commit.

Every session factory of the service is built here (``session_factory``): the API's, the
CLI's, the demo seed's and the simulator's, so that all of them behave alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth import cache as token_cache
from app.auth.cache import REVOKED_CHANNEL, TokenCache
from app.core.database import create_session_factory
from app.core.hooks import CommitHook, CommitHooks
from app.core.session_state import Services
from app.feed import changes as feed_changes
from app.feed import notifier as feed_notifier
from app.feed.changes import CHANNEL as FEED_CHANNEL
from app.feed.notifier import Notifier
from app.queues import changes as queue_changes

COMMIT_HOOKS = CommitHooks(
    (
        CommitHook(
            "feed versions",
            before_commit=feed_changes.bump_versions,
            after_rollback=feed_changes.discard_bumps,
        ),
        CommitHook(
            "queue changes",
            before_commit=queue_changes.stamp_changed_queues,
            after_rollback=queue_changes.forget_changed_queues,
        ),
        CommitHook(
            "wake-ups",
            after_commit=feed_notifier.wake_after_commit,
            after_rollback=feed_notifier.wake_nobody,
        ),
        CommitHook(
            "revoked tokens",
            after_commit=token_cache.forget_revoked,
            after_rollback=token_cache.keep_cached,
        ),
    )
)


def session_factory(
    engine: AsyncEngine,
    *,
    notifier: Notifier | None = None,
    cache: TokenCache | None = None,
) -> async_sessionmaker[AsyncSession]:
    """The sessions of the service: every commit runs ``COMMIT_HOOKS``."""
    return create_session_factory(
        engine, hooks=COMMIT_HOOKS, services=Services(notifier=notifier, token_cache=cache)
    )


def notify_channels(notifier: Notifier, cache: TokenCache) -> Mapping[str, Callable[[str], None]]:
    """What other server processes announce with NOTIFY, and who in this one hears it."""
    return {FEED_CHANNEL: notifier.on_notify, REVOKED_CHANNEL: cache.on_revoked}


def on_listen_connect(notifier: Notifier, cache: TokenCache) -> Callable[[], None]:
    """On every (re)connection of the listener: forget what a lost NOTIFY could have changed."""

    def reset() -> None:
        notifier.reset()
        cache.clear()

    return reset
