"""The exam queues through the API: a mother who arrives, station calls, the OGTT's timing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.settings import OgttBetweenDraws, Settings
from tests.helpers.api import Api
from tests.helpers.factories import record_elsewhere, station_login
from tests.helpers.mothers import mother_with_butler
from tests.helpers.visits import check_in


async def arrive(api: Api, *, serial: str = "002", **kw: Any) -> dict[str, Any]:
    """A mother (25+5 today: vitals, OGTT, blood count, urine, doctor) checked in at 10:00.

    She transferred in: her booking panel and anatomy scan were done at another hospital.
    """
    extra = kw.pop("extra_exams", None)
    mother = await mother_with_butler(api, serial=serial, phone=f"13800000{serial}", **kw)
    doctor = api.auth("doctor")
    await record_elsewhere(api.client, doctor, mother["id"])
    await record_elsewhere(api.client, doctor, mother["id"], ["us_anatomy"], on="2026-10-26")
    response = await check_in(api, mrn=mother["mrn"], **({"extra_exams": extra} if extra else {}))
    assert response.status_code == 200, response.text
    return {"mother": mother, "visit": response.json()}


async def without_ogtt(api: Api, her: dict[str, Any]) -> None:
    """Not fasting today: her OGTT order is cancelled (a blood count alone is left at the
    draw), as a doctor does for a test done last week."""
    ogtt = next(o for o in her["visit"]["exam_orders"] if o["exam_code"] == "ogtt")
    cancelled = await api.client.post(
        f"/v1/exam-orders/{ogtt['id']}/cancel",
        headers=api.auth("doctor"),
        json={"reason": "done last week"},
    )
    assert cancelled.status_code == 204, cancelled.text


async def visit_queue(api: Api, visit_id: str, who: str = "frontdesk") -> dict[str, Any]:
    response = await api.client.get(f"/v1/visits/{visit_id}/queue", headers=api.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# Each station account works at its own station: the station of every ticket seen, so that
# a ticket's moves are made by its station's account.
_STATION_OF: dict[str, str] = {}


def seen(entry: dict[str, Any]) -> None:
    """Remember a ticket's station (from any QueueEntryPublic answer)."""
    if isinstance(entry, dict) and "id" in entry and "station" in entry:
        _STATION_OF[str(entry["id"])] = entry["station"]


def station_auth(api: Api, station: str) -> dict[str, str]:
    """The headers of that station's account (the vitals account for a station of a test's own)."""
    who = station_login(station)
    return api.auth(who if who in api.staff.tokens else "station")


def entry_station_auth(api: Api, entry_id: str) -> dict[str, str]:
    """The headers of the account of the station this ticket is at."""
    return station_auth(api, _STATION_OF.get(str(entry_id), "VIT"))


async def call(api: Api, station: str, room: int = 1) -> dict[str, Any]:
    response = await api.client.post(
        f"/v1/stations/{station}/call-next", headers=station_auth(api, station), json={"room": room}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if body.get("called"):
        seen(body["called"]["entry"])
    return body


async def op(api: Api, entry_id: str, action: str, **body: Any) -> Any:
    response = await api.client.post(
        f"/v1/queue-entries/{entry_id}/{action}",
        headers=entry_station_auth(api, entry_id),
        json=body,
    )
    if response.status_code == 200:
        seen(response.json())
    return response


async def serve(api: Api, station: str, room: int = 1) -> dict[str, Any]:
    """Call, start and finish the next mother at a station."""
    called = await call(api, station, room)
    assert called["called"] is not None, called
    entry = called["called"]["entry"]
    assert (await op(api, entry["id"], "start")).status_code == 200
    finished = await op(api, entry["id"], "finish")
    assert finished.status_code == 200, finished.text
    return dict(finished.json())


def with_between_draws(settings: Settings, value: str) -> Settings:
    """``"any"``, ``"rest"`` or ``"listed:us_obstetric,nst"``; empty: the default (rest)."""
    if not value:
        return settings
    mode, _, exams = value.partition(":")
    return settings.model_copy(
        update={"ogtt_between_draws": OgttBetweenDraws(mode), "ogtt_between_draws_exams": exams}
    )


def instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def record_drink(api: Api, entry_id: str, at: datetime, *, who: str | None = None) -> Any:
    """The blood-draw station records when she began the glucose drink."""
    return await api.client.post(
        f"/v1/queue-entries/{entry_id}/glucose-drink",
        headers=api.auth(who) if who else entry_station_auth(api, entry_id),
        json={"started_at": instant(at)},
    )
