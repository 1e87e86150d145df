"""Every route that reads or writes a mother's data writes an audit row naming her (issue 18).

Derived from the app's routes: each operation is called once, as a role the route x role table
(tests/test_authorization.py) allows, on one mother who has something of every kind (a visit
with queue places, a critical lab report with a PDF, an alert, a task, readings, a health plan,
a review ...), and must answer 2xx and leave at least one new audit row whose ``mother_id`` is
hers. A route that touches no mother's data is in ``EXEMPT`` with the reason; a new route is in
neither, so it fails here until someone decides which it is (and, for most, ``CASES`` says how
to call it).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.main import api_routes
from tests.helpers.access import EXPECTED
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY, mother_body
from tests.helpers.lab import Lab
from tests.helpers.messages import fhir_bundle, oru
from tests.helpers.mothers import enrol
from tests.helpers.visits import TODAY, TUESDAY, book, open_session, order_number

# Routes that touch no mother's data, each with why. Everything else must audit her.
EXEMPT: dict[str, str] = {
    # The service itself.
    "GET /healthz": "liveness: no data",
    "GET /readyz": "readiness: no data",
    "GET /metrics": "counters and timings: no record",
    # Accounts: staff and integration clients, not mothers (logins are audited on their own).
    "POST /v1/auth/login": "a staff login: audited as a login (auth), about no mother",
    "POST /v1/auth/logout": "the caller's own token",
    "GET /v1/auth/me": "the caller's own account",
    "POST /v1/users": "a staff account (audited as user.create)",
    "GET /v1/users": "staff accounts",
    "GET /v1/users/{user_id}": "a staff account",
    "PATCH /v1/users/{user_id}": "a staff account (audited as user.update)",
    "POST /v1/users/{user_id}/revoke-tokens": "a staff account's tokens (audited)",
    "POST /v1/api-clients": "an integration client (audited)",
    "GET /v1/api-clients": "integration clients",
    "POST /v1/api-clients/{client_id}/deactivate": "an integration client (audited)",
    "POST /v1/api-clients/{client_id}/rotate-signing-secret": "a client's secret (audited)",
    # Butlers as staff: their records, rosters, leave and caseload counts.
    "POST /v1/butlers": "a butler's staff record (audited as butler.create)",
    "GET /v1/butlers": "butlers' staff records",
    "GET /v1/butlers/me": "the calling butler's own staff record",
    "GET /v1/butlers/{butler_id}": "a butler's staff record",
    "PATCH /v1/butlers/{butler_id}": "a butler's staff record (audited)",
    "PUT /v1/butlers/{butler_id}/roster": "a butler's shifts (audited)",
    "POST /v1/butlers/{butler_id}/leaves": "a butler's leave (audited as butler.leave); the "
    "covers it changes are re-planned at booking, each on the mother's visit",
    "GET /v1/butlers/{butler_id}/leaves": "a butler's leave",
    "GET /v1/caseloads": "counts per butler and grade: no mother named",
    # The clinic's set-up: timetables, catalogues, rules.
    "GET /v1/care-plan-guidelines": "the clinic's guidelines: no mother",
    "POST /v1/clinic-sessions": "the clinic's timetable",
    "GET /v1/clinic-sessions": "the clinic's timetable (booked counts only)",
    "GET /v1/clinic-sessions/{session_id}/forecast": "a session's minutes per station type",
    "GET /v1/stations": "the stations",
    "POST /v1/stations": "a station (audited as station.create)",
    "PATCH /v1/stations/{code}": "a station's settings (audited); closing one moves the "
    "mothers waiting there, and each move is a queue.transfer row on her trail",
    "GET /v1/exam-types": "the exam catalogue",
    "PATCH /v1/exam-types/{code}": "the exam catalogue (audited)",
    "GET /v1/clinical-rules": "the rules in force: no mother",
    # Waiting-room screens: a ticket and a masked name, shown to the whole room, polled every
    # few seconds; her record is not on them.
    "GET /v1/boards": "the list of screens: no mother",
    "GET /v1/stations/{code}/board": "the waiting room's screen: tickets and masked names",
    "GET /v1/stations/{code}/board.html": "the waiting room's screen: tickets and masked names",
    # Aggregates and metadata.
    "GET /v1/alerts/indicators": "the register's rates and medians: no mother named",
    "GET /v1/integrations/messages": "lab messages' delivery metadata (ids, states, outcome "
    "text): no patient field; processing one is audited on each report's mother",
    "GET /v1/me/events": "what changed (a kind and an id), never the data: that is read "
    "through /v1/me/assignments and the other audited routes",
    "GET /v1/me/events/stream": "as GET /v1/me/events, pushed",
    "GET /v1/audit-events": "the trail itself (ids and field names only), read by admins",
}

# Who calls a route when its case does not say: the first of these the table allows.
PREFERENCE = ["doctor", "frontdesk", "admin", "butler1", "nutritionist", "station", "lab"]

Ids = dict[str, Any]


@dataclass
class Case:
    who: str | None = None
    body: Callable[[Ids], Any] | None = None
    mother: str = "mother_id"  # the key in the world of the mother whose row is expected
    if_match: bool | str = False  # send the ETag a GET of the path (or of this one) answers
    prepare: Callable[[Api, Lab, Ids], Awaitable[None]] | None = None
    headers: Callable[[Ids], dict[str, str]] | None = None
    call: Callable[[Api, Lab, Ids], Awaitable[httpx.Response]] | None = None
    params: dict[str, str] = field(default_factory=dict)


def _reason(_: Ids) -> dict[str, str]:
    return {"reason": "checked with her at the desk"}


async def _second_visit(api: Api, lab: Lab, ids: Ids) -> None:
    """A booked visit of hers on another day, for the booking routes."""
    if "booked_id" not in ids:
        tuesday = await open_session(api, day=TUESDAY)
        later = await open_session(api, day="2026-12-08")
        ids["later_session_id"] = later["id"]
        booked = await book(api, ids["mother_id"], tuesday["id"])
        assert booked.status_code == 201, booked.text
        ids["booked_id"] = booked.json()["id"]


async def _book(api: Api, lab: Lab, ids: Ids) -> None:
    await _second_visit(api, lab, ids)
    ids["friday_session_id"] = (await open_session(api, day="2026-12-04"))["id"]


async def _fresh_mother(api: Api, lab: Lab, ids: Ids) -> None:
    """Another mother of butler1's, enrolled only, for check-in."""
    other = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id), serial="102")
    ids["other_id"], ids["other_mrn"] = other["id"], other["mrn"]


