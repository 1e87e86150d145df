"""Every timestamp in every answer carries its offset: walked over real answers of every GET
route (a clinic day with a checked-in mother, a task, a queue call, a lab report and a
reading), under each role that reads them. SQLite hands back naive datetimes; none may reach
a client without saying which zone it is in."""

from __future__ import annotations

import re
from typing import Any

from app.main import api_routes
from tests.helpers.api import Api
from tests.helpers.feed import task
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.queues import call
from tests.helpers.visits import checked_in_mother, order_number

# An ISO 8601 date-time as JSON carries it; the offset group is what every one must have.
DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)
ROLES = ("admin", "frontdesk", "doctor", "butler1", "nutritionist")
SKIP = {"/metrics", "/v1/me/events/stream"}  # text, and a stream (its events: /v1/me/events)


def _timestamps(value: Any, where: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _timestamps(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _timestamps(item, f"{where}[{i}]")
    elif isinstance(value, str) and DATETIME.match(value):
        found.append((where, value))
    return found


async def _clinic_day(api: Api, lab: Lab) -> dict[str, str]:
    mother, visit = await checked_in_mother(api)
    await task(api, mother["id"])
    await call(api, "VIT")
    await lab.hl7(oru(control_id="TS-1", mrn=mother["mrn"], order=order_number(visit)))
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("frontdesk"))).json()["items"]
    return {
        "mother_id": mother["id"],
        "visit_id": visit["id"],
        "report_id": report["id"],
        "butler_id": str(api.staff.butlers["butler1"].id),
        "user_id": str(api.staff.users["butler1"].id),
        "code": "VIT",
        "n": "1",
    }


async def test_every_timestamp_in_every_answer_has_an_offset(api: Api, lab: Lab) -> None:
    ids = await _clinic_day(api, lab)
    naive: list[str] = []
    read = 0
    for route in api_routes():
        if "GET" not in route.methods or route.path in SKIP:
            continue
        names = re.findall(r"{(\w+)}", route.path)
        if any(name not in ids for name in names):
            continue
        path = route.path.format(**ids)
        for role in ROLES:
            response = await api.client.get(path, headers=api.auth(role))
            if not response.headers.get("content-type", "").startswith("application/json"):
                continue
            read += 1
            for where, value in _timestamps(response.json(), f"{role} GET {path}"):
                match = DATETIME.match(value)
                assert match is not None
                if match.group("offset") is None:
                    naive.append(f"{where} = {value}")
    assert read > 100
    assert naive == []
