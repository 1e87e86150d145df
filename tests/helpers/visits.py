"""Clinic sessions, bookings and check-ins through the API."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.mothers import enrol

TODAY = "2026-11-28"  # the test clock: 10:00 in Shanghai
TUESDAY = "2026-12-01"


async def open_session(
    api: Api,
    day: str = TUESDAY,
    starts: str = "08:00",
    ends: str = "12:00",
    per_hour: int = 8,
    **extra: Any,
) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/clinic-sessions",
        headers=api.auth("admin"),
        json={
            "session_date": day,
            "starts_at": starts,
            "ends_at": ends,
            "per_hour": per_hour,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    first: dict[str, Any] = response.json()["items"][0]
    return first


async def book(api: Api, mother_id: str, session_id: str, **extra: Any) -> Any:
    return await api.client.post(
        "/v1/visits",
        headers=api.auth("frontdesk"),
        json={"mother_id": mother_id, "session_id": session_id, **extra},
    )


async def check_in(api: Api, **body: Any) -> Any:
    return await api.client.post("/v1/check-ins", headers=api.auth("frontdesk"), json=body)


async def checked_in_mother(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A mother checked in today, with her exam orders (cbc among them)."""
    await open_session(api, day="2026-11-28")
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    visit = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
    )
    return mother, visit.json()


def order_number(visit: dict[str, Any], code: str = "cbc") -> str:
    return next(o["order_number"] for o in visit["exam_orders"] if o["exam_code"] == code)