async def _not_come(api: Api, lab: Lab, ids: Ids) -> None:
    """Two mothers booked today who do not come; then the day ends."""
    for key, serial in (("third", "103"), ("fourth", "105")):
        her = await enrol(api, primary_butler_id=ids["butler2"], serial=serial)
        booked = await book(api, her["id"], ids["today_session_id"])
        assert booked.status_code == 201, booked.text
        ids[f"{key}_id"], ids[f"{key}_visit_id"] = her["id"], booked.json()["id"]
    ids["clock"].advance(timedelta(hours=9))  # 19:00 in Shanghai: the session is over


async def _arrived(api: Api, lab: Lab, ids: Ids) -> None:
    """A mother checked in today, for the visit's start."""
    her = await enrol(api, primary_butler_id=ids["butler1"], serial="106")
    visit = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": her["mrn"]}
    )
    assert visit.status_code == 200, visit.text
    ids["fifth_id"], ids["fifth_visit_id"] = her["id"], visit.json()["id"]


async def _waiting_elsewhere(api: Api, lab: Lab, ids: Ids) -> None:
    """A place of hers still waiting, at another station than the one called later."""
    path = f"/v1/visits/{ids['visit_id']}/queue"
    places = (await api.client.get(path, headers=api.auth("doctor"))).json()["places"]
    waiting = [p for p in places if p["state"] == "waiting" and p["station"] != ids["code"]]
    assert waiting, places
    ids["second_entry_id"] = waiting[0]["id"]
    made = await api.client.post(  # a second room of that kind to move her to
        "/v1/stations",
        headers=api.auth("admin"),
        json={"code": "AUD2", "name": "Second room", "station_type": waiting[0]["station_type"]},
    )
    assert made.status_code == 201, made.text
    ids["transfer_to"] = "AUD2"


