"""One transaction per request, committed before the response leaves.

Every router is built with ``TransactionalRoute``: the handler runs inside a session that the
dependencies and services share; on a 2xx/3xx answer it commits (with the stored Idempotency-Key
answer, if any) before the response is sent, on anything else it rolls back. Audit records that
must survive a refusal (``request.state.audit_on_failure``) are written after the rollback; a
replayed answer is recorded by ``app.state.replay_audit`` (the audit package's, set by
``create_app``: the core imports no domain package). A GET naming a query parameter the route
does not declare is refused first, with a 400 (``app.core.strict_query``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core.errors import problem_responses
from app.core.idempotency import Claim, IdempotentReplay, complete_claim, release_claim
from app.core.strict_query import refuse_unknown_query

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            state = request.app.state
            lock = state.write_lock if request.method not in SAFE_METHODS else None
            async with contextlib.AsyncExitStack() as stack:
                if lock is not None:
                    await stack.enter_async_context(lock)
                session: AsyncSession = state.session_factory()
                stack.push_async_callback(session.close)
                request.state.db = session
                try:
                    response = await original(request)
                except IdempotentReplay as replay:
                    await session.rollback()
                    session.add(state.replay_audit(request, replay.response))
                    await session.commit()
                    return replay.response
                except BaseException:
                    await session.rollback()
                    await _after_failure(request, session)
                    raise
                if response.status_code >= 400:
                    await session.rollback()
                    await _after_failure(request, session)
                    return response
                try:
                    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                    if claim is not None:
                        await complete_claim(session, claim, response)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    await _after_failure(request, session)
                    raise
                return response

        # An unknown query parameter is refused before a session is opened (strict_query).
        return refuse_unknown_query(self, handler)


async def _after_failure(request: Request, session: AsyncSession) -> None:
    claim: Claim | None = getattr(request.state, "idempotency_claim", None)
    pending: list[Any] = getattr(request.state, "audit_on_failure", [])
    if claim is None and not pending:
        return
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
    """A router whose routes run in one transaction each. Every route documents 400: a body
    that cannot be decoded at all (not UTF-8, nested too deep) is refused before validation."""
    responses = {**problem_responses(400), **(kwargs.pop("responses", None) or {})}
    return APIRouter(route_class=TransactionalRoute, responses=responses, **kwargs)
