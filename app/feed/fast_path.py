"""The idle poll, answered before the framework: GET /v1/me/assignments with a current ETag.

A butler's phone asks every few seconds; almost always nothing changed. When the token is in
the verification cache and the butler's version is known (both are cleared the moment they
change), the answer is a 304 from here, with no dependency solving and no database read.
Anything else (a cold cache, ?wait=, a changed list) goes on to the full route.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.cache import TokenCache
from app.core.clock import Clock
from app.core.security import token_digest
from app.core.settings import Settings
from app.feed.notifier import Notifier

PATH = "/v1/me/assignments"


def etag_for(version: int, day: date) -> str:
    """The assignments' ETag. The day is in it: today's visits and covers turn at midnight."""
    return f'"{version}.{day.isoformat()}"'


class IdlePollFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if any(v not in ("", "0") for v in query.get("wait", [])):  # a long-poll: the route's
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        etag = headers.get(b"if-none-match", b"").decode("latin-1").strip()
        auth = headers.get(b"authorization", b"").decode("latin-1")
        state = scope["app"].state
        if etag and auth[:7].lower() == "bearer ":
            cache: TokenCache = state.token_cache
            clock: Clock = state.clock
            settings: Settings = state.settings
            notifier: Notifier = state.notifier
            now = clock.now()
            principal = cache.get(token_digest(auth[7:].strip()), now)
            if principal is not None and principal.role == "butler" and principal.butler_id:
                version = notifier.known_version(principal.butler_id)
                today = now.astimezone(settings.tz).date()
                if version is not None and etag == etag_for(version, today):
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 304,
                            "headers": [(b"etag", etag.encode("latin-1"))],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)
