"""The phone's poll, answered before the framework: GET /v1/me/assignments.

A butler's phone asks every few seconds; almost always nothing changed. When the token is in
the verification cache and the butler's version is known (both are cleared the moment they
change), a current ETag is answered 304 from here, with no dependency solving and no database
read. A phone without it (a restart, a lost ETag) gets the answer already built for this
version and day, once the read's audit rows are committed (they go in with other requests'
rows: app.audit.group_commit). Anything else (a cold cache, ?wait=, an answer not yet built)
goes on to the full route, which builds and keeps the answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.group_commit import AuditGroupCommit
from app.audit.service import audit_row
from app.auth.cache import TokenCache
from app.core.clock import Clock
from app.core.security import token_digest
from app.core.settings import Settings
from app.feed.notifier import Notifier

PATH = "/v1/me/assignments"
CACHE_CONTROL = "private, no-cache"


def etag_for(version: int, day: date) -> str:
    """The assignments' ETag. The day is in it: today's visits and covers turn at midnight."""
    return f'"{version}.{day.isoformat()}"'


@dataclass(frozen=True, slots=True)
class RenderedAnswer:
    """An assignments answer as sent, and the mothers it shows (each read is audited)."""

    body: bytes
    mothers: tuple[uuid.UUID, ...]


# What the access log and the metrics name these requests by, as they would the route.
_ROUTE = SimpleNamespace(path=PATH)


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
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() != "bearer ":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        cache: TokenCache = state.token_cache
        clock: Clock = state.clock
        now = clock.now()
        principal = cache.get(token_digest(auth[7:].strip()), now)
        if principal is None or principal.role != "butler" or principal.butler_id is None:
            await self.app(scope, receive, send)
            return
        notifier: Notifier = state.notifier
        version = notifier.known_version(principal.butler_id)
        if version is None:
            await self.app(scope, receive, send)
            return
        settings: Settings = state.settings
        today = now.astimezone(settings.tz).date()
        etag = etag_for(version, today)
        if headers.get(b"if-none-match", b"").decode("latin-1").strip() == etag:
            scope["route"] = _ROUTE
            scope.setdefault("state", {})["principal"] = principal
            await _answer(send, 304, etag, None)
            return
        answer: RenderedAnswer | None = notifier.answer(principal.butler_id, (version, today))
        if answer is None:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        rows = [
            audit_row(
                principal,
                "mother.assignments",
                "mother",
                mother,
                occurred_at=now,
                request_id=request_id,
            )
            for mother in answer.mothers
        ]
        writer: AuditGroupCommit = state.audit_writer
        try:  # not one byte of her record leaves before the read of it is on record
            await writer.write(rows)
        except Exception:  # the route will meet the same failure and answer it properly
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        scope.setdefault("state", {})["principal"] = principal
        await _answer(send, 200, etag, answer.body)


async def _answer(send: Send, status: int, etag: str, body: bytes | None) -> None:
    headers = [(b"etag", etag.encode("latin-1"))]
    if body is not None:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"cache-control", CACHE_CONTROL.encode("latin-1")),
        ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body or b""})
