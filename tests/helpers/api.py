"""The API client the ``api`` fixture gives a test."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.helpers.factories import Staff


@dataclass
class Api:
    """An API client plus the demo staff, one account per role."""

    client: httpx.AsyncClient
    staff: Staff

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff.tokens[who]}"}
