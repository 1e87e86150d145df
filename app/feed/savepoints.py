"""Savepoints and the commit hooks: only the outermost commit is a commit.

SQLAlchemy runs the ``before_commit`` and ``after_commit`` events when a savepoint
(``session.begin_nested()``) is released, and ``after_rollback`` when one is rolled back, not
only for the transaction itself. A release is not durable: the enclosing transaction may still
roll back, and nothing of it is visible to other connections. So the feed's hooks act on a
savepoint's events as follows (app/feed/changes.py, app/feed/notifier.py):

- released: nothing is bumped or woken yet; what was noted inside it is the enclosing
  transaction's now, bumped and woken at its commit. (Bumping then woke the long-polls before
  the change was committed: they read the old version, kept it as current, and the real commit
  had nobody left to wake. A lab result contained its rules in savepoints, so on SQLite the
  butler's phone saw it only when its wait ran out.)
- rolled back: only what was noted inside it is dropped; what the enclosing transaction noted
  before stays (dropping it all lost the bump of a change that did commit).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, SessionTransaction


def savepoint(session: Session) -> SessionTransaction | None:
    """The savepoint whose event this is, or None when it is the transaction's own.

    In a rollback of the whole transaction made while savepoints are open, SQLAlchemy runs
    ``after_rollback`` once per level, innermost first, with the innermost still current; the
    transaction itself is no longer active only at its own (the last) one."""
    nested = session.get_nested_transaction()
    root = session.get_transaction()
    if nested is None or root is None or not root.is_active:
        return None
    return nested
