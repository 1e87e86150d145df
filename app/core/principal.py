"""Who is calling: a logged-in user or an integration client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PrincipalKind(StrEnum):
    USER = "user"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID
    name: str
    role: str
    token_id: uuid.UUID | None = None
    butler_id: uuid.UUID | None = None
    token_expires_at: datetime | None = None
    # A station account's station (issue 17): it acts there only. None for every other role.
    station_code: str | None = None
    # The name people read (王管家), for screens; ``name`` (the username) is what the audit keeps.
    display_name: str | None = None

    @property
    def scope_key(self) -> str:
        """The namespace for per-client state such as Idempotency-Key."""
        return f"{self.kind.value}:{self.id}"
