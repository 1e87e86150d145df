"""Lab intake over HTTP: ACKs, matching, reconciliation, de-duplication, signatures, the pickup
lifecycle and critical values, with the database state checked after each."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import ApiClient
from app.cli import seal_secrets
from app.core.clock import FrozenClock
from app.core.secretbox import SecretBox, new_key
from app.core.settings import Settings
from app.notifications.models import OutboxMessage
from app.reports.models import InboundMessage, LabReport
from app.reports.webhooks import sign
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY
from tests.helpers.lab import HL7, Lab
from tests.helpers.messages import SECRET, fhir_bundle, fixture, oru, signed
from tests.helpers.problems import assert_problem
from tests.helpers.rows import count, topics
from tests.helpers.visits import checked_in_mother, order_number


async def test_a_final_result_reaches_the_butler(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="CTL-1", mrn=mother["mrn"], order=order_number(visit))
    assert await lab.hl7(body) == ("AA", "CTL-1")
    listed = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    (report,) = listed
    assert (report["mother_id"], report["status"], report["pickup_state"]) == (
        mother["id"],
        "final",
        "ready",
    )
    detail = (
        await api.client.get(f"/v1/reports/{report['id']}", headers=api.auth("butler1"))
    ).json()
    assert [(o["code"], o["numeric"], o["unit"]) for o in detail["observations"]] == [
        ("718-7", 112.0, "g/L"),
        ("777-3", 210.0, "10*9/L"),
    ]
    assert await topics(session_factory, "report.") == ["report.ready"]
    assert await topics(session_factory, "sms.") == ["sms.report_ready"]
    mine = (await api.client.get("/v1/me/mothers", headers=api.auth("butler1"))).json()["items"]
    assert [(m["mother_id"], m["open_reports"]) for m in mine] == [(mother["id"], 1)]
    async with session_factory() as session:
        sms = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.topic == "sms.report_ready")
        )
    assert sms is not None
    assert set(sms.payload) == {"report_id", "channel", "template"}  # no values, no diagnosis
    async with session_factory() as session:
        stored = await session.scalar(select(InboundMessage))
    assert stored is not None
    assert (stored.body, stored.state, stored.ack_code) == (body.encode(), "processed", "AA")

    picked = await api.client.post(
        f"/v1/reports/{report['id']}/pick-up",
        headers=api.auth("butler1"),
        json={"place": "Lab counter 2"},
    )
    assert picked.json()["pickup_state"] == "picked_up"
    delivered = await api.client.post(
        f"/v1/reports/{report['id']}/deliver",
        headers=api.auth("butler1"),
        json={"note": "All normal; explained at home by phone."},
    )
    assert delivered.json()["pickup_state"] == "delivered"
    again = await api.client.post(
        f"/v1/reports/{report['id']}/deliver", headers=api.auth("butler1"), json={"note": "twice"}
    )
    body_ = assert_problem(again, 409)
    assert body_["current_state"] == "delivered"
    assert_problem(
        await api.client.get(f"/v1/reports/{report['id']}", headers=api.auth("butler2")), 404
    )


async def test_unknown_order_and_patient_mismatch_go_to_reconciliation(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    assert (await lab.hl7(fixture("oru-r01-glucose-v24.hl7")))[0] == "AA"  # no such order
    wrong_patient = oru(control_id="CTL-2", mrn="SOMEONE-ELSE", order=order_number(visit))
    assert (await lab.hl7(wrong_patient))[0] == "AA"
    queue = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    reasons = sorted(r["report"]["reconciliation_reason"] for r in queue)
    assert reasons[0].startswith("no exam order 845439")
    assert "another patient" in reasons[1]
    assert all(r["report"]["mother_id"] is None for r in queue)
    # Nothing reached the mother or her butler.
    assert (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"] == []
    assert await topics(session_factory, "report.ready") == []

    mismatch = next(
        r["report"] for r in queue if "another patient" in r["report"]["reconciliation_reason"]
    )
    attached = await api.client.post(
        f"/v1/reports/{mismatch['id']}/attach",
        headers=api.auth("frontdesk"),
        json={
            "exam_order_id": next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "cbc"),
            "reason": "lab typed the MRN wrongly; confirmed by phone",
            "override": True,
        },
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["mother_id"] == mother["id"]
    assert attached.json()["events"][-1]["note"].endswith(
        "lab typed the MRN wrongly; confirmed by phone"
    )
    assert await topics(session_factory, "report.ready") == ["report.ready"]


async def test_a_duplicate_msh10_returns_the_same_ack_and_creates_nothing(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="CTL-3", mrn=mother["mrn"], order=order_number(visit))
    first = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    second = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    assert second.text == first.text
    assert second.headers["idempotent-replayed"] == "true"
    assert await count(session_factory, LabReport) == 1
    assert await count(session_factory, InboundMessage) == 1
    # The same webhook-id with the same body is the same delivery; with another body it is
    # another message (never the first one's answer), see test_lab_safety.py.
    resent = await api.client.post(
        HL7, content=body.encode(), headers=lab.headers(body, msg_id=first_id(first))
    )
    assert resent.headers["idempotent-replayed"] == "true"
    assert resent.text == first.text
    assert await count(session_factory, InboundMessage) == 1


def first_id(response: Any) -> str:
    webhook_id: str = response.request.headers["webhook-id"]
    return webhook_id


async def test_several_obrs_with_lf_separators(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    code, control = await lab.hl7(fixture("oru-r01-cbc-v25.hl7"))
    assert (code, control) == ("AA", "182")
    queue = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()
    assert sorted(
        (r["report"]["placer_order"], r["report"]["status"], r["report"]["status_derived"])
        for r in queue["items"]
    ) == [
        ("855238581", "preliminary", True),
        ("88502218", "partial", True),  # OBR-25 F, but some results still pending
    ]


async def test_fhir_observations_may_be_contained(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    report = {
        "resourceType": "DiagnosticReport",
        "id": "dr-1",
        "status": "final",
        "code": {"text": "Urinalysis"},
        "basedOn": [{"identifier": {"value": order_number(visit, "urine")}}],
        "subject": {"identifier": {"value": mother["mrn"]}},
        "contained": [
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "5804-0"}]},
                "valueString": "negative",
            }
        ],
        "result": [{"reference": "#o1"}],
    }
    answer = await lab.fhir(json.dumps(report))
    assert answer.status_code == 200, answer.text
    (summary,) = (await api.client.get("/v1/reports", headers=api.auth("doctor"))).json()["items"]
    detail = (
        await api.client.get(f"/v1/reports/{summary['id']}", headers=api.auth("doctor"))
    ).json()
    assert [(o["code"], o["value"]) for o in detail["observations"]] == [("5804-0", "negative")]


async def test_a_huge_lab_message_is_413(api: Api, lab: Lab) -> None:
    body = "MSH|" + "x" * 70_000
    response = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    assert_problem(response, 413)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not hl7 at all", "AR"),
        ("MSH|^~\\&|LIS|HOSP|PB|VIP|2026||ADT^A01|C9|P|2.5\rPID|1||X\r", "AR"),
        ("MSH|^~\\&|LIS|HOSP|PB|VIP|2026||ORU^R01|C10|P|2.5\rPID|1||X\r", "AE"),
        ("MSH|^~\\&|LIS|HOSP|PB|VIP|2026||ORU^R01|C11|P|2.5\rOBR|1|ORD-X|F|||", "AA"),
    ],
)
async def test_bad_messages_get_ar_or_ae_and_are_stored(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession], body: str, code: str
) -> None:
    got, _ = await lab.hl7(body)
    assert got == code
    async with session_factory() as session:
        stored = await session.scalar(select(InboundMessage))
    assert stored is not None
    assert stored.body == body.encode()
    assert stored.state == ("processed" if code == "AA" else "rejected")


async def test_binary_garbage_is_refused_and_kept(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    raw = b"\xff\xfe\x00MSH|\x9c\x80"
    headers = {"X-API-Key": LAB_KEY, **signed(raw, at=int(lab.clock.now().timestamp()))}
    response = await api.client.post(HL7, content=raw, headers=headers)
    assert "MSA|AR" in response.text
    assert await count(session_factory, InboundMessage, InboundMessage.state == "rejected") == 1


async def test_amendments_reopen_and_cancellation_withdraws(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    await lab.hl7(oru(control_id="A1", mrn=mother["mrn"], order=order, obr25="P"))
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("frontdesk"))).json()["items"]
    assert (report["status"], report["pickup_state"]) == ("preliminary", "not_ready")
    await lab.hl7(oru(control_id="A2", mrn=mother["mrn"], order=order, obr25="F"))
    await api.client.post(
        f"/v1/reports/{report['id']}/pick-up", headers=api.auth("butler1"), json={"place": "lab"}
    )
    await lab.hl7(oru(control_id="A3", mrn=mother["mrn"], order=order, obr25="C"))
    detail = (
        await api.client.get(f"/v1/reports/{report['id']}", headers=api.auth("butler1"))
    ).json()
    assert (detail["status"], detail["pickup_state"]) == ("corrected", "ready")
    assert await topics(session_factory, "report.") == ["report.ready", "report.amended"]
    await lab.hl7(oru(control_id="A4", mrn=mother["mrn"], order=order, obr25="X"))
    detail = (
        await api.client.get(f"/v1/reports/{report['id']}", headers=api.auth("butler1"))
    ).json()
    assert detail["pickup_state"] == "withdrawn"
    assert [e["status"] for e in detail["events"] if e["kind"] == "lab_status"] == [
        "preliminary",
        "final",
        "corrected",
        "cancelled",
    ]
    assert await count(session_factory, LabReport) == 1


async def test_signatures_are_required(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = oru(control_id="S1", mrn="M", order="O")
    now = int(lab.clock.now().timestamp())
    cases = [
        {"X-API-Key": LAB_KEY},
        {"X-API-Key": LAB_KEY, **signed(body, at=now, secret="wrong")},
        {"X-API-Key": LAB_KEY, **signed(body, at=now - 400)},
    ]
    for headers in cases:
        assert_problem(await api.client.post(HL7, content=body.encode(), headers=headers), 401)
    assert_problem(
        await api.client.post(HL7, content=body.encode(), headers=signed(body, at=now)), 401
    )
    assert_problem(
        await api.client.post(
            HL7, content=body.encode(), headers={**api.auth("frontdesk"), **signed(body, at=now)}
        ),
        403,
    )
    # Refused deliveries are kept too, for the integration engineer.
    assert await count(session_factory, InboundMessage, InboundMessage.state == "rejected") == 3


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def rotate(api: Api, keep_hours: int | None = None) -> Any:
    client_id = api.staff.lab_client.id  # type: ignore[union-attr]
    response = await api.client.post(
        f"/v1/api-clients/{client_id}/rotate-signing-secret",
        headers=api.auth("admin"),
        json={} if keep_hours is None else {"keep_previous_hours": keep_hours},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_rotated_secret_takes_over_and_the_old_one_retires(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    rotated = await rotate(api)
    new = rotated["signing_secret"]
    assert rotated["signing_secrets_retire_at"] == (
        (clock.now() + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    )
    listed = await api.client.get("/v1/api-clients", headers=api.auth("admin"))
    assert new not in listed.text  # shown once
    # While the sender switches over, both are accepted, alone or side by side in one header.
    assert (await lab.hl7(oru(control_id="R1", mrn="M", order="O")))[0] == "AA"
    assert (await lab.hl7(oru(control_id="R2", mrn="M", order="O"), secret=new))[0] == "AA"
    body = oru(control_id="R3", mrn="M", order="O")
    at = int(clock.now().timestamp())
    both = signed(body, at=at, secret=new)
    both["webhook-signature"] += " " + sign(SECRET, both["webhook-id"], at, body.encode())
    response = await api.client.post(
        HL7, content=body.encode(), headers={"X-API-Key": LAB_KEY, **both}
    )
    assert "MSA|AA" in response.text
    # A day later the old secret is refused; the new one goes on.
    clock.advance(timedelta(hours=24, seconds=1))
    old = oru(control_id="R4", mrn="M", order="O")
    assert_problem(await api.client.post(HL7, content=old.encode(), headers=lab.headers(old)), 401)
    assert (await lab.hl7(oru(control_id="R5", mrn="M", order="O"), secret=new))[0] == "AA"


async def test_a_retried_rotation_breaks_nothing_and_a_leak_retires_at_once(
    api: Api, lab: Lab
) -> None:
    first = (await rotate(api))["signing_secret"]  # its answer was lost on the way
    second = (await rotate(api))["signing_secret"]  # and this one's too
    third = (await rotate(api))["signing_secret"]
    for n, secret in enumerate(("test-secret", first, second, third)):
        ack, _ = await lab.hl7(oru(control_id=f"T{n}", mrn="M", order="O"), secret=secret)
        assert ack == "AA"
    # Four are accepted at once; a fifth would drop one the lab may still sign with.
    client_id = api.staff.lab_client.id  # type: ignore[union-attr]
    full = await api.client.post(
        f"/v1/api-clients/{client_id}/rotate-signing-secret", headers=api.auth("admin"), json={}
    )
    assert_problem(full, 409)
    leaked = await rotate(api, keep_hours=0)
    assert leaked["signing_secrets_retire_at"] is None
    for n, secret in enumerate(("test-secret", first, second, third)):
        body = oru(control_id=f"L{n}", mrn="M", order="O")
        refused = await api.client.post(
            HL7, content=body.encode(), headers=lab.headers(body, secret=secret)
        )
        assert_problem(refused, 401)
    fresh = oru(control_id="F1", mrn="M", order="O")
    assert (await lab.hl7(fresh, secret=leaked["signing_secret"]))[0] == "AA"


@pytest.mark.postgres_only
async def test_two_rotations_at_once_lose_neither_secret(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    answers = await asyncio.gather(rotate(api), rotate(api))
    for n, answer in enumerate(answers):
        body = oru(control_id=f"C{n}", mrn="M", order="O")
        assert (await lab.hl7(body, secret=answer["signing_secret"]))[0] == "AA"
    async with session_factory() as session:
        client = await session.get(ApiClient, api.staff.lab_client.id)  # type: ignore[union-attr]
        assert client is not None
        assert len(client.signing_secrets) == 3  # both new ones and the first


async def test_signing_secrets_are_sealed_at_rest_and_sealed_again_by_the_cli(
    api: Api,
    lab: Lab,
    app: FastAPI,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    key = new_key()
    app.state.secret_box = SecretBox.from_setting(key)
    client_id = api.staff.lab_client.id  # type: ignore[union-attr]

    async def stored() -> list[str]:
        async with session_factory() as session:
            client = await session.get(ApiClient, client_id)
            assert client is not None
            return list(client.signing_secrets)

    new = (await rotate(api))["signing_secret"]
    first, kept = await stored()
    assert first.startswith("enc:v1:")
    assert new not in first
    assert kept == SECRET  # the factory's, kept as given
    assert (await lab.hl7(oru(control_id="K1", mrn="M", order="O"), secret=new))[0] == "AA"
    # Kept as given while keys are set: refused until sealed (nobody slips a secret in).
    plain = oru(control_id="K2", mrn="M", order="O")
    unsealed = await api.client.post(HL7, content=plain.encode(), headers=lab.headers(plain))
    assert_problem(unsealed, 401)

    keyed = settings.model_copy(update={"secrets_keys": key})
    assert await seal_secrets(keyed, now=lab.clock.now()) == 1
    after = await stored()
    assert after[0] == first  # already under the first key: left alone
    assert after[1].startswith("enc:v1:")
    assert SECRET not in json.dumps(after)
    assert (await lab.hl7(oru(control_id="K3", mrn="M", order="O")))[0] == "AA"

    # A process without the key cannot check anything: the lab is asked to send again (503,
    # not "you signed wrong"), the delivery is kept, and the log says why without the value.
    app.state.secret_box = SecretBox.from_setting(new_key())
    body = oru(control_id="K4", mrn="M", order="O")
    seen = Records()
    logging.getLogger("app.reports").addHandler(seen)
    try:
        later = await api.client.post(
            HL7, content=body.encode(), headers=lab.headers(body, secret=new)
        )
    finally:
        logging.getLogger("app.reports").removeHandler(seen)
    assert_problem(later, 503)
    assert later.headers["retry-after"] == "60"
    said = [vars(r) for r in seen.records if getattr(r, "event", "") == "signing_secret_unreadable"]
    assert said
    assert new not in repr(said)
    assert SECRET not in repr(said)
    rejected = InboundMessage.state == "rejected"
    assert await count(session_factory, InboundMessage, rejected) == 2
    # Once the old secret has retired, sealing again drops it.
    lab.clock.advance(timedelta(hours=25))
    assert await seal_secrets(keyed, now=lab.clock.now()) == 1
    assert await stored() == [first]


async def test_rotation_needs_a_live_client(api: Api) -> None:
    missing = await api.client.post(
        f"/v1/api-clients/{uuid.uuid4()}/rotate-signing-secret",
        headers=api.auth("admin"),
        json={},
    )
    assert_problem(missing, 404)
    client_id = api.staff.lab_client.id  # type: ignore[union-attr]
    await api.client.post(f"/v1/api-clients/{client_id}/deactivate", headers=api.auth("admin"))
    gone = await api.client.post(
        f"/v1/api-clients/{client_id}/rotate-signing-secret", headers=api.auth("admin"), json={}
    )
    assert_problem(gone, 409)
    too_long = await api.client.post(
        f"/v1/api-clients/{client_id}/rotate-signing-secret",
        headers=api.auth("admin"),
        json={"keep_previous_hours": 169},
    )
    assert_problem(too_long, 422)


async def test_fhir_bundle_and_outcomes(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    ok = await lab.fhir(fhir_bundle(order=order_number(visit, "ogtt"), mrn=mother["mrn"]))
    assert ok.status_code == 200, ok.text
    assert ok.headers["content-type"].startswith("application/fhir+json")
    assert ok.json()["resourceType"] == "OperationOutcome"
    assert ok.json()["issue"][0]["severity"] == "information"
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("doctor"))).json()["items"]
    assert (report["mother_id"], report["pickup_state"]) == (mother["id"], "ready")
    wrong = await lab.fhir('{"resourceType": "Patient", "id": "p1"}')
    assert wrong.status_code == 422
    assert wrong.json()["issue"][0]["code"] == "not-supported"
    broken = await lab.fhir("{not json")
    assert broken.status_code == 400
    assert broken.json()["resourceType"] == "OperationOutcome"


async def test_critical_values_page_and_escalate(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(
        control_id="K1",
        mrn=mother["mrn"],
        order=order_number(visit),
        obr25="P",
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||62|g/L|110-150|LL|||P"],
    )
    await lab.hl7(body)
    alerts = (await api.client.get("/v1/alerts", headers=api.auth("butler1"))).json()["items"]
    (alert,) = alerts
    assert "LL" in alert["reason"]
    assert alert["butler_id"] == str(api.staff.butlers["butler1"].id)
    assert await topics(session_factory, "alert.") == ["alert.critical"]  # her butler's phone
    doctor = (await api.client.get("/v1/worklist", headers=api.auth("doctor"))).json()["items"]
    assert [(i["kind"], i["priority"], i["alert_id"]) for i in doctor if i["report_id"]] == [
        ("alert.critical", 0, alert["id"])
    ]
    await lab.hl7(body.replace("K1", "K2"))  # the same result again does not page twice
    assert (
        len((await api.client.get("/v1/alerts", headers=api.auth("doctor"))).json()["items"]) == 1
    )

    clock.advance(timedelta(minutes=10))
    early = await api.client.post("/v1/alerts/escalate", headers=api.auth("admin"))
    assert early.json()["items"] == []
    clock.advance(timedelta(minutes=6))
    late = await api.client.post("/v1/alerts/escalate", headers=api.auth("admin"))
    assert [(a["level"], a["tier_name"]) for a in late.json()["items"]] == [(1, "obstetric_lead")]
    for who, listed_to in (("doctor", True), ("admin", True), ("frontdesk", False)):
        listed = (await api.client.get("/v1/worklist", headers=api.auth(who))).json()["items"]
        assert ("alert.escalated" in [i["kind"] for i in listed]) is listed_to
    ack = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledge",
        headers=api.auth("doctor"),
        json={"read_back": "Hb 62 g/L", "action_taken": "Called her in for a repeat count"},
    )
    assert ack.json()["acknowledged_by"] == "doctor:doctor"
    assert (await api.client.get("/v1/alerts", headers=api.auth("butler1"))).json()["items"] == []
    assert_problem(
        await api.client.post(
            f"/v1/alerts/{alert['id']}/mother-contacted",
            headers=api.auth("butler2"),
            json={"note": "phoned"},
        ),
        404,
    )


async def test_admins_list_and_replay_stored_messages(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="P1", mrn=mother["mrn"], order=order_number(visit))
    await lab.hl7(body)
    listed = (await api.client.get("/v1/integrations/messages", headers=api.auth("admin"))).json()[
        "items"
    ]
    (message,) = listed
    replay = await api.client.post(
        f"/v1/integrations/messages/{message['id']}/replay", headers=api.auth("admin")
    )
    assert replay.status_code == 200, replay.text
    assert (replay.json()["replay_of"], replay.json()["state"]) == (message["id"], "processed")
    assert await count(session_factory, LabReport) == 1  # the same report, updated
    assert_problem(
        await api.client.get("/v1/integrations/messages", headers=api.auth("frontdesk")), 403
    )
