"""Pure ASGI middleware: the security headers every answer carries, whoever wrote it.

Put outermost (added last), so that answers written by other middleware (413, 408, the
feed's 304 fast path, problem answers from the error handlers) get them too.

- ``X-Content-Type-Options: nosniff`` on every answer: a JSON body is never sniffed into HTML.
- ``Cache-Control``: answers under ``/v1`` carry personal data, so no cache (the browser's, a
  proxy's, a shared desk PC's disk) may keep them: ``no-store`` (``private, no-store`` where
  the route said ``private``). A route's own ``no-store`` is kept, and so is one explicitly
  marked ``public`` (none is today). ETag revalidation still works: the console keeps its
  ETags itself and sends ``If-None-Match``. Outside ``/v1`` (the console's files, the docs'
  bundles) a route's own caching is kept; an answer that says nothing gets ``no-store``.
- HTML answers cannot be framed (clickjacking a desk's screen): ``X-Frame-Options: DENY`` and
  ``frame-ancestors 'none'`` in the Content-Security-Policy, added to the one the console
  already sends or alone when there is none.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PERSONAL_PREFIX = "/v1"
NO_STORE = b"no-store"
FRAME_ANCESTORS = b"frame-ancestors 'none'"


def cache_control_for(path: str, current: bytes | None) -> bytes | None:
    """The Cache-Control an answer leaves with; None keeps what it has."""
    if current is None:
        return NO_STORE
    directives = {d.strip().lower() for d in current.split(b",")}
    if NO_STORE in directives:
        return None
    if not (path == PERSONAL_PREFIX or path.startswith(PERSONAL_PREFIX + "/")):
        return None  # the console's files and the docs' bundles keep their caching
    if b"public" in directives:
        return None  # explicitly cacheable by the route that wrote it
    return b"private, no-store" if b"private" in directives else NO_STORE


def secure_headers(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The answer's headers with nosniff, its Cache-Control and, for HTML, frame protection."""
    names = {k.lower(): v for k, v in headers}
    out = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
    cache = cache_control_for(path, names.get(b"cache-control"))
    out.append((b"cache-control", cache if cache is not None else names[b"cache-control"]))
    if b"x-content-type-options" not in names:
        out.append((b"x-content-type-options", b"nosniff"))
    if names.get(b"content-type", b"").lower().startswith(b"text/html"):
        if b"x-frame-options" not in names:
            out.append((b"x-frame-options", b"DENY"))
        csp = names.get(b"content-security-policy")
        if csp is None:
            out.append((b"content-security-policy", FRAME_ANCESTORS))
        elif b"frame-ancestors" not in csp.lower():
            out = [(k, v) for k, v in out if k.lower() != b"content-security-policy"]
            out.append((b"content-security-policy", csp.rstrip(b"; ") + b"; " + FRAME_ANCESTORS))
    return out


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP answer; headers only, the body streams through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secure_headers(path, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_secured)