async def _called_elsewhere(api: Api, lab: Lab, ids: Ids) -> None:
    """Her place at the second room, called (a no-show is of a mother called who did not
    come)."""
    called = await api.client.post(
        "/v1/stations/AUD2/call-next", headers=api.auth("admin"), json={"room": 1}
    )
    assert called.status_code == 200, called.text
    ids["second_entry_id"] = called.json()["called"]["entry"]["id"]


async def _started_again(api: Api, lab: Lab, ids: Ids) -> None:
    """Her exam began again (the undo before took its start back), so it can be finished."""
    started = await api.client.post(
        f"/v1/queue-entries/{ids['entry_id']}/start", headers=api.auth("admin")
    )
    assert started.status_code == 200, started.text


async def _newest_plan(api: Api, lab: Lab, ids: Ids) -> None:
    path = f"/v1/mothers/{ids['mother_id']}/health-plan"
    ids["n"] = (await api.client.get(path, headers=api.auth("doctor"))).json()["latest_version"]


async def _flag(api: Api, lab: Lab, ids: Ids) -> None:
    """Her grade goes to red with purple beside it: butler1 (no infection control) no longer
    fits her."""
    path = f"/v1/mothers/{ids['mother_id']}"
    etag = (await api.client.get(path, headers=api.auth("doctor"))).headers["etag"]
    changed = await api.client.post(
        f"{path}/risk-assessments",
        headers={**api.auth("doctor"), "If-Match": etag},
        json={"grade": "red", "purple": True, "reason": "severe anaemia; hepatitis B"},
    )
    assert changed.status_code in (200, 201), changed.text


async def _add_exam(api: Api, lab: Lab, ids: Ids) -> httpx.Response:
    """An exam not yet ordered for her visit (the first the catalogue lets us add)."""
    ordered = {o["exam_code"] for o in ids["visit"]["exam_orders"]}
    types = (await api.client.get("/v1/exam-types", headers=api.auth("doctor"))).json()["items"]
    response = None
    for code in [t["code"] for t in types if t["code"] not in ordered]:
        response = await api.client.post(
            f"/v1/visits/{ids['visit_id']}/exam-orders",
            headers=api.auth("doctor"),
            json={"exam_code": code},
        )
        if response.status_code == 201:
            break
    assert response is not None
    return response


async def _cover(api: Api, today_session_id: str) -> dict[str, str]:
    """butler1 covers a visit today: the mother's own butler (butler2) is on leave. Made
    first, while the day's slots are free."""
    b2 = str(api.staff.butlers["butler2"].id)
    covered = await enrol(api, primary_butler_id=b2, serial="104")
    leave = await api.client.post(
        f"/v1/butlers/{b2}/leaves",
        headers=api.auth("admin"),
        json={"starts_on": TODAY, "ends_on": TODAY, "reason": "ill"},
    )
    assert leave.status_code == 201, leave.text
    visit = (await book(api, covered["id"], today_session_id)).json()
    assert visit["accompanying_butler_id"] == str(api.staff.butlers["butler1"].id), str(visit)
    return {"covered_id": covered["id"], "cover_visit_id": visit["id"]}


