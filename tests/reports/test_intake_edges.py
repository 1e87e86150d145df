"""The hard cases of lab intake: amendments, failures and resends, stale results, several
patients in one message, hand-made attachments, and inputs that must not become a 500."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Environment, Settings, SmsProvider
from app.notifications import dispatcher
from app.reports import intake
from app.reports.models import InboundMessage
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY, mother_body
from tests.helpers.lab import HL7, Lab
from tests.helpers.messages import fhir_bundle, oru
from tests.helpers.problems import assert_problem
from tests.helpers.visits import book, checked_in_mother, open_session, order_number


async def only_report(api: Api, who: str = "doctor") -> dict[str, Any]:
    (summary,) = (await api.client.get("/v1/reports", headers=api.auth(who))).json()["items"]
    detail: dict[str, Any] = (
        await api.client.get(f"/v1/reports/{summary['id']}", headers=api.auth(who))
    ).json()
    return detail


async def test_a_fhir_report_resent_as_final_under_the_same_id_is_taken(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit, "ogtt")
    first = await lab.fhir(fhir_bundle(order=order, mrn=mother["mrn"], status="preliminary"))
    second = await lab.fhir(fhir_bundle(order=order, mrn=mother["mrn"], status="final"))
    assert "idempotent-replayed" not in second.headers
    assert first.status_code == second.status_code == 200
    report = await only_report(api)
    assert (report["status"], report["pickup_state"]) == ("final", "ready")


async def test_a_failure_on_our_side_is_processed_again_when_resent(
    api: Api,
    lab: Lab,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="F1", mrn=mother["mrn"], order=order_number(visit))
    real = intake.process
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(intake, "process", flaky)
    assert (await lab.hl7(body))[0] == "AE"
    assert (await lab.hl7(body))[0] == "AA"
    assert (await only_report(api))["status"] == "final"
    async with session_factory() as session:
        states = list(
            await session.scalars(select(InboundMessage.state).order_by(InboundMessage.id))
        )
    assert states == ["superseded", "processed"]  # the failed take, taken over by the resend
    again = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    assert again.headers["idempotent-replayed"] == "true"  # now answered from the good take


async def test_a_sparse_msh_still_gets_an_echoing_ack(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    body = (
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|2026||ORU^R01|SPARSE-1\r"
        f"PID|1||{mother['mrn']}^^^H^MR\r"
        f"OBR|1|{order_number(visit)}|F9|X^Y|||||||||||||||||||||F\r"
        "OBX|1|NM|718-7^Hgb||120|g/L||N|||F\r"
    )
    assert await lab.hl7(body) == ("AA", "SPARSE-1")


async def test_a_late_preliminary_does_not_replace_the_final(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    final = ["OBX|1|NM|718-7^Hgb^LN||112|g/L|110-150|N|||F"]
    late = ["OBX|1|NM|718-7^Hgb^LN||95|g/L|110-150|L|||P"]
    await lab.hl7(oru(control_id="L1", mrn=mother["mrn"], order=order, obr25="F", obx=final))
    await lab.hl7(oru(control_id="L2", mrn=mother["mrn"], order=order, obr25="P", obx=late))
    report = await only_report(api)
    assert (report["status"], report["pickup_state"]) == ("final", "ready")
    assert [o["numeric"] for o in report["observations"]] == [112.0]
    assert report["events"][-1]["kind"] == "lab_status_ignored"


async def test_several_patients_in_one_message_keep_their_own_results(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    body = (
        "\r".join(
            [
                "MSH|^~\\&|LIS|HOSP|PB|VIP|2026||ORU^R01|TWO-1|P|2.5",
                "PID|1||OTHER-MRN^^^H^MR",
                "OBR|1|ORD-NOT-OURS|F1|X^Y|||||||||||||||||||||F",
                "OBX|1|NM|718-7^Hgb||120|g/L||N|||F",
                f"PID|2||{mother['mrn']}^^^H^MR",
                f"OBR|2|{order_number(visit)}|F2|X^Z|||||||||||||||||||||F",
                "OBX|1|NM|718-7^Hgb||121|g/L||N|||F",
            ]
        )
        + "\r"
    )
    assert (await lab.hl7(body))[0] == "AA"
    mine = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    assert [r["placer_order"] for r in mine] == [order_number(visit)]
    queue = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    assert [r["report"]["placer_order"] for r in queue] == ["ORD-NOT-OURS"]


async def test_a_resend_does_not_undo_a_hand_made_attachment(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    body = oru(control_id="H1", mrn="TYPO-MRN", order=order)
    await lab.hl7(body)
    (queued,) = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    cbc = next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "cbc")
    await api.client.post(
        f"/v1/reports/{queued['report']['id']}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "MRN typo confirmed with the lab", "override": True},
    )
    await lab.hl7(body.replace("H1", "H2").replace("|F\r", "|C\r", 1))
    report = await only_report(api)
    assert report["mother_id"] == mother["id"]
    assert report["reconciliation_reason"] is None
    assert report["status"] == "corrected"  # the same (typo) patient: the update applies


async def test_results_go_to_whoever_looks_after_her_now(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    mother, visit = await checked_in_mother(api)  # butler1 at her side today
    clock.advance(timedelta(days=1))
    await api.client.post(
        f"/v1/mothers/{mother['id']}/primary-butler",
        headers=api.auth("frontdesk"),
        json={"butler_id": str(api.staff.butlers["butler2"].id), "reason": "butler1 moved on"},
    )
    critical = ["OBX|1|NM|718-7^Hgb^LN||62|g/L|110-150|LL|||F"]
    await lab.hl7(oru(control_id="N1", mrn=mother["mrn"], order=order_number(visit), obx=critical))
    (alert,) = (await api.client.get("/v1/alerts", headers=api.auth("butler2"))).json()["items"]
    assert alert["butler_id"] == str(api.staff.butlers["butler2"].id)
    assert (await api.client.get("/v1/alerts", headers=api.auth("butler1"))).json()["items"] == []
    assert_problem(
        await api.client.post(
            f"/v1/alerts/{alert['id']}/mother-contacted",
            headers=api.auth("butler1"),
            json={"note": "phoned her"},
        ),
        404,
    )


async def test_a_rescheduled_cover_moves_her_access_to_the_new_day(
    api: Api, clock: FrozenClock
) -> None:
    b1 = str(api.staff.butlers["butler1"].id)
    mother = (
        await api.client.post(
            "/v1/mothers", headers=api.auth("frontdesk"), json=mother_body(primary_butler_id=b1)
        )
    ).json()
    for day in ("2026-12-01", "2026-12-02"):
        await api.client.post(
            f"/v1/butlers/{b1}/leaves",
            headers=api.auth("admin"),
            json={"starts_on": day, "ends_on": day, "reason": "course"},
        )
    tuesday = await open_session(api)
    wednesday = await open_session(api, day="2026-12-02")
    visit = (await book(api, mother["id"], tuesday["id"])).json()
    await api.client.post(
        f"/v1/visits/{visit['id']}/reschedule",
        headers=api.auth("frontdesk"),
        json={"session_id": wednesday["id"], "reason": "clinic closed"},
    )
    path = f"/v1/mothers/{mother['id']}"
    clock.advance(timedelta(days=3))  # Tuesday: no visit any more
    assert_problem(await api.client.get(path, headers=api.auth("butler2")), 404)
    clock.advance(timedelta(days=1))  # Wednesday: her visit day
    assert (await api.client.get(path, headers=api.auth("butler2"))).status_code == 200


@pytest.mark.parametrize(
    ("kind", "body", "expect"),
    [
        ("hl7", "MSH|^~\\&|L|H|P|V|2026||ORU^R01|" + "9" * 250 + "|P|2.5\rPID|1||X\r", "AR"),
        ("fhir", "[" * 5000 + "]" * 5000, 400),
        (
            "fhir",
            json.dumps(
                {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {"text": "x"},
                    "identifier": [{"value": "x" * 300}],
                }
            ),
            422,
        ),
        (
            "fhir",
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "NoSuchThing"}}],
                }
            ),
            422,
        ),
    ],
)
async def test_odd_inputs_get_an_answer_not_a_500(
    api: Api, lab: Lab, kind: str, body: str, expect: Any
) -> None:
    if kind == "hl7":
        assert (await lab.hl7(body))[0] == expect
    else:
        response = await lab.fhir(body)
        assert response.status_code == expect, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_a_non_ascii_signature_is_401(api: Api, lab: Lab) -> None:
    body = oru(control_id="U1", mrn="M", order="O")
    headers: dict[str, Any] = {**lab.headers(body), "webhook-signature": "v1,签名".encode()}
    response = await api.client.post(HL7, content=body.encode(), headers=headers)
    assert_problem(response, 401)


async def test_a_delivery_refused_for_its_signature_cannot_be_replayed(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = oru(control_id="X1", mrn="M", order="O")
    unsigned = await api.client.post(HL7, content=body.encode(), headers={"X-API-Key": LAB_KEY})
    assert_problem(unsigned, 401)
    async with session_factory() as session:
        stored = await session.scalar(select(InboundMessage))
    assert stored is not None
    refused = await api.client.post(
        f"/v1/integrations/messages/{stored.id}/replay", headers=api.auth("admin")
    )
    assert_problem(refused, 409)
    # A rejected (but signed) message replays fine, with an answer rather than a 500.
    await lab.hl7("MSH|^~\\&|L|H|P|V|2026||ADT^A01|C1|P|2.5\r")
    async with session_factory() as session:
        rejected = await session.scalar(
            select(InboundMessage).where(
                InboundMessage.state == "rejected", InboundMessage.message_key == "C1"
            )
        )
    assert rejected is not None
    replay = await api.client.post(
        f"/v1/integrations/messages/{rejected.id}/replay", headers=api.auth("admin")
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["state"] == "rejected"


def test_production_refuses_the_console_sms_provider() -> None:
    settings = Settings(environment=Environment.PRODUCTION, sms_provider=SmsProvider.CONSOLE)
    with pytest.raises(ValueError, match="refused in production"):
        dispatcher.sms_from(settings)


async def test_a_message_whose_server_died_is_taken_again_by_the_resend(
    api: Api,
    lab: Lab,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from app.reports.intake import content_hash, store

    mother, visit = await checked_in_mother(api)
    body = oru(control_id="DIED-1", mrn=mother["mrn"], order=order_number(visit))
    # Stored, then the server died before processing it: it stays "received", unlocked.
    await store(
        session_factory,
        channel="hl7v2",
        sender_id=api.staff.lab_client.id if api.staff.lab_client else None,
        sender_name="Hospital LIS",
        body=body.encode(),
        headers={},
        message_key="DIED-1",
        webhook_id=None,
        now=clock.now(),
        content_hash=content_hash("hl7v2", body.encode()),
    )
    # Within the grace it may still be starting: "still being processed, send it later".
    assert (await lab.hl7(body))[0] == "AE"
    clock.advance(timedelta(seconds=6))
    assert (await lab.hl7(body))[0] == "AA"  # nobody holds it: the resend takes it
    assert (await only_report(api))["status"] == "final"
