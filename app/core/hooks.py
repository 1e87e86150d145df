"""What a commit does besides writing the rows: hooks, run in the order they are listed.

Each session factory gets its own ``Session`` subclass with one listener per event; the
listener runs the hooks it was given. Which hooks there are is decided in one place,
``app/wiring.py``; no module registers listeners of its own.

Only the transaction's own commit is a commit. SQLAlchemy runs ``before_commit`` and
``after_commit`` when a savepoint (``session.begin_nested()``) is released too, and
``after_rollback`` when one is rolled back. A release is not durable (the enclosing transaction
may still roll back) and nothing of it is visible to other connections, so the listeners here
tell a savepoint's events from the transaction's (``savepoint``) and the hooks never see a
savepoint's:

- released: no hook runs; what was noted inside it is the enclosing transaction's now, made
  and told at its commit. (Acting at the release woke long-polls before anything committed:
  they read the old version and kept it, and the real commit had nobody left to wake; the
  token cache forgot a revoked user before the revocation committed, and a verification made
  meanwhile was cached again and forgotten by nobody.)
- rolled back: no hook runs; the feed bumps noted inside it are dropped (a bump writes a feed
  event her butler reads), every other note is kept: one queue stamp, wake-up or forgotten
  token too many is harmless, and dropping a transaction's notes at its savepoint's rollback
  lost the stamps and wake-ups of queue moves that did commit.

A savepoint is closed before its transaction commits (every one here is an
``async with session.begin_nested()``): ``SessionTransaction.commit()`` of the transaction
itself with a savepoint still open would look like that savepoint's release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.core.session_state import session_state

Hook = Callable[[Session], None]


@dataclass(frozen=True)
class CommitHook:
    """One effect of a commit: ``before_commit`` runs inside the transaction (it may write),
    ``after_commit`` once it is durable (tell this process), ``after_rollback`` drops what the
    transaction had noted. None of them runs at a savepoint's release or rollback."""

    name: str
    before_commit: Hook | None = None
    after_commit: Hook | None = None
    after_rollback: Hook | None = None


def savepoint(session: Session) -> SessionTransaction | None:
    """The savepoint whose commit or rollback event this is, or None when it is the
    transaction's own.

    In a rollback of the whole transaction made while savepoints are open, SQLAlchemy runs
    ``after_rollback`` once per level, innermost first; the transaction itself is no longer
    active only at its own (the last) one."""
    nested = session.get_nested_transaction()
    root = session.get_transaction()
    if nested is None or root is None or not root.is_active:
        return None
    return nested


# Savepoint -> how many feed bumps its session had noted when it began: what its rollback
# keeps. Gone with the savepoint.
_BUMPS_BEFORE: WeakKeyDictionary[SessionTransaction, int] = WeakKeyDictionary()


@dataclass(frozen=True)
class CommitHooks:
    hooks: Sequence[CommitHook] = ()

    @cached_property
    def session_class(self) -> type[Session]:
        """A ``Session`` subclass whose sessions run these hooks (made once per hook list, however
        many factories use it: the API's, each CLI command's, every test app's)."""
        cls: type[Session] = type("HookedSession", (Session,), {})
        event.listen(cls, "after_transaction_create", _savepoint_begun)
        event.listen(cls, "before_commit", self._before_commit)
        event.listen(cls, "after_commit", self._after_commit)
        event.listen(cls, "after_rollback", self._after_rollback)
        return cls

    def _before_commit(self, session: Session) -> None:
        if savepoint(session) is not None:
            return
        for hook in self.hooks:
            if hook.before_commit is not None:
                hook.before_commit(session)

    def _after_commit(self, session: Session) -> None:
        released = savepoint(session)
        if released is not None:
            _BUMPS_BEFORE.pop(released, None)  # its bumps are the enclosing transaction's now
            return
        for hook in self.hooks:
            if hook.after_commit is not None:
                hook.after_commit(session)

    def _after_rollback(self, session: Session) -> None:
        undone = savepoint(session)
        if undone is not None:
            mark = _BUMPS_BEFORE.pop(undone, None)
            if mark is not None:
                del session_state(session).feed_bumps[mark:]
            return
        for hook in self.hooks:
            if hook.after_rollback is not None:
                hook.after_rollback(session)


def _savepoint_begun(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        _BUMPS_BEFORE[transaction] = len(session_state(session).feed_bumps)