async def _her_link(api: Api, lab: Lab, ids: Ids) -> None:
    made = await api.client.post(
        f"/v1/visits/{ids['visit_id']}/her-link", headers=api.auth("frontdesk")
    )
    assert made.status_code in (200, 201), made.text
    ids["her_token"] = made.json()["url"].rsplit("/", 1)[-1].split("#")[-1].split("=")[-1]


async def _held_report(api: Api, lab: Lab, ids: Ids) -> None:
    """A result naming her with an order number nobody placed: held, she a candidate."""
    body = oru(
        control_id="AUDIT-HELD",
        mrn=ids["mrn"],
        order="NO-SUCH-ORDER",
        filler="F-HELD",
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||120|g/L|110-150|N|||F"],
    )
    assert (await lab.hl7(body))[0] == "AA"


async def _overdue(api: Api, lab: Lab, ids: Ids) -> None:
    ids["clock"].advance(timedelta(minutes=45))


async def _hl7(api: Api, lab: Lab, ids: Ids) -> httpx.Response:
    body = oru(
        control_id="AUDIT-HL7",
        mrn=ids["mrn"],
        order=order_number(ids["visit"], "cbc"),
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||64|g/L|110-150|LL|||F"],
    )
    return await api.client.post(
        "/v1/integrations/lab/hl7v2", content=body, headers=lab.headers(body)
    )


async def _fhir(api: Api, lab: Lab, ids: Ids) -> httpx.Response:
    body = fhir_bundle(order=order_number(ids["visit"], "urine"), mrn=ids["mrn"], report_id="A-1")
    headers = {**lab.headers(body), "content-type": "application/fhir+json"}
    return await api.client.post("/v1/integrations/lab/fhir", content=body, headers=headers)


