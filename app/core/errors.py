"""One error hierarchy, rendered as RFC 9457 problem details by one set of handlers.

Raise an ``AppError`` subclass anywhere (service, dependency, repository); the handlers in
``install_error_handlers`` turn it, and FastAPI's and Starlette's own errors, into
``application/problem+json``. A 500 says nothing about the cause, only the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

logger = logging.getLogger("app.errors")


class FieldError(BaseModel):
    field: str = Field(description="Dotted name of the offending field, e.g. national_id.")
    location: str = Field(description="body, query, path or header.")
    pointer: str | None = Field(default=None, description="JSON Pointer into the body (RFC 6901).")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every 4xx and 5xx answer of the REST API."""

    type: str = Field(examples=["/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["No mother with that id is visible to you."])
    instance: str | None = Field(default=None, examples=["/v1/mothers/0191f..."])
    request_id: str | None = Field(default=None, examples=["7f2c1d9e4b8a4c55"])
    errors: list[FieldError] | None = None


class AppError(Exception):
    """Base of every error the API answers with on purpose."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        errors: Sequence[FieldError] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}
        self.errors = list(errors) if errors else None


class NotAuthenticated(AppError):
    status = 401
    slug = "not-authenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="pregnancy-butler"'})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status = 403
    slug = "forbidden"
    title = "Not allowed for your role"


class NotFound(AppError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class IdempotencyInProgress(Conflict):
    slug = "idempotency-in-progress"
    title = "A request with this Idempotency-Key is still being processed"


class PreconditionFailed(AppError):
    status = 412
    slug = "precondition-failed"
    title = "The resource changed since you read it"


class PayloadTooLarge(AppError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(AppError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationFailed(AppError):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"


def invalid_field(field: str, detail: str, *, message: str | None = None) -> ValidationFailed:
    """422 naming one body field (dotted for nested ones); message defaults to 'field: detail'."""
    return ValidationFailed(
        message or f"{field}: {detail}",
        errors=[
            FieldError(
                field=field, location="body", pointer="#/" + field.replace(".", "/"), detail=detail
            )
        ],
    )


class IdempotencyKeyReused(ValidationFailed):
    slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request"


class PreconditionRequired(AppError):
    status = 428
    slug = "precondition-required"
    title = "If-Match is required"


class TooManyRequests(AppError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    slug = "service-unavailable"
    title = "Cannot be served now; try again later"


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    errors: Sequence[FieldError] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "instance": request.url.path,
        "request_id": request_id,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    all_headers = dict(headers or {})
    if request_id:
        all_headers.setdefault("X-Request-ID", request_id)
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        location = loc[0] if loc else "body"
        path = loc[1:] if len(loc) > 1 else []
        message = str(err.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        out.append(
            FieldError(
                field=".".join(path) or location,
                location=location,
                pointer=("#/" + "/".join(path)) if location == "body" else None,
                detail=message,
            )
        )
    return out


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
        errors=exc.errors,
    )


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _body_problem(request: Request, exc: RequestValidationError) -> JSONResponse | None:
    """A body that is not JSON at all: say that, and where, instead of naming a "field" by
    the offset FastAPI puts in its location (``loc: ["body", 24]``)."""
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
            doc = exc.body if isinstance(exc.body, str) else ""
            pos = min(loc[1], len(doc))
            line = doc.count("\n", 0, pos) + 1
            column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
            offset = len(doc[:pos].encode())
            reason = str((err.get("ctx") or {}).get("error") or "not JSON")
            where = f"line {line}, column {column} (byte {offset})"
            return problem_response(
                request,
                status=400,
                slug="malformed-json",
                title="The body is not well-formed JSON",
                detail=f"The body is not valid JSON: {reason} at {where}.",
                extra={"json_error": {"line": line, "column": column, "offset": offset}},
                errors=[FieldError(field="body", location="body", detail=f"{reason} at {where}")],
            )
        if loc == ("body",) and isinstance(err.get("input"), bytes | bytearray):
            # FastAPI reads a body as JSON only when Content-Type says so; else it hands the
            # model the raw bytes and the client hears "a valid dictionary" is missing.
            sent = request.headers.get("content-type")
            if sent is not None and _is_json(sent):
                continue
            said = (
                f"this request said Content-Type: {sent[:100]}"
                if sent
                else "this request sent none"
            )
            return problem_response(
                request,
                status=415,
                slug=UnsupportedMediaType.slug,
                title=UnsupportedMediaType.title,
                detail=f"The body must be JSON sent with Content-Type: application/json; {said}.",
                headers={"Accept-Post": "application/json"},
            )
    return None


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    body_problem = _body_problem(request, exc)
    if body_problem is not None:
        return body_problem
    errors = _field_errors(exc)
    fields = ", ".join(sorted({e.field for e in errors}))
    return problem_response(
        request,
        status=422,
        slug=ValidationFailed.slug,
        title=ValidationFailed.title,
        detail=f"Invalid fields: {fields}" if fields else None,
        errors=errors,
    )


_HTTP_SLUGS = {
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    401: ("not-authenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    413: ("payload-too-large", "Request body too large"),
    422: ("validation-error", "The request is not valid"),
}


# FastAPI's answer when json.loads fails other than by a syntax error; what it was, said.
_PARSE_ERROR = "There was an error parsing the body"


def _parse_error_detail(exc: StarletteHTTPException) -> str | None:
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"The body is not UTF-8: byte 0x{cause.object[cause.start]:02x} at byte "
            f"{cause.start} cannot be decoded. Send JSON in UTF-8."
        )
    if isinstance(cause, RecursionError):
        return "The body's JSON is nested too deeply to read."
    return None


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _PARSE_ERROR:
        detail = _parse_error_detail(exc)
        if detail is not None:
            return problem_response(
                request,
                status=400,
                slug="malformed-json",
                title="The body is not well-formed JSON",
                detail=detail,
            )
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", ""))
    if not title:
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
    detail = (
        exc.detail if isinstance(exc.detail, str) and exc.detail.lower() != title.lower() else None
    )
    return problem_response(
        request,
        status=exc.status_code,
        slug=slug,
        title=title,
        detail=detail,
        headers=dict(exc.headers or {}),
    )


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled error",
        exc_info=exc,
        extra={
            "event": "unhandled_error",
            "path": request.url.path,
            "request_id": getattr(request.state, "request_id", None),
        },
    )
    return problem_response(
        request,
        status=500,
        slug="internal-error",
        title="Internal server error",
        detail="Something went wrong on our side. Quote the request id when you report it.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(Exception, _unhandled_handler)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry that documents problem answers in OpenAPI."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        try:
            description = HTTPStatus(status).phrase
        except ValueError:
            description = "Error"
        out[status] = {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def links(status: int, **targets: tuple[str, str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a created resource to where it is read (clients and fuzzers follow
    them): ``name=(operationId, parameter, JSON pointer into the response body)``."""
    return {
        status: {
            "links": {
                name: {"operationId": op, "parameters": {param: f"$response.body#{pointer}"}}
                for name, (op, param, pointer) in targets.items()
            }
        }
    }
