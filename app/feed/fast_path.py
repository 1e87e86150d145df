"""The phone's poll, answered before the framework: GET /v1/me/assignments.

A butler's phone asks every few seconds; almost always nothing changed. When the token is in
the verification cache and the butler's version is known (both are cleared the moment they
change), a current ETag is answered 304 from here, with no dependency solving and no database
read. A phone without it (a restart, a lost ETag) gets the answer already built for this
version and day, once the read's audit rows are committed (they go in with other requests'
rows: app.audit.group_commit).

A long-poll (?wait=N with the current ETag) is held here too, with no database connection:
the version is read with one indexed query when it is not known, and again when the wait runs
out (the database is the truth, should a notification have been lost). The end of a quiet
wait is a 304 from here; a change hands the request, without its wait, to the route, which
answers at once. An idle butler therefore costs one cheap request per N seconds.

Anything else (an unknown token, an answer not yet built, a wait the route must refuse) goes
on to the full route, which builds and keeps the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.group_commit import AuditGroupCommit
from app.audit.service import audit_row
from app.auth.cache import TokenCache
from app.auth.models import Role
from app.core.clock import Clock
from app.core.etag import none_match
from app.core.security import token_digest
from app.core.settings import Settings
from app.feed.notifier import Notifier
from app.feed.repository import STATE

PATH = "/v1/me/assignments"
CACHE_CONTROL = "private, no-cache"
MAX_WAIT = 30  # seconds; the route's own limit on ?wait
JITTER = 0.2  # a quiet long-poll of 10 s or more ends up to a fifth early


def hold_for(wait: int) -> float:
    """How long a quiet long-poll is held. Phones that (re)connected together, as after a
    deploy, would otherwise re-poll together every N seconds, and a change landing in that
    wave would wait behind it; ending up to a fifth early spreads them out. A 304 says only
    "nothing changed": the phone asks again, sooner."""
    if wait < 10:
        return float(wait)
    return wait * (1 - JITTER * random.random())  # noqa: S311 - spreading load, not a secret


_WAIT = re.compile(r"[0-9]{1,2}")


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
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        wait = _wait_seconds(query.get("wait", []))
        raw_headers = scope["headers"]
        headers = dict(raw_headers)
        auth = headers.get(b"authorization", b"").decode("latin-1")
        twice = len(headers) != len(raw_headers)  # a header sent twice: the route reads it
        if wait is None or twice or auth[:7].lower() != "bearer ":  # the route says what's wrong
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        cache: TokenCache = state.token_cache
        clock: Clock = state.clock
        now = clock.now()
        digest = token_digest(auth[7:].strip())
        principal = cache.get(digest, now)
        if principal is None or principal.role != Role.BUTLER or principal.butler_id is None:
            await self.app(scope, receive, send)
            return
        butler = principal.butler_id
        notifier: Notifier = state.notifier
        settings: Settings = state.settings
        seen = headers.get(b"if-none-match", b"").decode("latin-1").strip()
        # A long-poll takes the event *before* the version is read: no change slips between.
        woken = notifier.subscribe(butler) if wait and seen else None
        version = notifier.known_version(butler)
        if version is None and woken is not None:
            version = await _read_version(state, butler)
        if version is None:
            await self.app(scope, receive, send)
            return
        today = now.astimezone(settings.tz).date()
        etag = etag_for(version, today)
        if woken is not None and none_match(seen, etag):
            # Held here, with no database connection, until a change or the end of the wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=hold_for(wait))
            if not woken.is_set():  # the wait ran out: is the answer still the same?
                version = await _read_version(state, butler)
                today = clock.now().astimezone(settings.tz).date()
                if version is not None and none_match(seen, etag_for(version, today)):
                    _name(scope, principal)
                    await _answer(send, 304, etag_for(version, today), None)
                    return
            # A change (or doubt): the route reads the version afresh and answers at once.
            await self.app(_without_wait(scope), receive, send)
            return
        if none_match(seen, etag):
            _name(scope, principal)
            await _answer(send, 304, etag, None)
            return
        answer: RenderedAnswer | None = notifier.answer(butler, (version, today))
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
        if cache.get(digest, clock.now()) is None:  # logged out or disabled while we wrote
            await self.app(scope, receive, send)
            return
        _name(scope, principal)
        await _answer(send, 200, etag, answer.body)


def _wait_seconds(values: list[str]) -> int | None:
    """?wait as the route reads it, or None for anything the route should judge (and refuse)."""
    if not values:
        return 0
    if len(values) != 1 or not _WAIT.fullmatch(values[0]):  # ASCII digits only, as the route
        return None
    seconds = int(values[0])
    return seconds if seconds <= MAX_WAIT else None


async def _read_version(state: Any, butler: uuid.UUID) -> int | None:
    """The butler's version from the database (one indexed read, no ORM); None on any failure,
    which leaves the request to the route."""
    notifier: Notifier = state.notifier
    generation = notifier.generation(butler)
    try:
        async with state.engine.connect() as conn:
            value = await conn.scalar(select(STATE.c.version).where(STATE.c.butler_id == butler))
    except Exception:
        return None
    version = int(value or 0)
    notifier.remember_version(butler, version, generation)
    return version


def _without_wait(scope: Scope) -> Scope:
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    kept = urlencode([(k, v) for k, v in pairs if k != "wait"]).encode("latin-1")
    return {**scope, "query_string": kept}


def _name(scope: Scope, principal: Any) -> None:
    """What the access log and the metrics name the request by, as they would the route's."""
    scope["route"] = _ROUTE
    scope.setdefault("state", {})["principal"] = principal


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