CASES: dict[str, Case] = {
    "PATCH /v1/mothers/{mother_id}": Case(
        who="doctor", if_match=True, body=lambda _: {"language": "en"}
    ),
    "POST /v1/mothers": Case(
        who="frontdesk",
        body=lambda _: mother_body(serial="109"),
        mother="created",
    ),
    "POST /v1/mothers/{mother_id}/risk-assessments": Case(
        body=lambda _: {"grade": "yellow", "purple": False, "reason": "anaemia on the CBC"},
        if_match="/v1/mothers/{mother_id}",
    ),
    "POST /v1/mothers/{mother_id}/primary-butler": Case(
        who="frontdesk",
        body=lambda ids: {"butler_id": ids["butler2"], "reason": "she asked for another"},
    ),
    "POST /v1/butlers/{butler_id}/release": Case(
        who="frontdesk", body=lambda _: {"reason": "leaving the clinic", "dry_run": True}
    ),
    "POST /v1/mothers/{mother_id}/care-plan/choices": Case(
        body=lambda _: {"choice": "prenatal_screening", "option": "down_screening"}
    ),
    "POST /v1/mothers/{mother_id}/care-plan/declines": Case(
        body=lambda _: {"exam_code": "hiv", "reason": "tested elsewhere this year"}
    ),
    "POST /v1/mothers/{mother_id}/care-plan/outside-results": Case(
        body=lambda _: {"exam_code": "hbsag", "result_date": "2026-11-20", "source": "MCH"}
    ),
    "POST /v1/mothers/{mother_id}/care-plan/indications": Case(
        body=lambda _: {"code": "multiple_pregnancy", "reason": "two sacs on the early scan"}
    ),
    "POST /v1/visits": Case(
        who="frontdesk",
        prepare=_book,
        body=lambda ids: {"mother_id": ids["mother_id"], "session_id": ids["friday_session_id"]},
    ),
    "POST /v1/visits/no-show-sweep": Case(
        who="frontdesk", body=lambda _: {"day": TODAY}, mother="fourth_id"
    ),
    "POST /v1/visits/{visit_id}/reschedule": Case(
        who="frontdesk",
        prepare=_second_visit,
        body=lambda ids: {"session_id": ids["later_session_id"], "reason": "she is away"},
    ),
    "POST /v1/visits/{visit_id}/cancel": Case(who="frontdesk", prepare=_second_visit, body=_reason),
    "POST /v1/visits/{visit_id}/no-show": Case(
        who="frontdesk", prepare=_not_come, mother="third_id"
    ),
    "POST /v1/visits/{visit_id}/start": Case(prepare=_arrived, mother="fifth_id"),
    "GET /v1/assignments/flagged": Case(who="frontdesk", prepare=_flag),
    "POST /v1/visits/{visit_id}/exam-orders": Case(call=_add_exam),
    "POST /v1/check-ins": Case(
        who="frontdesk",
        prepare=_fresh_mother,
        body=lambda ids: {"mrn": ids["other_mrn"]},
        mother="other_id",
    ),
    "GET /v1/her/visit": Case(
        prepare=_her_link, headers=lambda ids: {"X-Her-Link": ids["her_token"]}
    ),
    "POST /v1/stations/{code}/call-next": Case(who="admin", body=lambda _: {"room": 1}),
    "POST /v1/queue-entries/{entry_id}/recall": Case(who="admin"),
    "POST /v1/queue-entries/{entry_id}/start": Case(who="admin"),
    "POST /v1/queue-entries/{entry_id}/undo": Case(who="admin", body=lambda _: {"action": "start"}),
    "POST /v1/queue-entries/{entry_id}/finish": Case(who="admin", prepare=_started_again),
    "POST /v1/queue-entries/{entry_id}/glucose-drink": Case(
        who="admin", body=lambda ids: {"started_at": ids["now"]}
    ),
    "POST /v1/queue-entries/{entry_id}/no-show": Case(who="admin", prepare=_called_elsewhere),
    "POST /v1/queue-entries/{entry_id}/transfer": Case(
        who="admin", prepare=_waiting_elsewhere, body=lambda ids: {"station": ids["transfer_to"]}
    ),
    "POST /v1/exam-orders/{order_id}/cancel": Case(who="frontdesk", body=_reason),
    "POST /v1/visits/{visit_id}/urgent": Case(body=lambda _: {"urgent": True, "reason": "pain"}),
    "POST /v1/integrations/lab/hl7v2": Case(call=_hl7),
    "POST /v1/integrations/lab/fhir": Case(call=_fhir),
    "GET /v1/reconciliation": Case(who="frontdesk", prepare=_held_report),
    "POST /v1/reports/{report_id}/pick-up": Case(who="butler1", body=lambda _: {"place": "Lab"}),
    "POST /v1/reports/{report_id}/deliver": Case(
        who="butler1", body=lambda _: {"note": "Handed over"}
    ),
    "POST /v1/reports/{report_id}/detach": Case(who="frontdesk", body=_reason),
    "POST /v1/reports/{report_id}/attach": Case(
        who="frontdesk",
        body=lambda ids: {
            "exam_order_id": ids["cbc_order_id"],
            "reason": "her order; the lab misspelt her name",
            "override": True,
        },
    ),
    "POST /v1/alerts/escalate": Case(who="admin", prepare=_overdue),
    "POST /v1/alerts/{alert_id}/acknowledge": Case(
        body=lambda _: {"read_back": "Hb 62 g/L", "action_taken": "admitted for transfusion"}
    ),
    "POST /v1/alerts/{alert_id}/mother-contacted": Case(
        body=lambda _: {"note": "called her, on her way"}
    ),
    "POST /v1/mothers/{mother_id}/measurements": Case(
        body=lambda _: {"readings": [{"kind": "weight", "value": 61, "unit": "kg"}]}
    ),
    "POST /v1/measurements/{measurement_id}/corrections": Case(
        body=lambda _: {"value": 61.5, "unit": "kg", "reason": "read the scale again"}
    ),
    "POST /v1/rule-firings/{firing_id}/decision": Case(
        body=lambda _: {"decision": "confirmed", "note": "anaemia: iron started"}
    ),
    "POST /v1/mothers/{mother_id}/health-plan": Case(
        body=lambda _: {}, if_match="/v1/mothers/{mother_id}/health-plan"
    ),
    "POST /v1/mothers/{mother_id}/health-plan/versions/{n}/sign": Case(
        prepare=_newest_plan, if_match="/v1/mothers/{mother_id}/health-plan"
    ),
    "POST /v1/mothers/{mother_id}/health-plan/versions": Case(
        if_match="/v1/mothers/{mother_id}/health-plan",
        body=lambda _: {
            "note": "walks",
            "changes": [{"section": "follow_ups", "code": "walk", "set": {"title": "Walk daily"}}],
        },
    ),
    "POST /v1/mothers/{mother_id}/nutrition-assessments": Case(
        who="nutritionist", body=lambda _: {"diet": "three meals, white rice at each"}
    ),
    "POST /v1/reports/{report_id}/review": Case(
        body=lambda _: {"interpretation": "Hb low", "advice_for_mother": "Take the iron daily."}
    ),
    "POST /v1/mothers/{mother_id}/sms": Case(
        who="frontdesk", body=lambda _: {"template": "call_back"}
    ),
    "POST /v1/mothers/{mother_id}/tasks": Case(
        who="frontdesk",
        body=lambda _: {"title": "Call her about the iron", "due_at": "2026-11-29T02:00:00Z"},
    ),
    "POST /v1/me/tasks/{task_id}/complete": Case(who="butler1", body=lambda _: {"note": "done"}),
    "POST /v1/me/covers/{visit_id}/accept": Case(who="butler1", mother="covered_id"),
    "POST /v1/me/covers/{visit_id}/decline": Case(
        who="butler1",
        body=lambda _: {"reason": "double-booked"},
        mother="covered_id",
    ),
    "POST /v1/worklist/{item_id}/acknowledge": Case(body=lambda _: {"note": "seen, called her"}),
}

