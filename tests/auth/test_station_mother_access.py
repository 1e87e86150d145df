"""A station account reads a mother's data only while she is at its station
today (issue 18, probe): her visit of today checked in or in progress, with a place or an exam
at the station. Any other mother is a 404, as another butler's mother is, and the refusal is
audited naming her. The station caller is "station", bound to the vitals station (VIT)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session

READS = (
    "/v1/mothers/{}/timeline",
    "/v1/mothers/{}/measurements",
    "/v1/mothers/{}/charts/weight-gain.svg",
    "/v1/mothers/{}/charts/weight-gain.png",
    "/v1/mothers/{}/charts/blood-pressure.svg",
    "/v1/mothers/{}/charts/blood-pressure.png",
)


async def _answers(api: Api, mother_id: str) -> list[int]:
    headers = api.auth("station")
    return [
        (await api.client.get(url.format(mother_id), headers=headers)).status_code for url in READS
    ]


async def _denied(factory: async_sessionmaker[AsyncSession], mother_id: str) -> list[AuditEvent]:
    async with factory() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.outcome == "denied",
                    AuditEvent.role == "station",
                    AuditEvent.mother_id == uuid.UUID(mother_id),
                )
            )
        )


def _refused(codes: list[int]) -> None:
    assert codes == [404] * len(READS), codes


async def _her_at_vitals(api: Api) -> dict[str, Any]:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    return await arrive(api)


async def test_the_vitals_station_reads_a_mother_checked_in_and_queued_there(api: Api) -> None:
    her = await _her_at_vitals(api)
    codes = await _answers(api, her["mother"]["id"])
    assert codes == [200] * len(READS), codes


async def test_a_mother_with_no_visit_today_is_404_to_a_station_and_audited(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api)
    _refused(await _answers(api, mother["id"]))
    denied = await _denied(session_factory, mother["id"])
    assert len(denied) == len(READS)
    assert {e.detail["reason"] for e in denied if e.detail} == {"not at the account's station"}
    # Her record was a 403 for a station already; her data is now hidden as well.
    problem = assert_problem(
        await api.client.get(f"/v1/mothers/{mother['id']}/timeline", headers=api.auth("station")),
        404,
    )
    assert "visible" in str(problem["detail"])
    # The clinicians still read her.
    timeline = await api.client.get(
        f"/v1/mothers/{mother['id']}/timeline", headers=api.auth("doctor")
    )
    assert timeline.status_code == 200


async def test_a_mother_checked_in_but_not_queued_at_vitals_is_404_to_it(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    her = await _her_at_vitals(api)
    vitals = next(o["id"] for o in her["visit"]["exam_orders"] if o["exam_code"] == "vitals")
    cancelled = await api.client.post(
        f"/v1/exam-orders/{vitals}/cancel",
        headers=api.auth("frontdesk"),
        json={"reason": "taken at the ward"},
    )
    assert cancelled.status_code == 204, cancelled.text
    _refused(await _answers(api, her["mother"]["id"]))
    assert len(await _denied(session_factory, her["mother"]["id"])) == len(READS)
    # The blood-draw station, where she still waits, reads her.
    lab = await api.client.get(
        f"/v1/mothers/{her['mother']['id']}/timeline", headers=api.auth("station-lab")
    )
    assert lab.status_code == 200, lab.text


async def test_after_her_visit_is_completed_the_station_no_longer_reads_her(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    her = await _her_at_vitals(api)
    mother_id = her["mother"]["id"]
    timeline = f"/v1/mothers/{mother_id}/timeline"
    assert (await api.client.get(timeline, headers=api.auth("station"))).status_code == 200
    done = await api.client.post(
        f"/v1/visits/{her['visit']['id']}/complete", headers=api.auth("doctor")
    )
    assert done.status_code == 200, done.text
    _refused(await _answers(api, mother_id))
    assert len(await _denied(session_factory, mother_id)) == len(READS)


async def test_a_station_records_readings_only_for_a_mother_at_it_today(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    her = await _her_at_vitals(api)
    elsewhere = await mother_with_butler(api, serial="003", phone="13800000003")
    body = {"readings": [{"kind": "weight", "value": 61}]}

    def record(mother_id: str) -> Any:
        return api.client.post(
            f"/v1/mothers/{mother_id}/measurements", headers=api.auth("station"), json=body
        )

    taken = await record(her["mother"]["id"])
    assert taken.status_code == 201, taken.text
    refused = assert_problem(await record(elsewhere["id"]), 404)
    assert "visible" in str(refused["detail"])
    denied = await _denied(session_factory, elsewhere["id"])
    assert [e.action for e in denied] == ["mother.post"]
    # Her butler still records for her, and nothing was written for her by the station.
    listed = await api.client.get(
        f"/v1/mothers/{elsewhere['id']}/measurements", headers=api.auth("doctor")
    )
    assert listed.status_code == 200, listed.text
    assert [m for m in listed.json()["items"] if m["kind"] == "weight"] == []
