"""The nutritionist runs the NUT station: she reads its queue, calls, starts and finishes her
entries there (not at any other station: an object-level 403, audited), and reads a mother's
record with her national id and phone masked; on both databases."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive, call
from tests.helpers.visits import TODAY, open_session


async def _post(api: Api, path: str, who: str = "nutritionist", **body: Any) -> Any:
    return await api.client.post(path, headers=api.auth(who), json=body or None)


async def test_the_nutritionist_runs_the_nut_station_and_no_other(api: Api) -> None:
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    her = await arrive(api, extra_exams=["nutrition_assessment"])
    queue = await api.client.get("/v1/stations/NUT/queue", headers=api.auth("nutritionist"))
    assert queue.status_code == 200, queue.text
    assert_problem(
        await api.client.get("/v1/stations/VIT/queue", headers=api.auth("nutritionist")), 403
    )
    assert_problem(await _post(api, "/v1/stations/VIT/call-next", room=1), 403)
    vitals = await call(api, "VIT")
    vit_entry = vitals["called"]["entry"]["id"]
    assert_problem(await _post(api, f"/v1/queue-entries/{vit_entry}/start"), 403)
    assert_problem(await _post(api, f"/v1/queue-entries/{vit_entry}/finish"), 403)
    assert (await _post(api, f"/v1/queue-entries/{vit_entry}/start", "station")).status_code == 200
    assert (await _post(api, f"/v1/queue-entries/{vit_entry}/finish", "station")).status_code == 200

    called = await _post(api, "/v1/stations/NUT/call-next", room=1)
    assert called.status_code == 200, called.text
    entry = called.json()["called"]["entry"]
    assert entry["mother_id"] == her["mother"]["id"]
    started = await _post(api, f"/v1/queue-entries/{entry['id']}/start")
    assert started.status_code == 200, started.text
    finished = await _post(api, f"/v1/queue-entries/{entry['id']}/finish")
    assert finished.status_code == 200, finished.text
    assert finished.json()["state"] == "done"


async def test_the_nutritionist_reads_a_mothers_record_masked(api: Api) -> None:
    mother = await mother_with_butler(api)
    got = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("nutritionist"))
    assert got.status_code == 200, got.text
    record = got.json()
    assert record["national_id_masked"] is True
    assert record["phone_masked"] is True
    assert record["mrn"] == mother["mrn"]
