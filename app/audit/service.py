"""Writing audit events: in the request's transaction, or after its rollback for refusals.

Every row names the mother it concerns (``mother_id``), so that "everything done with her
record" is one query whatever the row is keyed by (her record, a visit, a queue place, a
report, an alert). A row about her record derives it from the resource id; a row about
something of hers (``MOTHER_OWNED``) must be told whose it is, or it is not written: the call
fails (a test that calls every route finds a call that forgot). ``None`` is a valid answer
(a lab report that matched nobody yet)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.audit.models import AuditEvent
from app.core.clock import Clock
from app.core.ids import uuid7
from app.core.principal import Principal

ACTION_LENGTH: int = getattr(AuditEvent.__table__.c.action.type, "length", None) or 60

# Records that belong to one mother: a row keyed by one of them must say whose it is.
MOTHER_OWNED = frozenset(
    {
        "visit",
        "queue_entry",
        "exam_order",
        "report",
        "alert",
        "measurement",
        "rule_firing",
        "worklist_item",
        "task",
        "notification",
        "her_link",
    }
)


class _Derive:
    """The default of ``mother_id``: hers if the row is about her record, else refused."""

    def __repr__(self) -> str:  # pragma: no cover - shown in signatures only
        return "DERIVE"


DERIVE: Any = _Derive()
MotherId = uuid.UUID | str | None


def mother_of(resource_type: str, resource_id: uuid.UUID | str | None, given: Any) -> str | None:
    """The mother a row concerns, as the column stores it (or refuse to guess)."""
    if given is not DERIVE:
        return str(given) if given is not None else None
    if resource_type == "mother":
        return str(resource_id) if resource_id is not None else None
    if resource_type in MOTHER_OWNED:
        raise TypeError(
            f"an audit row about a {resource_type} must name its mother (mother_id=...)"
        )
    return None


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:  # a malformed id in a refused request: no mother to name
        return None


def audit_row(
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    *,
    occurred_at: datetime,
    request_id: str | None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
    mother_id: Any = DERIVE,
) -> dict[str, Any]:
    """One audit row's columns, for the ORM (``AuditEvent(**row)``) or a bulk insert.

    An action longer than its column (a refused role names the route: ``POST`` and a long
    path) is cut to fit and kept whole in the detail: the row is still written, and PostgreSQL
    does not turn the refusal into a 500."""
    if occurred_at.tzinfo is None:  # a bulk insert has no UTCDateTime to catch it
        raise ValueError("audit times must be aware")
    if len(action) > ACTION_LENGTH:
        detail = {**(detail or {}), "action": action}
        action = action[: ACTION_LENGTH - 1] + "…"
    p = principal
    return {
        "id": uuid7(),
        "occurred_at": occurred_at,
        "actor_kind": p.kind.value if p else "anonymous",
        "actor_id": p.id if p else None,
        "actor_name": p.name if p else "anonymous",
        "role": p.role if p else "anonymous",
        "action": action,
        "outcome": outcome,
        "resource_type": resource_type,
        "resource_id": str(resource_id) if resource_id is not None else None,
        "mother_id": _uuid(mother_of(resource_type, resource_id, mother_id)),
        "request_id": request_id,
        "detail": detail,
    }


class AuditTrail:
    """The audit writer for one request; build it with the ``AuditDep`` dependency."""

    def __init__(
        self,
        *,
        session: AsyncSession | None,
        request: Request,
        principal: Principal | None,
        clock: Clock,
    ) -> None:
        self._session = session
        self._request = request
        self._principal = principal
        self._clock = clock

    def _event(
        self,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID | str | None,
        outcome: str,
        detail: dict[str, Any] | None,
        mother_id: Any,
    ) -> AuditEvent:
        return AuditEvent(
            **audit_row(
                self._principal,
                action,
                resource_type,
                resource_id,
                occurred_at=self._clock.now(),
                request_id=getattr(self._request.state, "request_id", None),
                outcome=outcome,
                detail=detail,
                mother_id=mother_id,
            )
        )

    def record(
        self,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID | str | None,
        *,
        mother_id: MotherId = DERIVE,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """An access that succeeded; it commits, or vanishes, with the request."""
        assert self._session is not None
        self._session.add(
            self._event(action, resource_type, resource_id, "success", detail, mother_id)
        )

    def record_many(
        self,
        action: str,
        resource_type: str,
        resource_ids: Iterable[uuid.UUID],
        *,
        mothers: Mapping[uuid.UUID, uuid.UUID | None] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One row per record shown, so that "who saw mother X" finds list views too.
        ``mothers`` names the mother of each record (needed unless they are her records)."""
        assert self._session is not None
        self._session.add_all(
            [
                self._event(
                    action,
                    resource_type,
                    rid,
                    "success",
                    detail,
                    mothers.get(rid) if mothers is not None else DERIVE,
                )
                for rid in resource_ids
            ]
        )

    def record_denied(
        self,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID | str | None,
        *,
        reason: str,
        mother_id: MotherId = DERIVE,
    ) -> None:
        """A refused access; written even though the request's transaction rolls back."""
        pending: list[AuditEvent] = getattr(self._request.state, "audit_on_failure", [])
        pending.append(
            self._event(action, resource_type, resource_id, "denied", {"reason": reason}, mother_id)
        )
        self._request.state.audit_on_failure = pending


_RESOURCE_OF_COLLECTION = {
    "mothers": "mother",
    "visits": "visit",
    "butlers": "butler",
    "users": "user",
}


def replay_audit_event(request: Request, response: Response) -> AuditEvent:
    """A replayed answer is a read of what it carries: say so in the audit trail (the
    transactional route calls this as ``app.state.replay_audit``)."""

    principal = getattr(request.state, "principal", None)
    location = response.headers.get("location")
    parts = location.strip("/").split("/") if location else []
    collection = parts[1] if len(parts) > 2 else "request"
    resource_type = _RESOURCE_OF_COLLECTION.get(collection, collection)
    resource_id = location.rsplit("/", 1)[-1] if location else None
    return AuditEvent(
        occurred_at=request.app.state.clock.now(),
        actor_kind=principal.kind.value if principal else "anonymous",
        actor_id=principal.id if principal else None,
        actor_name=principal.name if principal else "anonymous",
        role=principal.role if principal else "anonymous",
        action="idempotent_replay",
        outcome="success",
        resource_type=resource_type,
        resource_id=resource_id,
        mother_id=_uuid(
            resource_id if resource_type == "mother" else _mother_in(response, request)
        ),
        request_id=getattr(request.state, "request_id", None),
        detail={"method": request.method, "path": request.url.path},
    )


def _mother_in(response: Response, request: Request) -> str | None:
    """Whose record a replayed answer carries: the ``mother_id`` it names, else the one in the
    path it was made on (``/v1/mothers/{id}/...``)."""
    body = getattr(response, "body", b"")
    with contextlib.suppress(ValueError, TypeError, UnicodeDecodeError):
        value = json.loads(body) if body else None
        if isinstance(value, dict) and isinstance(value.get("mother_id"), str):
            return str(value["mother_id"])
    parts = request.url.path.strip("/").split("/")
    if len(parts) > 2 and parts[1] == "mothers":
        return parts[2]
    return None