# The path parameter each case's route takes, where the world's name for it differs.
PATH_IDS: dict[str, dict[str, str]] = {
    "POST /v1/visits/{visit_id}/reschedule": {"visit_id": "booked_id"},
    "POST /v1/visits/{visit_id}/cancel": {"visit_id": "booked_id"},
    "POST /v1/visits/{visit_id}/no-show": {"visit_id": "third_visit_id"},
    "POST /v1/visits/{visit_id}/start": {"visit_id": "fifth_visit_id"},
    "POST /v1/me/covers/{visit_id}/accept": {"visit_id": "cover_visit_id"},
    "POST /v1/me/covers/{visit_id}/decline": {"visit_id": "cover_visit_id"},
    "POST /v1/queue-entries/{entry_id}/no-show": {"entry_id": "second_entry_id"},
    "POST /v1/queue-entries/{entry_id}/transfer": {"entry_id": "second_entry_id"},
    "POST /v1/queue-entries/{entry_id}/glucose-drink": {"entry_id": "ogtt_entry_id"},
    "POST /v1/butlers/{butler_id}/release": {"butler_id": "butler1"},
}

# Calls that change what later calls find run in this order, after everything else.
LAST = [
    "POST /v1/queue-entries/{entry_id}/transfer",
    "POST /v1/queue-entries/{entry_id}/no-show",
    "POST /v1/stations/{code}/call-next",
    "POST /v1/queue-entries/{entry_id}/recall",
    "POST /v1/queue-entries/{entry_id}/start",
    "POST /v1/queue-entries/{entry_id}/undo",
    "POST /v1/queue-entries/{entry_id}/finish",
    "POST /v1/queue-entries/{entry_id}/glucose-drink",
    "POST /v1/exam-orders/{order_id}/cancel",
    "POST /v1/visits/{visit_id}/reschedule",
    "POST /v1/visits/{visit_id}/cancel",
    "POST /v1/alerts/escalate",
    "POST /v1/alerts/{alert_id}/mother-contacted",
    "POST /v1/alerts/{alert_id}/acknowledge",
    "POST /v1/reports/{report_id}/detach",
    "POST /v1/reports/{report_id}/attach",
    "POST /v1/mothers/{mother_id}/primary-butler",
    "DELETE /v1/visits/{visit_id}/her-link",
    "POST /v1/visits/{visit_id}/start",
    "POST /v1/visits/{visit_id}/complete",
    "GET /v1/assignments/flagged",
    # The clock moves past the day's end: the visits not come become no-shows.
    "POST /v1/visits/{visit_id}/no-show",
    "POST /v1/visits/no-show-sweep",
]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def operations() -> list[str]:
    return [
        f"{method} {route.path}"
        for route in api_routes()
        for method in sorted(route.methods - {"HEAD"})
    ]


