"""Optimistic concurrency: ETag on reads, If-Match required on writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from app.core.errors import PreconditionFailed, PreconditionRequired

# A write's If-Match header; every route that changes a versioned record declares it this way.
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The ETag you read; required on writes.")
]


def etag_for(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, *, version: int) -> None:
    """412 when the client's copy is stale; 428 when it did not say which copy it has."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send If-Match with the ETag of the record you read, so that nobody's change is lost."
        )
    current = etag_for(version)
    offered = [tag.strip() for tag in if_match.split(",")]
    if "*" in offered or current in offered:
        return
    raise PreconditionFailed(
        "Somebody changed this record after you read it. Read it again and re-apply your change.",
        extra={"current_etag": current},
    )
