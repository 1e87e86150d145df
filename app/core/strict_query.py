"""An unknown query parameter on a GET is a 400 naming it, not a silently wider answer.

``GET /v1/mothers?nmae=王`` would otherwise list every mother: the misspelt filter is dropped
by the framework without a word. Each route's declared query parameters (its own and those of
every dependency it uses, e.g. the page's ``limit``/``cursor`` or a long-poll's ``wait``) are
read once, where the route is built; a request naming any other is refused before any
dependency runs. Routes built with ``app.core.routing.make_router`` check this; a plain router
gets it with ``route_class=StrictQueryRoute``.

The fixed client contracts that partner systems and phones already poll (SPEC section 4: the
butler's assignments and change feed) keep taking any extra parameter, as they did: a
cache-buster (``_=1701600000000``) from an HTTP library must not break a butler's phone. So do
the health and metrics routes, which are not built with ``make_router``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app.core.errors import AppError, FieldError

CHECKED_METHODS = frozenset({"GET", "HEAD"})
LENIENT_PATHS = frozenset({"/v1/me/assignments", "/v1/me/events", "/v1/me/events/stream"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class UnknownQueryParameter(AppError):
    status = 400
    slug = "unknown-query-parameter"
    title = "The request has a query parameter this route does not take"


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route takes, under the names a client sends (aliases)."""
    names: set[str] = set()
    seen: set[int] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        if id(dependant) in seen:
            continue
        seen.add(id(dependant))
        pending.extend(dependant.dependencies)
        for param in dependant.query_params:
            model = param.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
                names.update(f.alias or n for n, f in model.model_fields.items())
            else:
                names.add(getattr(param, "validation_alias", None) or param.alias)
    return frozenset(names)


def refuse_unknown_query(route: APIRoute, handler: Handler) -> Handler:
    """Wrap a route's handler: a GET/HEAD with an undeclared query parameter gets a 400."""
    if not (route.methods or set()) & CHECKED_METHODS or route.path in LENIENT_PATHS:
        return handler
    allowed = declared_query_names(route)

    async def checked(request: Request) -> Response:
        if request.method in CHECKED_METHODS:
            unknown = sorted({name for name in request.query_params if name not in allowed})
            if unknown:
                raise UnknownQueryParameter(
                    f"Unknown query parameter: {', '.join(unknown)}"
                    + (f" (this route takes {', '.join(sorted(allowed))})" if allowed else ""),
                    errors=[
                        FieldError(field=name, location="query", detail="unknown parameter")
                        for name in unknown
                    ],
                    extra={"allowed": sorted(allowed)},
                )
        return await handler(request)

    return checked


class StrictQueryRoute(APIRoute):
    """An APIRoute whose GETs refuse undeclared query parameters (for a plain APIRouter)."""

    def get_route_handler(self) -> Handler:
        return refuse_unknown_query(self, super().get_route_handler())
