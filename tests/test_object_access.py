"""Object-level authorization, generated from the app's routes: every route that takes the id
of something belonging to a mother (her record, visit, orders, queue places, reports, alerts,
tasks) refuses a butler who does not look after her, and serves the one who does."""

from __future__ import annotations

import re

from app.main import api_routes
from tests.helpers.api import Api
from tests.helpers.counts import COUNTS
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.visits import checked_in_mother, order_number

MOTHER_SCOPED = {
    "mother_id",
    "visit_id",
    "order_id",
    "entry_id",
    "report_id",
    "alert_id",
    "task_id",
}


async def world(api: Api, lab: Lab) -> dict[str, str]:
    """One mother of butler1's, with something of every kind."""
    mother, visit = await checked_in_mother(api)
    await lab.hl7(  # a critical value: a report and an alert
        oru(
            control_id="OBJ-1",
            mrn=mother["mrn"],
            order=order_number(visit),
            obx=["OBX|1|NM|718-7^Hemoglobin^LN||62|g/L|110-150|LL|||F"],
        )
    )
    doctor = api.auth("doctor")
    (report,) = (await api.client.get("/v1/reports", headers=doctor)).json()["items"]
    (alert,) = (await api.client.get("/v1/alerts", headers=doctor)).json()["items"]
    task = await api.client.post(
        f"/v1/mothers/{mother['id']}/tasks",
        headers=api.auth("frontdesk"),
        json={"title": "Bring the admission form", "due_at": "2026-11-29T02:00:00Z"},
    )
    queue = await api.client.get(f"/v1/visits/{visit['id']}/queue", headers=doctor)
    return {
        "mother_id": mother["id"],
        "visit_id": visit["id"],
        "order_id": next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "urine"),
        "entry_id": queue.json()["places"][0]["id"],
        "report_id": report["id"],
        "alert_id": alert["id"],
        "task_id": task.json()["id"],
    }


def scoped_routes() -> list[tuple[str, str, set[str]]]:
    out = []
    for route in api_routes():
        params = set(re.findall(r"\{([^}]+)\}", route.path))
        if params and params <= MOTHER_SCOPED:
            out += [(m, route.path, params) for m in sorted(route.methods - {"HEAD"})]
    return out


async def test_a_butler_reaches_only_her_own_mothers_things(api: Api, lab: Lab) -> None:
    ids = await world(api, lab)
    routes = scoped_routes()
    assert len(routes) >= 25  # the generator found the routes (a rename would empty it)
    leaked, unreachable = [], []
    for method, path, params in routes:
        url = path
        for name in params:
            url = url.replace("{" + name + "}", ids[name])
        other = await api.client.request(method, url, headers=api.auth("butler2"), json={})
        if 200 <= other.status_code < 300:
            leaked.append(f"{method} {path} -> {other.status_code}")
        if method == "GET":
            mine = await api.client.get(url, headers=api.auth("butler1"))
            if mine.status_code not in (200, 403):  # 403: not a butler's route at all
                unreachable.append(f"{method} {path} -> {mine.status_code}")
        COUNTS["object-level checks"] += 1
    assert leaked == []
    assert unreachable == []
