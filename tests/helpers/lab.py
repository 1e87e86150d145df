"""The lab system as a client of the intake endpoints: signed HL7 v2 and FHIR posts."""

from __future__ import annotations

from typing import Any

from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY
from tests.helpers.messages import signed

HL7 = "/v1/integrations/lab/hl7v2"
FHIR = "/v1/integrations/lab/fhir"


class Lab:
    def __init__(self, api: Api, clock: FrozenClock) -> None:
        self.api = api
        self.clock = clock

    def headers(self, body: str, **kw: Any) -> dict[str, str]:
        at = kw.pop("at", int(self.clock.now().timestamp()))
        return {"X-API-Key": LAB_KEY, **signed(body, at=at, **kw)}

    async def hl7(self, body: str, **kw: Any) -> tuple[str, str]:
        response = await self.api.client.post(
            HL7,
            content=body.encode(),
            headers={**self.headers(body, **kw), "content-type": "application/hl7-v2"},
        )
        assert response.status_code == 200, response.text
        msa = next(s for s in response.text.split("\r") if s.startswith("MSA"))
        parts = msa.split("|")
        return parts[1], parts[2]

    async def fhir(self, body: str, **kw: Any) -> Any:
        return await self.api.client.post(
            FHIR,
            content=body.encode(),
            headers={**self.headers(body, **kw), "content-type": "application/fhir+json"},
        )