def _ordered(ops: list[str]) -> list[str]:
    """Reads first, then writes, then the ``LAST`` ones in their order."""

    def key(op: str) -> tuple[int, int]:
        if op in LAST:
            return (2, LAST.index(op))
        return (0 if op.startswith("GET ") else 1, 0)

    return sorted(ops, key=key)


async def _world(api: Api, lab: Lab, clock: FrozenClock) -> Ids:
    """One mother of butler1's, checked in today, with something of every kind."""
    today = await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    cover = await _cover(api, today["id"])
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    visit = (
        await api.client.post(
            "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
        )
    ).json()
    pdf = base64.b64encode(PDF).decode()
    assert (
        await lab.hl7(
            oru(
                control_id="AUDIT-1",
                mrn=mother["mrn"],
                order=order_number(visit),
                obx=[
                    "OBX|1|NM|718-7^Hemoglobin^LN||62|g/L|110-150|LL|||F",
                    f"OBX|2|ED|PDF^Report PDF^L||LIS^AP^PDF^Base64^{pdf}||||||F",
                ],
            )
        )
    )[0] == "AA"
    doctor, desk = api.auth("doctor"), api.auth("frontdesk")
    (report,) = (await api.client.get("/v1/reports", headers=doctor)).json()["items"]
    detail = (await api.client.get(f"/v1/reports/{report['id']}", headers=doctor)).json()
    (alert,) = (await api.client.get("/v1/alerts", headers=doctor)).json()["items"]
    task = await api.client.post(
        f"/v1/mothers/{mother['id']}/tasks",
        headers=desk,
        json={"title": "Bring the admission form", "due_at": "2026-11-29T02:00:00Z"},
    )
    places = (await api.client.get(f"/v1/visits/{visit['id']}/queue", headers=doctor)).json()[
        "places"
    ]
    reading = await api.client.post(
        f"/v1/mothers/{mother['id']}/measurements",
        headers=doctor,
        json={"readings": [{"kind": "weight", "value": 60, "unit": "kg"}]},
    )
    assert reading.status_code == 201, reading.text
    plan = await api.client.post(f"/v1/mothers/{mother['id']}/health-plan", headers=doctor, json={})
    assert plan.status_code in (200, 201), plan.text
    firings = (
        await api.client.get(f"/v1/mothers/{mother['id']}/rule-firings", headers=doctor)
    ).json()["items"]
    items = (await api.client.get("/v1/worklist", headers=doctor)).json()["items"]
    mine = [i for i in items if i.get("mother_id") == mother["id"]]
    messages = (
        await api.client.get("/v1/integrations/messages", headers=api.auth("admin"))
    ).json()["items"]
    ogtt = [p for p in places if "ogtt" in p["exams"]]
    first = ogtt[0] if ogtt else places[0]
    second = places[1] if len(places) > 1 else first
    stations = (await api.client.get("/v1/stations", headers=api.auth("admin"))).json()["items"]
    ids: Ids = {
        "clock": clock,
        "now": clock.now().isoformat(),
        "mother_id": mother["id"],
        "mrn": mother["mrn"],
        "visit": visit,
        "visit_id": visit["id"],
        "today_session_id": today["id"],
        "order_id": next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "urine"),
        "cbc_order_id": next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "cbc"),
        "entry_id": first["id"],
        "second_entry_id": second["id"],
        "ogtt_entry_id": first["id"],
        "code": first["station"],
        "transfer_to": next(
            (
                st["code"]
                for st in stations
                if st["station_type"] == second["station_type"] and st["code"] != second["station"]
            ),
            second["station"],
        ),
        "report_id": report["id"],
        "attachment_id": detail["attachments"][0]["id"],
        "alert_id": alert["id"],
        "task_id": task.json()["id"],
        "measurement_id": reading.json()["items"][0]["id"],
        "firing_id": next(
            (f["id"] for f in firings if f["state"] == "suggested"), str(uuid.uuid4())
        ),
        "item_id": next((i["id"] for i in mine if i.get("alert_id") is None), str(uuid.uuid4())),
        "message_id": messages[-1]["id"] if messages else str(uuid.uuid4()),
        "n": "1",
        "butler1": str(api.staff.butlers["butler1"].id),
        "butler2": str(api.staff.butlers["butler2"].id),
        "butler_id": str(api.staff.butlers["butler1"].id),
        **cover,
    }
    return ids


