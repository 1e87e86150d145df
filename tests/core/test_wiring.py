"""The side effects of a commit are wired in one place (app/wiring.py), not at import time."""

from __future__ import annotations

import importlib
import pkgutil
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import app
from app import wiring
from app.core.database import create_session_factory
from app.core.hooks import CommitHook, CommitHooks
from app.core.session_state import Services, session_state

EVENTS = ("before_commit", "after_commit", "after_rollback")


def test_no_module_registers_session_listeners_when_imported() -> None:
    for module in pkgutil.walk_packages(app.__path__, "app."):
        if ".migrations." not in module.name + ".":
            importlib.import_module(module.name)
    plain = Session()
    for name in EVENTS:
        assert list(getattr(plain.dispatch, name)) == [], name


def test_the_wired_hooks_are_the_documented_ones_in_order() -> None:
    names = [hook.name for hook in wiring.COMMIT_HOOKS.hooks]
    assert names == ["feed versions", "queue changes", "wake-ups", "revoked tokens"]
    documented = wiring.__doc__ or ""
    assert [documented.index(name) for name in names] == sorted(
        documented.index(name) for name in names
    )


async def test_hooks_run_in_order_on_commit_and_rollback() -> None:
    seen: list[str] = []

    def note(what: str):  # type: ignore[no-untyped-def]
        return lambda session: seen.append(what)

    hooks = CommitHooks(
        (
            CommitHook("a", before_commit=note("a.before"), after_commit=note("a.after")),
            CommitHook("b", before_commit=note("b.before"), after_rollback=note("b.rollback")),
        )
    )
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        factory = create_session_factory(engine, hooks=hooks, services=Services())
        async with factory() as session:
            await session.execute(text("select 1"))
            await session.commit()
            assert seen == ["a.before", "b.before", "a.after"]
            seen.clear()
            await session.execute(text("select 1"))
            await session.rollback()
            assert seen == ["b.rollback"]
            assert set(session.info) <= {"services", "state"}
    finally:
        await engine.dispose()


async def test_each_session_has_its_own_state_and_shares_the_services() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        factory = create_session_factory(engine, hooks=CommitHooks(), services=Services())
        async with factory() as one, factory() as two:
            session_state(one).revoked_users.add(uuid.uuid4())
            assert session_state(two).revoked_users == set()
            assert session_state(one).services is session_state(two).services
    finally:
        await engine.dispose()
