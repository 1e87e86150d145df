"""The HTTP methods every path answers the same way (RFC 9110 section 9), once for the app.

* ``OPTIONS`` on any path the app serves: 204 with ``Allow`` listing the methods that path
  supports. It needs no token: it says nothing the OpenAPI document does not, and the same
  for an id that exists and one that does not (no oracle).
* ``HEAD`` wherever ``GET`` works: the GET is run (same authentication, role, audit row and
  headers, Content-Length included) and its body is not sent. A stream (SSE) ends after its
  headers.
* ``405`` answers list, in ``Allow``, every method of the path, not only those of the first
  route that matched it (Starlette's router stops at the first).
* A GET answered 200 with an ``ETag`` that ``If-None-Match`` matches (weak comparison) is sent
  as a 304, so that every read with an ETag honours it, not only the long-polls.
* CORS is off unless ``cors_allow_origins`` names origins: Starlette's CORSMiddleware with
  ``cors_options``, outermost, so that a preflight needs no token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.etag import none_match

# The order Allow lists them in.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Headers a 304 keeps from the 200 it stands for (RFC 9110 section 15.4.5), and ours.
_KEPT_ON_304 = {
    b"etag",
    b"cache-control",
    b"vary",
    b"expires",
    b"date",
    b"content-location",
    b"x-request-id",
}


def allowed_methods(scope: Scope) -> list[str]:
    """The methods the app's routes accept on this scope's path ([] when none serves it)."""
    routes = scope["app"].router.routes
    found: set[str] = set()
    probe = {**scope, "type": "http"}
    for route in routes:
        if isinstance(route, Mount):  # static files: GET and HEAD
            if route.matches({**probe, "method": "GET"})[0] is not Match.NONE:
                found |= {"GET", "HEAD"}
            continue
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        if method in found:
            continue
        for route in routes:
            if isinstance(route, Mount):
                continue
            if route.matches({**probe, "method": method})[0] is Match.FULL:
                found.add(method)
                break
    if not found:
        return []
    if "GET" in found:
        found.add("HEAD")
    found.add("OPTIONS")
    return [m for m in METHODS if m in found]


def _allow_header(methods: Iterable[str]) -> tuple[bytes, bytes]:
    return (b"allow", ", ".join(methods).encode())


class _HeadDone(Exception):
    """Raised into a streaming GET run for a HEAD once its headers are sent: it stops."""


class HttpMethodsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            allowed = allowed_methods(scope)
            if allowed:
                await _no_content(scope, send, allowed)
                return
            await self.app(scope, receive, send)  # nothing here: the router's 404
            return
        headers = dict(scope["headers"])
        conditional = method in ("GET", "HEAD") and b"if-none-match" in headers
        if method == "HEAD" and "GET" in allowed_methods(scope):
            await self._head(scope, receive, send, conditional=conditional)
            return
        await self.app(scope, receive, _answer(scope, send, conditional=conditional))

    async def _head(self, scope: Scope, receive: Receive, send: Send, *, conditional: bool) -> None:
        finished = asyncio.Event()  # the HEAD's answer is whole: the GET may stop
        inner = _answer(scope, send, conditional=conditional)

        async def finish() -> None:
            await inner({"type": "http.response.body", "body": b"", "more_body": False})
            finished.set()

        async def head_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await inner(message)
                headers = message.get("headers", [])
                if not any(k.lower() == b"content-length" for k, _ in headers):
                    await finish()  # a stream (SSE): its headers are all a HEAD gets
                return
            if message["type"] != "http.response.body":
                await inner(message)
                return
            if finished.is_set():
                if message.get("more_body", False):
                    raise _HeadDone  # a stream nobody reads: stop it
                return
            if not message.get("more_body", False):
                await finish()

        async def head_receive() -> Message:
            """Once the answer is whole, the client of a HEAD is gone as far as the GET knows."""
            if finished.is_set():
                return {"type": "http.disconnect"}
            incoming = asyncio.ensure_future(receive())
            headers_sent = asyncio.ensure_future(finished.wait())
            done, _ = await asyncio.wait(
                {incoming, headers_sent}, return_when=asyncio.FIRST_COMPLETED
            )
            if incoming in done:
                headers_sent.cancel()
                return incoming.result()
            incoming.cancel()
            return {"type": "http.disconnect"}

        try:
            await self.app({**scope, "method": "GET"}, head_receive, head_send)
        except _HeadDone:
            pass
        except BaseExceptionGroup as group:
            rest = group.subgroup(lambda e: not isinstance(e, _HeadDone))
            if rest is not None:
                raise rest from None


def _answer(scope: Scope, send: Send, *, conditional: bool) -> Send:
    """``send`` with every method's Allow on a 405 and a 304 for a matching If-None-Match."""
    if_none_match = (
        dict(scope["headers"]).get(b"if-none-match", b"").decode("latin-1") if conditional else None
    )
    not_modified = False

    async def answer(message: Message) -> None:
        nonlocal not_modified
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
            if status == 405:
                allowed = allowed_methods(scope)
                if allowed:
                    headers = [h for h in headers if h[0].lower() != b"allow"]
                    headers.append(_allow_header(allowed))
            elif status == 200 and if_none_match:
                etag = next((v for k, v in headers if k.lower() == b"etag"), None)
                if etag is not None and none_match(if_none_match, etag.decode("latin-1")):
                    not_modified = True
                    headers = [h for h in headers if h[0].lower() in _KEPT_ON_304]
                    message = {**message, "status": 304}
            message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and not_modified:
            if message.get("more_body", False):
                return  # the 304 has no body: wait for the last part
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return answer


async def _no_content(scope: Scope, send: Send, allowed: list[str]) -> None:
    headers = [_allow_header(allowed), (b"content-length", b"0")]
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        headers.append((b"x-request-id", str(request_id).encode()))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# What a browser at another origin may send and read (the bearer token is a header, not a
# cookie: no credentials mode).
CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
]
CORS_EXPOSED = ["ETag", "Location", "Retry-After", "X-Request-ID", "Allow", "Link"]


def cors_origins(setting: str) -> list[str]:
    """The allow-list of ``cors_allow_origins`` (comma-separated; empty: CORS off)."""
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def cors_options(origins: list[str]) -> dict[str, object]:
    """Starlette's CORSMiddleware options for these origins."""
    return {
        "allow_origins": origins,
        "allow_methods": list(METHODS),
        "allow_headers": CORS_HEADERS,
        "expose_headers": CORS_EXPOSED,
        "allow_credentials": False,
        "max_age": 600,
    }