def _caller(op: str, case: Case) -> str:
    if case.who is not None:
        return case.who
    rule = EXPECTED.get(op)
    allowed = rule if isinstance(rule, set) else set()
    return next((r for r in PREFERENCE if r in allowed), "admin")


def _auth(api: Api, lab: Lab, who: str) -> dict[str, str]:
    return {"X-API-Key": LAB_KEY} if who == "lab" else api.auth(who)


async def _rows_about(factory: async_sessionmaker[AsyncSession], mother_id: str) -> int:
    async with factory() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.mother_id == uuid.UUID(mother_id))
        )
        return int(found or 0)


async def _call(api: Api, lab: Lab, op: str, case: Case, ids: Ids) -> httpx.Response:
    if case.call is not None:
        return await case.call(api, lab, ids)
    method, path = op.split(" ", 1)
    names = PATH_IDS.get(op, {})
    url = re.sub(r"\{([^}]+)\}", lambda m: str(ids[names.get(m.group(1), m.group(1))]), path)
    headers = _auth(api, lab, _caller(op, case))
    if case.headers is not None:
        headers = {**headers, **case.headers(ids)}
    if case.if_match:
        of = url if case.if_match is True else str(case.if_match).format(**ids)
        etag = (await api.client.get(of, headers=headers)).headers.get("etag")
        assert etag, f"{op}: no ETag to send"
        headers = {**headers, "If-Match": etag}
    body = case.body(ids) if case.body is not None else None
    return await api.client.request(method, url, headers=headers, json=body, params=case.params)


async def test_every_route_that_touches_a_mother_writes_an_audit_row_naming_her(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    ops = operations()
    assert sorted(set(EXEMPT) - set(ops)) == []  # an exemption for a route that is gone
    assert sorted(set(CASES) - set(ops)) == []
    ids = await _world(api, lab, clock)
    checked, failed = 0, []
    for op in _ordered([o for o in ops if o not in EXEMPT]):
        case = CASES.get(op, Case())
        if case.prepare is not None:
            await case.prepare(api, lab, ids)
        mother = ids.get(case.mother) if case.mother != "created" else None
        before = await _rows_about(session_factory, mother) if mother else 0
        response = await _call(api, lab, op, case, ids)
        if not 200 <= response.status_code < 300:
            failed.append(f"{op}: {response.status_code} {response.text[:300]}")
            continue
        if case.mother == "created":
            mother = response.json()["id"]
        assert mother is not None
        if await _rows_about(session_factory, mother) <= before:
            failed.append(f"{op}: no audit row names her")
        checked += 1
    assert failed == [], "\n".join(failed)
    assert checked >= 80  # the routes were found and called (a rename would empty the list)
