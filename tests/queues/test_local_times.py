"""Where people read a time off a screen (the TV's board, her page, the desk's visits), the
answer gives it on the clinic's wall clock beside the instant, and boards name the butler
beside the butler's id."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler
from tests.helpers.queues import arrive, call
from tests.helpers.visits import TODAY, TUESDAY, book, open_session

SHANGHAI = ZoneInfo("Asia/Shanghai")


def hhmm(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(SHANGHAI).strftime("%H:%M")


async def test_the_board_and_the_queue_give_the_clinic_clock_beside_the_instant(api: Api) -> None:
    await open_session(api, day=TODAY)
    arrived = await arrive(api, serial="101")
    called = await call(api, "VIT")
    assert called["called"] is not None
    board = (await api.client.get("/v1/stations/VIT/board")).json()
    (ticket,) = board["now_calling"]
    assert ticket["called_at"].endswith("Z")
    assert ticket["called_at_local"] == hhmm(ticket["called_at"]) == "10:00"  # the test clock
    assert board["as_of_local"] == hhmm(board["as_of"])
    entry = called["called"]["entry"]
    assert entry["called_at_local"] == "10:00"
    visit = (
        await api.client.get(f"/v1/visits/{arrived['visit']['id']}", headers=api.auth("frontdesk"))
    ).json()
    assert visit["arrived_at_local"] == hhmm(visit["arrived_at"]) == "10:00"
    listed = (await api.client.get("/v1/visits", headers=api.auth("frontdesk"))).json()["items"]
    (item,) = listed
    assert [t["called_at_local"] for t in item["tickets"] if t["called_at"]] == ["10:00"]


async def test_the_visits_board_names_the_escorting_butler_and_the_booked_hour(api: Api) -> None:
    session = await open_session(api)
    mother = await mother_with_butler(api)
    booked = (await book(api, mother["id"], session["id"])).json()
    assert booked["scheduled_at_local"] == "08:00"
    board = (
        await api.client.get(
            "/v1/visits/board", params={"date": TUESDAY}, headers=api.auth("frontdesk")
        )
    ).json()
    (visit,) = board["sessions"][0]["visits"]
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler1"].id)
    assert visit["accompanying_butler_name"] == api.staff.butlers["butler1"].display_name
    assert visit["scheduled_at_local"] == "08:00"
