"""A cap on reports and observations per lab message: past it the whole message is refused
(HL7 ACK AR, FHIR OperationOutcome), after being stored as received, and nothing of it is
taken in."""

from __future__ import annotations

import json

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.reports.models import InboundMessage, LabObservation, LabReport
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import fhir_bundle
from tests.helpers.rows import count
from tests.helpers.visits import checked_in_mother, order_number


def panels(*, mrn: str, order: str, reports: int, observations: int, tag: str) -> str:
    segments = [
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|{tag}|P|2.5",
        f"PID|1||{mrn}^^^HOSP^MR||TEST^MOTHER",
    ]
    for i in range(reports):
        segments.append(
            f"OBR|{i + 1}|{order}|{tag}-{i}|P{i}^Panel {i}^L|||20261128080000"
            "|||||||||||||||20261128092500|||F"
        )
        segments += [
            f"OBX|{j + 1}|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F"
            for j in range(observations)
        ]
    return "\r".join(segments) + "\r"


async def stored(factory: async_sessionmaker[AsyncSession]) -> list[InboundMessage]:
    async with factory() as session:
        return list(await session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


async def test_more_reports_than_the_cap_is_ar_and_stored(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = panels(
        mrn=mother["mrn"], order=order_number(visit), reports=51, observations=1, tag="CAP1"
    )
    code, control = await lab.hl7(body)
    assert (code, control) == ("AR", "CAP1")
    (message,) = await stored(session_factory)
    assert (message.body, message.state, message.ack_code) == (body.encode(), "rejected", "AR")
    assert "51 reports" in (message.outcome or "")
    assert "at most 50" in (message.outcome or "")
    assert await count(session_factory, LabReport) == 0
    # At the cap it is taken in whole.
    ok = panels(
        mrn=mother["mrn"], order=order_number(visit), reports=50, observations=1, tag="CAP2"
    )
    assert await lab.hl7(ok) == ("AA", "CAP2")
    assert await count(session_factory, LabReport) == 50


async def test_more_observations_than_the_cap_is_ar(
    api: Api, app: FastAPI, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"lab_max_observations_per_message": 10}
    )
    mother, visit = await checked_in_mother(api)
    body = panels(mrn=mother["mrn"], order=order_number(visit), reports=3, observations=4, tag="O1")
    assert await lab.hl7(body) == ("AR", "O1")
    (message,) = await stored(session_factory)
    assert message.state == "rejected"
    assert "12 observations" in (message.outcome or "")
    assert await count(session_factory, LabObservation) == 0


async def test_a_fhir_bundle_over_the_cap_is_an_operation_outcome(
    api: Api, app: FastAPI, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = fhir_bundle(order=order_number(visit, "ogtt"), mrn=mother["mrn"])
    observations = sum(
        1 for e in json.loads(body)["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    assert observations > 1
    app.state.settings = app.state.settings.model_copy(
        update={"lab_max_observations_per_message": observations - 1}
    )
    response = await lab.fhir(body)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "too-costly")
    assert f"at most {observations - 1}" in issue["diagnostics"]
    (message,) = await stored(session_factory)
    assert (message.body, message.state) == (body.encode(), "rejected")
    assert await count(session_factory, LabReport) == 0
