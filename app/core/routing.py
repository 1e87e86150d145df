"""One transaction per request, committed before the response leaves.

Every router is built with ``TransactionalRoute``: the handler runs inside a session that the
dependencies and services share; on a 2xx/3xx answer it commits (with the stored Idempotency-Key
answer, if any) before the response is sent, on anything else it rolls back. Audit records that
must survive a refusal (``request.state.audit_on_failure``) are written after the rollback; a
replayed answer is recorded by ``app.state.replay_audit`` (the audit package's, set by
``create_app``: the core imports no domain package). A GET naming a query parameter the route
does not declare is refused first, with a 400 (``app.core.strict_query``).

On the embedded database (SQLite: one writer at a time) a writing request holds the
process's write lock for its whole transaction. It takes it only once the body has been read
whole (``RequestGuardMiddleware`` gives body reads a deadline) and the caller has been
authenticated (``app.state.pre_authenticate``, the auth package's): a client that sends half a
body, or a stream of bogus tokens, never holds up another's write. A route whose handler does
slow work before it writes (the login's password hash) is marked with ``takes_write_lock_late``
and calls ``write_lock(request).acquire()`` itself, just before its first write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core.errors import problem_responses
from app.core.idempotency import Claim, IdempotentReplay, complete_claim, release_claim
from app.core.strict_query import refuse_unknown_query

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestWriteLock:
    """The write lock as one request holds it: taken at most once, given back at its end."""

    def __init__(self, lock: asyncio.Lock | None) -> None:
        self._lock = lock
        self.held = False

    async def acquire(self) -> None:
        """Hold the lock until the request ends (no-op on PostgreSQL or when held already)."""
        if self._lock is not None and not self.held:
            await self._lock.acquire()
            self.held = True

    def release(self) -> None:
        if self._lock is not None and self.held:
            self._lock.release()
            self.held = False

    @contextlib.asynccontextmanager
    async def briefly(self) -> AsyncIterator[None]:
        """Hold it for one short write, unless the request holds it already."""
        if self._lock is None or self.held:
            yield
            return
        async with self._lock:
            yield


def write_lock(request: Request) -> RequestWriteLock:
    """This request's hold on the embedded database's write lock."""
    held: RequestWriteLock | None = getattr(request.state, "write_lock", None)
    if held is None:
        held = RequestWriteLock(None)
        request.state.write_lock = held
    return held


def takes_write_lock_late(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a writing endpoint that takes the write lock itself, after its slow part."""
    endpoint.takes_write_lock_late = True  # type: ignore[attr-defined]
    return endpoint


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        late = bool(getattr(self.endpoint, "takes_write_lock_late", False))
        needs_caller = _identifies_caller(self.dependant)

        async def handler(request: Request) -> Response:
            state = request.app.state
            lock = state.write_lock if request.method not in SAFE_METHODS else None
            held = RequestWriteLock(lock)
            request.state.write_lock = held
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(held.release)
                if lock is not None:
                    # Body first (it has a deadline), then who is calling: neither under the lock.
                    await request.body()
                    pre_authenticate = getattr(state, "pre_authenticate", None)
                    # False: no credentials, or refused ones; a route that needs a caller
                    # will then say 401 without writing, and takes no lock to say so.
                    refused = (
                        needs_caller
                        and pre_authenticate is not None
                        and not await pre_authenticate(request)
                    )
                    if not late and not refused:
                        await held.acquire()
                session: AsyncSession = state.session_factory()
                stack.push_async_callback(session.close)
                request.state.db = session
                try:
                    response = await original(request)
                except IdempotentReplay as replay:
                    await session.rollback()
                    async with held.briefly():
                        session.add(state.replay_audit(request, replay.response))
                        await session.commit()
                    return replay.response
                except BaseException:
                    await session.rollback()
                    await _after_failure(request, session, held)
                    raise
                if response.status_code >= 400:
                    await session.rollback()
                    await _after_failure(request, session, held)
                    return response
                await held.acquire()
                try:
                    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                    if claim is not None:
                        await complete_claim(session, claim, response)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    await _after_failure(request, session, held)
                    raise
                return response

        # An unknown query parameter is refused before a session is opened (strict_query).
        return refuse_unknown_query(self, handler)


def _identifies_caller(dependant: Dependant) -> bool:
    """Does the route depend (at any depth) on finding out who calls (``identifies_caller``)?"""
    return any(
        getattr(sub.call, "identifies_caller", False) or _identifies_caller(sub)
        for sub in dependant.dependencies
    )


async def _after_failure(request: Request, session: AsyncSession, held: RequestWriteLock) -> None:
    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
    pending: list[Any] = getattr(request.state, "audit_on_failure", [])
    if claim is None and not pending:
        return  # nothing to write: a refusal that waits for nobody's lock
    async with held.briefly():
        if claim is not None:
            await release_claim(session, claim)
        session.add_all(pending)
        await session.commit()


async def get_session(request: Request) -> AsyncSession:
    session: AsyncSession | None = getattr(request.state, "db", None)
    if session is None:  # pragma: no cover - a router built without TransactionalRoute
        raise RuntimeError("route is not transactional; build its router with make_router()")
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def make_router(**kwargs: Any) -> APIRouter:
    """A router whose routes run in one transaction each. Every route documents 400 (a body
    that cannot be decoded at all: malformed JSON, not UTF-8, nested too deep) and 415 (a
    JSON body sent as another media type), both refused before validation."""
    responses = {**problem_responses(400, 415), **(kwargs.pop("responses", None) or {})}
    return APIRouter(route_class=TransactionalRoute, responses=responses, **kwargs)
