"""Optimistic concurrency and conditional reads, per RFC 9110 section 13.

Reads answer with an ``ETag``; writes need ``If-Match`` with it (strong comparison: a weak tag
never matches, and a tag that is not quoted is a 400 that says how to write it, not a 412 that
would send the client to re-read a record nobody changed). ``If-None-Match`` on reads uses the
weak comparison: ``W/"x"`` and ``"x"`` are the same for a 304, ``*`` matches any answer, and a
list matches when one of its tags does. A proxy that weakens our tags on the way must not cost
a phone its 304s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from app.core.errors import AppError, PreconditionFailed, PreconditionRequired

# A write's If-Match header; every route that changes a versioned record declares it this way.
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag you read, quoted as the ETag header gave it (e.g. "3"); '
        "required on writes.",
    ),
]

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class EntityTag:
    weak: bool
    opaque: str  # between the quotes

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.opaque}"'


class MalformedETag(AppError):
    status = 400
    slug = "malformed-etag"
    title = "The entity tag is not written as RFC 9110 says"


def etag_for(version: int) -> str:
    return f'"{version}"'


def parse_tag(value: str) -> EntityTag | None:
    """One entity tag as an ETag header carries it; None when it is not one."""
    match = _TAG.fullmatch(value)
    return EntityTag(weak=bool(match.group(1)), opaque=match.group(2)) if match else None


def parse_tags(header: str) -> list[EntityTag] | None:
    """The tags of an If-Match or If-None-Match list; None for ``*``.

    Raises ValueError naming the first member that is not a quoted entity tag.
    """
    text = header.strip()
    if text == "*":
        return None
    tags: list[EntityTag] = []
    position = 0
    while position < len(text):
        match = _TAG.match(text, position)
        if match is None:
            member = text[position:].split(",", 1)[0].strip()
            raise ValueError(member or text)
        tags.append(EntityTag(weak=bool(match.group(1)), opaque=match.group(2)))
        position = match.end()
    if not tags:
        raise ValueError(text)
    return tags


def _lenient_tags(header: str) -> list[EntityTag] | None:
    """If-None-Match as clients send it: a member that is not quoted counts as its text (the
    worst it can do is earn a 304 for the very tag it names)."""
    try:
        return parse_tags(header)
    except ValueError:
        out = []
        for member in header.split(","):
            member = member.strip()
            weak = member.startswith("W/")
            member = member.removeprefix("W/").strip('"')
            if member:
                out.append(EntityTag(weak=weak, opaque=member))
        return out


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when If-None-Match matches the current ``etag`` (weak comparison): answer 304."""
    if if_none_match is None or not if_none_match.strip():
        return False
    current = parse_tag(etag)
    offered = _lenient_tags(if_none_match)
    if offered is None:
        return True  # "*": the client has some copy, and there is one
    opaque = current.opaque if current is not None else etag
    return any(tag.opaque == opaque for tag in offered)


def _offered(if_match: str, current: str) -> list[EntityTag] | None:
    try:
        return parse_tags(if_match)
    except ValueError as exc:
        member = str(exc)
        raise MalformedETag(
            "If-Match must hold entity tags in double quotes, as the ETag header gave them: "
            f'If-Match: "{member.strip(chr(34))}" (or *), not If-Match: {member}.',
            extra={"current_etag": current},
        ) from None


def if_match_matches(if_match: str, etag: str) -> bool:
    """Strong comparison of If-Match with the current ``etag``; MalformedETag (400) when the
    header is not a list of quoted tags. ``*`` matches (the caller found the record)."""
    offered = _offered(if_match, etag)
    if offered is None:
        return True
    current = parse_tag(etag)
    return (
        current is not None
        and not current.weak
        and any(not tag.weak and tag.opaque == current.opaque for tag in offered)
    )


def check_if_match(if_match: str | None, *, version: int) -> None:
    """428 when the client did not say which copy it has; 400 when it said it in a form that
    is not an entity tag; 412 when its copy is stale (strong comparison)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send If-Match with the ETag of the record you read, so that nobody's change is lost."
        )
    current = etag_for(version)
    if if_match_matches(if_match, current):
        return
    offered = _offered(if_match, current) or []
    if any(tag.weak and str(tag).removeprefix("W/") == current for tag in offered):
        raise PreconditionFailed(
            "If-Match compares strongly and a weak tag (W/...) never matches: send "
            f"If-Match: {current} as the ETag header gave it.",
            extra={"current_etag": current},
        )
    raise PreconditionFailed(
        "Somebody changed this record after you read it. Read it again and re-apply your change.",
        extra={"current_etag": current},
    )
