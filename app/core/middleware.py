"""Pure ASGI middleware: request id, access log and metrics, body size limit."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id_var
from app.core.metrics import REQUEST_LATENCY, REQUESTS

logger = logging.getLogger("app.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Gives every request an id (or keeps a sane X-Request-ID), logs it once, counts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status_code = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status_code)).inc()
            REQUEST_LATENCY.labels(method, template).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "event": "http_request",
                    "method": method,
                    "route": template,
                    "status": status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "principal": _principal_ref(scope),
                },
            )
            request_id_var.reset(token)


def _principal_ref(scope: Scope) -> str | None:
    principal = scope.get("state", {}).get("principal")
    return getattr(principal, "scope_key", None)


class RequestGuardMiddleware:
    """Refuses, before any handler runs, what no handler should see.

    A body larger than ``max_bytes`` (declared or streamed) gets 413. A NUL character in the
    query string or in a JSON body gets 422: PostgreSQL cannot store it in text, and nothing in
    this domain needs one. A body not received whole within ``body_timeout`` seconds of the
    app's first read of it gets 408: a client that sends half a body and stalls (or trickles a
    byte at a time) holds nothing of anyone else's for longer than that. Once the body is
    whole, the wait for the client's disconnect (a long poll, a stream) has no deadline.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, body_timeout: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query.lower() or b"\x00" in query:
            await _problem(
                scope,
                send,
                422,
                "validation-error",
                "The request is not valid",
                "The query string contains a NUL character.",
            )
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _problem(
                scope,
                send,
                413,
                "payload-too-large",
                "Request body too large",
                f"The body may be at most {self.max_bytes} bytes.",
            )
            return
        received = 0
        tail = b""
        # Lab messages are stored verbatim, NULs and all, and answered with an ACK.
        check_nul = not str(scope.get("path", "")).startswith("/v1/integrations/lab/")
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        body_done = False

        async def guarded_receive() -> Message:
            nonlocal received, tail, body_done, deadline
            if body_done:
                message = await receive()
            else:
                # Counted from the app's first read of the body (not from the request's start:
                # a route may read it after slow dependencies); ``timeout_at`` returns a message
                # already buffered even at the deadline, where ``wait_for(..., 0)`` would not.
                if deadline is None:
                    deadline = loop.time() + self.body_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise HTTPException(
                        408,
                        f"The request body did not arrive whole within {self.body_timeout:g} "
                        "seconds; send it again.",
                    ) from None
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_done = True
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                received += len(chunk)
                # FastAPI re-raises HTTPException from body reading; the handler renders it.
                if received > self.max_bytes:
                    raise HTTPException(413, f"The body may be at most {self.max_bytes} bytes.")
                window = tail + chunk
                if check_nul and (b"\\u0000" in window or b"\x00" in window):
                    raise HTTPException(422, "The body contains a NUL character.")
                tail = window[-5:]
            return message

        await self.app(scope, guarded_receive, send)


async def _problem(
    scope: Scope, send: Send, status: int, slug: str, title: str, detail: str
) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(
        {
            "type": f"/problems/{slug}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path"),
            "request_id": request_id,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
