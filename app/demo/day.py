"""The demo clinic's day (issue 17): today, as the console's screens and browser tests show it.

Played through the service's own REST API, in process, by the people who would do it (the desk
checks in, a station calls and measures, the lab posts signed HL7, a doctor drafts and signs a
plan), so that everything in it obeys the same rules as real use: queues, alerts, the review
worklist, the butlers' feed and the audit trail all come out of the calls, none is written by
hand. What it leaves, today in clinic time:

- six mothers booked today; five checked in and waiting at several stations: one fasting at
  the blood draw (her OGTT), one flagged urgent, one purple (infection control); the sixth is
  still to arrive;
- one mother called into vitals room 1 (another was weighed and measured before her);
- a final blood count ready for her butler to pick up, on the doctors' review worklist;
- a critical haemoglobin: an open critical alert, paged to her butler;
- a signed health-management plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from app.core.settings import Settings
from app.reports.webhooks import sign

# The order the desk checks them in: their tickets come in this order.
CHECK_INS = ("MRN0002", "MRN0003", "MRN0004", "MRN0005", "MRN0001")
BOOKED_ONLY = "MRN0006"  # booked today, not arrived yet: the desk's next check-in
URGENT = "MRN0004"  # red grade, 34 weeks: reduced movements (the demo's reason)
READY = "MRN0003"  # her blood count is final and waits for her butler
CRITICAL = "MRN0004"  # a haemoglobin below the critical limit
PLAN = "MRN0002"  # a signed health-management plan
BLOOD_EXAMS = ("cbc", "hbsag", "abo_rh", "syphilis", "hiv", "liver_kidney", "fasting_glucose")


LATE_DAY_REASON = "demo day played late in the clinic's day (its rooms close before a visit ends)"


class DemoDayFailed(RuntimeError):
    """A call of the demo day was refused: the seed stops rather than leave half a day."""


def _expect(response: httpx.Response, who: str, *, ok: int) -> httpx.Response:
    if response.status_code != ok:
        request = response.request
        raise DemoDayFailed(
            f"{who}: {request.method} {request.url.path} -> {response.status_code} {response.text}"
        )
    return response


class _Clinic:
    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.tokens: dict[str, str] = {}

    async def send(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """The request as ``who``, whatever it answers."""
        headers = {**kw.pop("headers", {}), **(await self._auth(who))}
        return await self.client.request(method, path, headers=headers, **kw)

    async def call(
        self, who: str, method: str, path: str, *, ok: int = 200, **kw: Any
    ) -> httpx.Response:
        return _expect(await self.send(who, method, path, **kw), who, ok=ok)

    async def json(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return (await self.call(who, method, path, **kw)).json()

    async def _auth(self, who: str) -> dict[str, str]:
        if who == "lab":
            return {"X-API-Key": self.settings.demo_lab_api_key}
        if who not in self.tokens:
            response = await self.client.post(
                "/v1/auth/login",
                json={"username": who, "password": self.settings.demo_password},
            )
            if response.status_code != 200:
                raise DemoDayFailed(f"login {who}: {response.status_code} {response.text}")
            self.tokens[who] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def hl7(self, message: str) -> None:
        body = message.encode()
        msg_id = f"msg_demo_{uuid.uuid4().hex}"
        at = int(datetime.now().timestamp())
        await self.call(
            "lab",
            "POST",
            "/v1/integrations/lab/hl7v2",
            content=body,
            headers={
                "content-type": "application/hl7-v2",
                "webhook-id": msg_id,
                "webhook-timestamp": str(at),
                "webhook-signature": sign(self.settings.demo_lab_secret, msg_id, at, body),
            },
        )


def _blood_order(visit: Mapping[str, Any]) -> str:
    orders = {o["exam_code"]: o["order_number"] for o in visit["exam_orders"]}
    code = next((c for c in BLOOD_EXAMS if c in orders), None)
    if code is None:
        raise DemoDayFailed(f"no blood exam ordered today for {visit['id']}: {sorted(orders)}")
    return str(orders[code])


def _oru(control_id: str, mrn: str, order: str, hgb: int, flag: str, at: datetime) -> str:
    stamp = f"{at:%Y%m%d%H%M%S}"
    segments = [
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|{stamp}||ORU^R01|{control_id}|P|2.5",
        f"PID|1||{mrn}^^^HOSP^MR||DEMO^MOTHER",
        f"OBR|1|{order}|F-{control_id}|24317-0^Hemogram^LN|||{stamp}|||||||||||||||{stamp}|||F",
        f"OBX|1|NM|718-7^Hemoglobin^LN||{hgb}|g/L|110-150|{flag}|||F",
        "OBX|2|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F",
    ]
    return "\r".join(segments) + "\r"


async def play_day(transport: httpx.AsyncBaseTransport, settings: Settings) -> list[str]:
    """Play the demo day through the API; returns what it did, a line each."""
    done: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        clinic = _Clinic(client, settings)
        # Booked into today's session; all but one have arrived.
        today = datetime.now(settings.tz).date().isoformat()
        sessions = await clinic.json(
            "frontdesk", "GET", "/v1/clinic-sessions", params={"from": today, "to": today}
        )
        session_id = sessions["items"][0]["id"]
        mothers = await clinic.json("frontdesk", "GET", "/v1/mothers", params={"limit": 50})
        ids = {m["mrn"]: m["id"] for m in mothers["items"]}
        for mrn in (*CHECK_INS, BOOKED_ONLY):  # the first hour with room (not one gone)
            body = {"mother_id": ids[mrn], "session_id": session_id}
            booked = await clinic.send("frontdesk", "POST", "/v1/visits", json=body)
            if booked.status_code == 409 and booked.json().get("type", "").endswith(
                "/station-over-capacity"
            ):
                # Played in the clinic day's last hour, when its rooms close before a whole
                # visit is done: the admin books her anyway, as a clinic would decide, audited.
                body |= {"override_capacity": True, "override_reason": LATE_DAY_REASON}
                await clinic.call("admin", "POST", "/v1/visits", ok=201, json=body)
            else:
                _expect(booked, "frontdesk", ok=201)
        done.append(f"booked today: {', '.join((*CHECK_INS, BOOKED_ONLY))}")
        visits: dict[str, dict[str, Any]] = {}
        for mrn in CHECK_INS:
            visits[mrn] = await clinic.json("frontdesk", "POST", "/v1/check-ins", json={"mrn": mrn})
        done.append(f"checked in: {', '.join(CHECK_INS)} ({BOOKED_ONLY} not yet arrived)")
        await clinic.call(
            "frontdesk",
            "POST",
            f"/v1/visits/{visits[URGENT]['id']}/urgent",
            json={"urgent": True, "reason": "胎动减少 reduced fetal movements"},
        )
        done.append(f"urgent: {URGENT}")

        # Vitals: the first mother called is weighed and measured, the next one called in.
        vit = "station-vitals"
        called = await clinic.json(vit, "POST", "/v1/stations/VIT/call-next", json={"room": 1})
        if called["called"] is not None:
            first = called["called"]["entry"]
            await clinic.call(vit, "POST", f"/v1/queue-entries/{first['id']}/start")
            readings = {
                "readings": [
                    {"kind": "weight", "value": 63.4, "unit": "kg"},
                    {"kind": "blood_pressure", "value": 118, "value2": 76, "unit": "mmHg"},
                ]
            }
            await clinic.call(vit, "POST", f"/v1/queue-entries/{first['id']}/finish", json=readings)
            done.append(f"measured at vitals: {first['ticket']}")
        called = await clinic.json(vit, "POST", "/v1/stations/VIT/call-next", json={"room": 1})
        if called["called"] is not None:
            done.append(f"called at vitals: {called['called']['entry']['ticket']}")

        # The lab: a normal blood count (ready for pickup, to review) and a critical one.
        now = datetime.now(settings.tz)
        await clinic.hl7(_oru("DAY-0001", READY, _blood_order(visits[READY]), 118, "N", now))
        done.append(f"report ready for pickup: {READY}")
        await clinic.hl7(_oru("DAY-0002", CRITICAL, _blood_order(visits[CRITICAL]), 62, "LL", now))
        done.append(f"critical alert: {CRITICAL}")

        # A health-management plan, drafted from her data and signed by the doctor.
        plan = f"/v1/mothers/{visits[PLAN]['mother_id']}/health-plan"
        draft = await clinic.call(
            "doctor", "POST", plan, ok=201, json={"note": "孕24周 首份健康管理计划"}
        )
        await clinic.call(
            "doctor",
            "POST",
            f"{plan}/versions/{draft.json()['latest_version']}/sign",
            headers={"If-Match": draft.headers.get("ETag", "")},
        )
        done.append(f"health plan signed: {PLAN}")
    return done
