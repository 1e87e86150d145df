"""Keyset pagination over time-ordered ids: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from app.core.errors import FieldError, ValidationFailed

T = TypeVar("T")

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class PageParams(BaseModel):
    limit: int
    after: uuid.UUID | None


class PageInfo(BaseModel):
    limit: int = Field(description=f"Page size asked for (at most {MAX_LIMIT}).")
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null on the last page."
    )


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "The cursor is not one this service handed out.",
            errors=[FieldError(field="cursor", location="query", detail="malformed cursor")],
        ) from exc


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def page_info(ids: list[uuid.UUID], params: PageParams, *, has_more: bool) -> PageInfo:
    return PageInfo(
        limit=params.limit,
        next_cursor=encode_cursor(ids[-1]) if has_more and ids else None,
    )


def paginate(
    rows: list[T], params: PageParams, key: Callable[[T], uuid.UUID]
) -> tuple[list[T], PageInfo]:
    """Rows fetched with ``limit + 1``: the page itself, and whether another one follows."""
    has_more = len(rows) > params.limit
    page = rows[: params.limit]
    return page, page_info([key(r) for r in page], params, has_more=has_more)
