"""What a commit does besides writing the rows: hooks, run in the order they are listed.

Each session factory gets its own ``Session`` subclass with one listener per event; the
listener runs the hooks it was given. Which hooks there are is decided in one place,
``app/wiring.py``; no module registers listeners of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import event
from sqlalchemy.orm import Session

Hook = Callable[[Session], None]


@dataclass(frozen=True)
class CommitHook:
    """One effect of a commit: ``before_commit`` runs inside the transaction (it may write),
    ``after_commit`` once it is durable (tell this process), ``after_rollback`` drops what the
    transaction had noted."""

    name: str
    before_commit: Hook | None = None
    after_commit: Hook | None = None
    after_rollback: Hook | None = None


@dataclass(frozen=True)
class CommitHooks:
    hooks: Sequence[CommitHook] = ()

    @cached_property
    def session_class(self) -> type[Session]:
        """A ``Session`` subclass whose sessions run these hooks (made once per hook list, however
        many factories use it: the API's, each CLI command's, every test app's)."""
        cls: type[Session] = type("HookedSession", (Session,), {})
        event.listen(cls, "before_commit", self._before_commit)
        event.listen(cls, "after_commit", self._after_commit)
        event.listen(cls, "after_rollback", self._after_rollback)
        return cls

    def _before_commit(self, session: Session) -> None:
        for hook in self.hooks:
            if hook.before_commit is not None:
                hook.before_commit(session)

    def _after_commit(self, session: Session) -> None:
        for hook in self.hooks:
            if hook.after_commit is not None:
                hook.after_commit(session)

    def _after_rollback(self, session: Session) -> None:
        for hook in self.hooks:
            if hook.after_rollback is not None:
                hook.after_rollback(session)
