"""What a patient-safety committee asks of the lab intake: nothing swallowed, no overwrite
across patients, a critical value always reaches a clinician, and a desk that can work the
held results. Through the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.reports import mllp
from app.reports.intake import IntakeContext, thresholds_from
from app.reports.models import CriticalAlert, InboundMessage, LabObservation, LabReport
from app.worklist.models import WorklistItem
from tests.helpers.api import Api
from tests.helpers.lab import HL7, Lab
from tests.helpers.messages import fhir_bundle, oru
from tests.helpers.problems import assert_problem
from tests.helpers.rows import count, topics
from tests.helpers.visits import checked_in_mother, order_number


def mllp_context(app: FastAPI) -> IntakeContext:
    return IntakeContext(
        tz=app.state.settings.tz, thresholds=thresholds_from(None), ack_within=timedelta(minutes=15)
    )


async def worklist(api: Api, who: str) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/worklist", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def kinds(api: Api, who: str) -> list[str]:
    return [i["kind"] for i in await worklist(api, who)]


HB_CRITICAL = "OBX|1|NM|718-7^Hemoglobin^LN||58|g/L|110-150|LL|||F"
HB_NORMAL = "OBX|1|NM|718-7^Hemoglobin^LN||118|g/L|110-150|N|||F"


# 1. Nothing is swallowed ------------------------------------------------------------------


async def test_a_reused_control_id_with_other_content_is_a_new_message_not_a_replay(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """LIS counters roll over: the second message is another patient's critical result."""
    first_mother, first_visit = await checked_in_mother(api)
    first = oru(control_id="0001", mrn=first_mother["mrn"], order=order_number(first_visit))
    assert await lab.hl7(first) == ("AA", "0001")
    second = oru(
        control_id="0001",
        mrn="MRN-NOBODY",
        order="ORD-UNKNOWN",
        filler="F-2",
        obx=[HB_CRITICAL],
    )
    code, echoed = await lab.hl7(second)
    assert (code, echoed) == ("AA", "0001")
    async with session_factory() as session:
        stored = list(await session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
    assert [m.state for m in stored] == ["processed", "processed"]
    assert stored[1].reused_key_of == stored[0].id
    assert "MSH-10 '0001' was used before" in (stored[1].response_body or "")
    assert await count(session_factory, LabReport) == 2
    # The critical value of the second message is not lost: it pages.
    assert await count(session_factory, CriticalAlert) == 1
    assert "message.control_id_reused" in await kinds(api, "admin")
    listed = (await api.client.get("/v1/integrations/messages", headers=api.auth("admin"))).json()
    assert listed["items"][0]["reused_key_of"] == str(stored[0].id)
    # The identical second message again is a resend: its own answer, nothing new.
    again = await api.client.post(HL7, content=second.encode(), headers=lab.headers(second))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.text == stored[1].response_body
    assert await count(session_factory, InboundMessage) == 2


async def test_a_resend_with_crlf_or_over_mllp_is_the_same_message(
    api: Api, app: FastAPI, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="X-1", mrn=mother["mrn"], order=order_number(visit))
    http = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    crlf = body.replace("\r", "\r\n")
    again = await api.client.post(HL7, content=crlf.encode(), headers=lab.headers(crlf))
    assert again.text == http.text
    assert lab.api.staff.lab_client is not None
    over_mllp = await mllp.take(
        body.encode(),
        factory=session_factory,
        client_id=lab.api.staff.lab_client.id,
        client_name="Test LIS",
        context=mllp_context(app),
        now=lab.clock.now(),
    )
    assert over_mllp == http.text  # de-duplication spans HTTP and MLLP for one sender
    assert await count(session_factory, InboundMessage) == 1


async def test_a_webhook_id_answers_only_for_its_own_endpoint_and_its_own_body(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="W-1", mrn=mother["mrn"], order=order_number(visit))
    first = await api.client.post(HL7, content=body.encode(), headers=lab.headers(body))
    webhook_id = first.request.headers["webhook-id"]
    bundle = fhir_bundle(order=order_number(visit, "ogtt"), mrn=mother["mrn"], report_id="R-W")
    fhir = await lab.fhir(bundle, msg_id=webhook_id)
    assert fhir.status_code == 200, fhir.text
    assert fhir.headers.get("idempotent-replayed") is None
    assert fhir.json()["resourceType"] == "OperationOutcome"
    other = body.replace("W-1", "W-2")
    resent = await api.client.post(
        HL7, content=other.encode(), headers=lab.headers(other, msg_id=webhook_id)
    )
    assert resent.headers.get("idempotent-replayed") is None
    assert "MSA|AA|W-2" in resent.text
    assert await count(session_factory, InboundMessage) == 3


@pytest.mark.postgres_only
async def test_two_messages_with_one_control_id_at_once_are_both_taken(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Two connections send two different messages under one MSH-10 at the same moment:
    both are stored and processed, and each gets its own ACK."""
    mother, visit = await checked_in_mother(api)
    bodies = [
        oru(control_id="SAME", mrn=mother["mrn"], order=order_number(visit), filler="F-A"),
        oru(
            control_id="SAME",
            mrn=mother["mrn"],
            order=order_number(visit, "urine"),
            filler="F-B",
            code="24356-8^Urinalysis^LN",
            obx=["OBX|1|ST|5804-0^Protein^LN||negative||||||F"],
        ),
    ]
    responses = await asyncio.gather(
        *(
            api.client.post(HL7, content=b.encode(), headers=lab.headers(b))
            for b in bodies
            for _ in range(3)
        )
    )
    assert all(r.status_code == 200 for r in responses)
    async with session_factory() as session:
        stored = list(await session.scalars(select(InboundMessage)))
        reports = list(await session.scalars(select(LabReport).order_by(LabReport.filler_order)))
    assert len(stored) == 2, [m.state for m in stored]
    assert sorted(m.state for m in stored) == ["processed", "processed"]
    assert [r.filler_order for r in reports] == ["F-A", "F-B"]
    by_body = {m.body: m.response_body for m in stored}
    for body, response in zip([b for b in bodies for _ in range(3)], responses, strict=True):
        if "MSA|AA" in response.text:  # the others were told to send it again later
            assert response.text == by_body[body.encode()]


# 2. No overwrite across patients ----------------------------------------------------------


async def test_an_update_naming_another_patient_is_held_and_changes_nothing(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    assert (await lab.hl7(oru(control_id="U-1", mrn=mother["mrn"], order=order)))[0] == "AA"
    update = oru(control_id="U-2", mrn="MRN-OTHER-WOMAN", order=order, obr25="C", obx=[HB_CRITICAL])
    assert (await lab.hl7(update))[0] == "AA"
    async with session_factory() as session:
        reports = list(await session.scalars(select(LabReport).order_by(LabReport.id)))
        original, held = reports
        values = list(
            await session.scalars(
                select(LabObservation.value).where(LabObservation.report_id == original.id)
            )
        )
    assert (str(original.mother_id), original.status.value, original.version) == (
        mother["id"],
        "final",
        1,
    )
    assert values == ["112", "210"]  # her results as they were
    assert held.mother_id is None
    assert held.conflict_of == original.id
    assert held.patient_mrn == "MRN-OTHER-WOMAN"
    assert "identity conflict" in (held.reconciliation_reason or "")
    assert "report.identity_conflict" in await kinds(api, "frontdesk")
    assert "report.identity_conflict" in await kinds(api, "doctor")
    # Her butler was not told of a new version, and the critical value pages as unmatched.
    assert await topics(session_factory, "report.amended") == []
    async with session_factory() as session:
        alert = await session.scalar(select(CriticalAlert))
    assert alert is not None
    assert (alert.report_id, alert.mother_id) == (held.id, None)


async def test_a_hand_attached_report_is_not_overwritten_by_another_patient(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="H1", mrn=mother["mrn"] + "-TYPO", order=order_number(visit))
    await lab.hl7(body)
    (queued,) = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    cbc = next(o["id"] for o in visit["exam_orders"] if o["exam_code"] == "cbc")
    attached = await api.client.post(
        f"/v1/reports/{queued['report']['id']}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "MRN typo confirmed by phone", "override": True},
    )
    assert attached.status_code == 200, attached.text
    # The lab resends under the same (typo) MRN: the desk's decision holds, results update.
    same = body.replace("H1", "H2").replace("|F\r", "|C\r", 1)
    await lab.hl7(same)
    # Then an update naming a third patient: held, not applied.
    other = oru(control_id="H3", mrn="MRN-THIRD", order=order_number(visit), obx=[HB_NORMAL])
    await lab.hl7(other)
    async with session_factory() as session:
        reports = list(await session.scalars(select(LabReport).order_by(LabReport.id)))
    assert len(reports) == 2
    kept, held = reports
    assert str(kept.mother_id) == mother["id"]
    assert kept.status.value == "corrected"
    assert held.conflict_of == kept.id
    assert held.mother_id is None


async def test_fhir_reports_are_identified_by_system_and_value_and_code(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit, "ogtt")
    first = json.loads(fhir_bundle(order=order, mrn=mother["mrn"], report_id="42"))
    second = json.loads(fhir_bundle(order=order, mrn="MRN-SOMEONE", report_id="42"))
    second["entry"][0]["resource"]["identifier"][0]["system"] = "urn:oid:2.16.840.1.113883.19.5"
    for bundle in (first, second):
        response = await lab.fhir(json.dumps(bundle))
        assert response.status_code == 200, response.text
    async with session_factory() as session:
        reports = list(await session.scalars(select(LabReport).order_by(LabReport.id)))
    assert len(reports) == 2  # two reports that share a value, not one merged
    assert str(reports[0].mother_id) == mother["id"]
    assert reports[1].mother_id is None
    assert reports[1].conflict_of is None


# 3. A critical value always reaches a clinician -------------------------------------------


async def test_a_critical_result_for_nobody_pages_the_doctor_and_the_desk_and_escalates(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await checked_in_mother(api)
    body = (
        "MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|CRIT-1|P|2.5\r"
        "PID|1||MRN-UNKNOWN^^^HOSP^MR||WANG^FANG||19930412|F\r"
        "OBR|1|ORD-77|F-77|2345-7^Glucose^LN|||20261128080000|||||||||||||||20261128092500|||F\r"
        "OBX|1|SN|2345-7^Glucose^LN||<^2.0|mmol/L^mmol/L^UCUM|3.9-6.1|L|||F\r"
    )
    assert await lab.hl7(body) == ("AA", "CRIT-1")
    async with session_factory() as session:
        alert = await session.scalar(select(CriticalAlert))
    assert alert is not None
    assert alert.mother_id is None
    for who in ("doctor", "frontdesk"):
        items = await worklist(api, who)
        (paged,) = [i for i in items if i["kind"] == "critical.unmatched"]
        assert paged["priority"] == 0
        assert paged["alert_id"] == str(alert.id)
        assert "MRN-UNKNOWN" in paged["title"]
        assert "ORD-77" in paged["title"]
        assert "1993-04-12" in paged["title"]
    # Held results list it first, with what the message says of the patient.
    held = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()
    first = held["items"][0]
    assert first["report"]["critical"] is True
    assert first["patient"] == {
        "mrn": "MRN-UNKNOWN",
        "name": "WANG FANG",
        "birth_date": "1993-04-12",
        "sex": "F",
    }
    # Nobody acknowledges: it escalates on the same clock as a matched one.
    clock.advance(timedelta(minutes=16))
    escalated = await api.client.post("/v1/alerts/escalate", headers=api.auth("admin"))
    assert [a["id"] for a in escalated.json()["items"]] == [str(alert.id)]
    assert "alert.escalated" in await kinds(api, "doctor")  # the obstetric lead's list
    # A doctor acknowledges it: it leaves every list, saying who closed it.
    acknowledged = await api.client.post(
        f"/v1/alerts/{alert.id}/acknowledge",
        headers=api.auth("doctor"),
        json={"read_back": "glucose < 2.0 mmol/L", "action_taken": "Lab asked to trace her"},
    )
    assert acknowledged.status_code == 200
    for who in ("doctor", "frontdesk", "admin"):
        assert not {"critical.unmatched", "alert.escalated"} & set(await kinds(api, who))
    closed = (await api.client.get("/v1/worklist?open=false", headers=api.auth("doctor"))).json()
    assert {i["acknowledged_by"] for i in closed["items"] if i["alert_id"] == str(alert.id)} == {
        "doctor:doctor"
    }


async def test_a_thresholded_value_that_cannot_be_assessed_goes_to_a_human(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(
        control_id="REV-1",
        mrn=mother["mrn"],
        order=order_number(visit),
        obx=["OBX|1|NM|718-7^Hemoglobin^LN||7.1|mmol/L|7.4-9.9|L|||F"],
    )
    await lab.hl7(body)
    async with session_factory() as session:
        report = await session.scalar(select(LabReport))
        obs = await session.scalar(select(LabObservation))
    assert report is not None
    assert obs is not None
    assert report.needs_review is True
    assert report.critical is False
    assert obs.review_reason
    assert "observation.review" in await kinds(api, "doctor")


# 4. Nothing clinical is dropped: documents -------------------------------------------------


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_an_embedded_pdf_is_stored_and_fetched_by_those_who_may(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    encoded = base64.b64encode(PDF).decode()
    body = oru(
        control_id="PDF-1",
        mrn=mother["mrn"],
        order=order_number(visit),
        obx=[
            HB_NORMAL,
            f"OBX|2|ED|PDF^Report PDF^L||LIS^AP^PDF^Base64^{encoded}||||||F",
        ],
    )
    assert (await lab.hl7(body))[0] == "AA"
    report_id = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"][
        0
    ]["id"]
    detail = (await api.client.get(f"/v1/reports/{report_id}", headers=api.auth("doctor"))).json()
    (attachment,) = detail["attachments"]
    assert (attachment["media_type"], attachment["size"]) == ("application/pdf", len(PDF))
    url = f"/v1/reports/{report_id}/attachments/{attachment['id']}"
    fetched = await api.client.get(url, headers=api.auth("butler1"))
    assert fetched.status_code == 200
    assert fetched.content == PDF
    assert fetched.headers["content-type"] == "application/pdf"
    assert_problem(await api.client.get(url, headers=api.auth("butler2")), 404)
    async with session_factory() as session:
        reads = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action == "report.attachment.read")
            )
        )
    assert reads == ["report.attachment.read"]


# 5. Framing ---------------------------------------------------------------------------------


async def test_an_mllp_frame_over_the_limit_gets_an_ar_and_is_kept(
    api: Api,
    app: FastAPI,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mllp, "MAX_MESSAGE", 4096)
    assert api.staff.lab_client is not None
    server = await mllp.serve(
        host="127.0.0.1",
        port=0,
        factory=session_factory,
        client_id=api.staff.lab_client.id,
        client_name="Test LIS",
        context=mllp_context(app),
        now=clock.now,
    )
    port = server.sockets[0].getsockname()[1]
    big = oru(
        control_id="BIG-1",
        mrn="M",
        order="O",
        obx=[f"OBX|1|TX|18748-4^Ultrasound^LN||{'x' * 9000}||||||F"],
    ).encode()
    small = oru(control_id="SMALL-1", mrn="M", order="O").encode()
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(mllp.START + big[:5000])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(big[5000:] + mllp.END + mllp.START + small + mllp.END)
        await writer.drain()
        first = (await reader.readuntil(mllp.END)).decode()
        second = (await reader.readuntil(mllp.END)).decode()
        writer.close()
    assert "MSA|AR|BIG-1" in first
    assert "MSA|AA|SMALL-1" in second  # the connection went on
    async with session_factory() as session:
        kept = await session.scalar(
            select(InboundMessage).where(InboundMessage.state == "rejected")
        )
    assert kept is not None
    assert kept.body == big[:4096]
    assert kept.headers["mllp-frame-bytes"] == str(len(big))


# 6. Reconciliation the desk can work -------------------------------------------------------


async def test_the_desk_sees_candidates_and_must_override_a_disagreeing_patient(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    body = oru(control_id="R-1", mrn="MRN-TYPO", order=order)
    await lab.hl7(body)
    (held,) = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()[
        "items"
    ]
    assert held["observation_count"] == 2
    (candidate,) = held["candidates"]
    assert candidate["mother_id"] == mother["id"]
    assert any("order" in r and "is hers" in r for r in candidate["reasons"])
    assert any("MRN differs" in d for d in candidate["disagreements"])
    named = [o for o in candidate["open_orders"] if o["named_in_message"]]
    assert [o["order_number"] for o in named] == [order]
    report_id = held["report"]["id"]
    cbc = named[0]["exam_order_id"]
    refused = await api.client.post(
        f"/v1/reports/{report_id}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "looks like hers"},
    )
    problem = assert_problem(refused, 409)
    assert "MRN-TYPO" in problem["detail"]
    assert await topics(session_factory, "report.ready") == []
    attached = await api.client.post(
        f"/v1/reports/{report_id}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "lab confirmed the typo by phone", "override": True},
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["events"][-1]["note"].startswith("OVERRIDE")
    assert "report.unmatched" not in await kinds(api, "frontdesk")  # done with
    async with session_factory() as session:
        audit = await session.scalar(select(AuditEvent).where(AuditEvent.action == "report.attach"))
    assert audit is not None
    assert audit.detail is not None
    assert audit.detail["override"] is True
    assert audit.detail["reason"] == "lab confirmed the typo by phone"


async def test_a_detach_puts_a_wrong_attachment_back_and_tells_her_butler(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="D-1", mrn=mother["mrn"], order=order_number(visit), obx=[HB_CRITICAL])
    await lab.hl7(body)
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    await api.client.post(
        f"/v1/reports/{report['id']}/pick-up",
        headers=api.auth("butler1"),
        json={"place": "Lab counter"},
    )
    detached = await api.client.post(
        f"/v1/reports/{report['id']}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "the lab says this sample was another woman's"},
    )
    assert detached.status_code == 200, detached.text
    assert detached.json()["mother_id"] is None
    assert (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"] == []
    assert "report.detached" in await topics(session_factory, "report.")
    assert "report.detached" in await kinds(api, "doctor")  # it had reached her butler
    # Her butler, who had picked it up for her, is told not to act on it (no review gave a
    # task of its own), in neutral words.
    mine = (await api.client.get("/v1/me/assignments", headers=api.auth("butler1"))).json()
    titles = [i["title"] for i in mine["items"] if i["kind"] == "task"]
    assert titles == [
        "The results you brought her were not hers and were withdrawn: do not act on them; "
        "the doctor will contact her"
    ]
    # Not hers: her alert is voided, and the value pages afresh for the real patient.
    async with session_factory() as session:
        alerts = list(await session.scalars(select(CriticalAlert).order_by(CriticalAlert.id)))
    assert [(a.mother_id is None, a.voided_at is None) for a in alerts] == [
        (False, False),
        (True, True),
    ]
    assert "detached" in (alerts[0].void_reason or "")
    assert "critical.unmatched" in await kinds(api, "doctor")
    assert "alert.critical" not in await kinds(api, "doctor")
    assert_problem(
        await api.client.post(
            f"/v1/reports/{report['id']}/detach",
            headers=api.auth("frontdesk"),
            json={"reason": "twice"},
        ),
        409,
    )
    # Reattached to the right patient: the desk's "reattach it" is done; the doctors' item,
    # about what the first mother was told, stays until a doctor deals with it.
    held = (await api.client.get("/v1/reconciliation", headers=api.auth("frontdesk"))).json()
    (entry,) = [h for h in held["items"] if h["report"]["id"] == report["id"]]
    (candidate,) = [c for c in entry["candidates"] if c["mother_id"] == mother["id"]]
    attached = await api.client.post(
        f"/v1/reports/{report['id']}/attach",
        headers=api.auth("frontdesk"),
        json={
            "exam_order_id": candidate["open_orders"][0]["exam_order_id"],
            "reason": "the lab confirmed it was hers after all",
            "override": True,
        },
    )
    assert attached.status_code == 200, attached.text
    assert "report.detached" not in await kinds(api, "frontdesk")
    (doctors,) = [i for i in await worklist(api, "doctor") if i["kind"] == "report.detached"]
    assert "contact her" in doctors["title"]


# 7. The desk's worklist -------------------------------------------------------------------


async def test_the_worklist_has_etags_long_polls_and_acknowledgements(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await checked_in_mother(api)
    first = await api.client.get("/v1/worklist", headers=api.auth("frontdesk"))
    etag = first.headers["etag"]
    same = await api.client.get(
        "/v1/worklist", headers={**api.auth("frontdesk"), "If-None-Match": etag}
    )
    assert same.status_code == 304

    async def poll() -> Any:
        return await api.client.get(
            "/v1/worklist?wait=10", headers={**api.auth("frontdesk"), "If-None-Match": etag}
        )

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await lab.hl7(oru(control_id="WL-1", mrn="MRN-NOBODY", order="NO-ORDER"))
    woken = await asyncio.wait_for(waiting, timeout=5)
    assert woken.status_code == 200
    (item,) = woken.json()["items"]
    assert item["kind"] == "report.unmatched"
    assert woken.headers["etag"] != etag
    assert "report.unmatched" not in await kinds(api, "doctor")  # not the doctor's list
    assert_problem(
        await api.client.post(
            f"/v1/worklist/{item['id']}/acknowledge",
            headers=api.auth("doctor"),
            json={"note": "not mine"},
        ),
        404,
    )
    assert_problem(await api.client.get("/v1/worklist", headers=api.auth("butler1")), 403)
    done = await api.client.post(
        f"/v1/worklist/{item['id']}/acknowledge",
        headers=api.auth("frontdesk"),
        json={"note": "Called the lab: a test sample, discarded."},
    )
    assert done.status_code == 200
    assert done.json()["acknowledged_by"].startswith("front_desk:")
    assert await kinds(api, "frontdesk") == []
    everything = await api.client.get("/v1/worklist?open=false", headers=api.auth("frontdesk"))
    assert [i["acknowledged_note"] for i in everything.json()["items"]] == [
        "Called the lab: a test sample, discarded."
    ]
    async with session_factory() as session:
        assert (await session.scalar(select(WorklistItem))) is not None


async def test_an_unaccompanied_visit_is_on_the_desks_worklist(api: Api) -> None:
    from tests.helpers.mothers import enrol
    from tests.helpers.visits import open_session

    await open_session(api, day="2026-11-28")
    for butler in api.staff.butlers.values():
        await api.client.post(
            f"/v1/butlers/{butler.id}/leaves",
            headers=api.auth("admin"),
            json={"starts_on": "2026-11-28", "ends_on": "2026-11-28", "reason": "training"},
        )
    mother = await enrol(api)
    checked = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
    )
    assert checked.status_code in (200, 201), checked.text
    assert checked.json()["accompanying_butler_id"] is None
    items = await worklist(api, "frontdesk")
    assert [i["kind"] for i in items] == ["visit.unaccompanied"]
    assert items[0]["visit_id"] == checked.json()["id"]


# Holes a review found -----------------------------------------------------------------------


async def test_a_critical_value_in_an_update_that_is_not_applied_still_pages(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    await lab.hl7(oru(control_id="P-1", mrn=mother["mrn"], order=order))
    late = oru(control_id="P-2", mrn=mother["mrn"], order=order, obr25="P", obx=[HB_CRITICAL])
    assert (await lab.hl7(late))[0] == "AA"
    async with session_factory() as session:
        alert = await session.scalar(select(CriticalAlert))
        values = list(await session.scalars(select(LabObservation.value)))
    assert values == ["112", "210"]  # the final stays
    assert alert is not None
    assert str(alert.mother_id) == mother["id"]
    items = await worklist(api, "doctor")
    assert "report.update_ignored" in [i["kind"] for i in items]


async def test_an_open_identity_conflict_holds_her_report_and_collects_its_updates(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    await lab.hl7(oru(control_id="C-1", mrn=mother["mrn"], order=order))
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    for n, obr25 in enumerate(("C", "C", "X"), start=2):
        await lab.hl7(oru(control_id=f"C-{n}", mrn="MRN-B", order=order, obr25=obr25))
    async with session_factory() as session:
        held = list(
            await session.scalars(select(LabReport).where(LabReport.conflict_of.is_not(None)))
        )
    assert len(held) == 1  # one held copy, updated: not one per message
    assert held[0].status.value == "cancelled"
    refused = await api.client.post(
        f"/v1/reports/{report['id']}/pick-up",
        headers=api.auth("butler1"),
        json={"place": "Lab counter"},
    )
    assert assert_problem(refused, 409)["type"].endswith("report-on-hold")
    # The desk resolves it (the lab confirms the update was for someone else): she gets it.
    (item,) = [
        i for i in await worklist(api, "frontdesk") if i["kind"] == "report.identity_conflict"
    ]
    await api.client.post(
        f"/v1/worklist/{item['id']}/acknowledge",
        headers=api.auth("frontdesk"),
        json={"note": "Lab: the update was sent under the wrong order; hers stands."},
    )
    picked = await api.client.post(
        f"/v1/reports/{report['id']}/pick-up",
        headers=api.auth("butler1"),
        json={"place": "Lab counter"},
    )
    assert picked.status_code == 200, picked.text


async def test_a_detached_report_is_not_attached_to_her_again_by_a_resend(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    body = oru(control_id="DT-1", mrn=mother["mrn"], order=order_number(visit), obx=[HB_CRITICAL])
    await lab.hl7(body)
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    (alert,) = (await api.client.get("/v1/alerts", headers=api.auth("butler1"))).json()["items"]
    closed = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledge",
        headers=api.auth("doctor"),
        json={"read_back": "Hb 58 g/L", "action_taken": "Admitted for transfusion"},
    )
    assert closed.status_code == 200, closed.text
    await api.client.post(
        f"/v1/reports/{report['id']}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "the sample was another woman's"},
    )
    # Closed for the wrong mother: that closure is voided (the doctor is told to review what
    # was done), and it pages again, unmatched, for the real patient.
    async with session_factory() as session:
        open_alerts = list(
            await session.scalars(
                select(CriticalAlert).where(
                    CriticalAlert.acknowledged_at.is_(None), CriticalAlert.voided_at.is_(None)
                )
            )
        )
    assert [a.mother_id for a in open_alerts] == [None]
    assert "alert.voided" in await kinds(api, "doctor")
    await lab.hl7(body.replace("DT-1", "DT-2"))
    assert (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"] == []
    async with session_factory() as session:
        kept = await session.scalar(select(LabReport))
    assert kept is not None
    assert kept.mother_id is None
    assert "detached" in (kept.reconciliation_reason or "")


async def test_a_held_critical_that_later_matches_pages_her_butler_with_a_fresh_clock(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    await lab.hl7(oru(control_id="L-1", mrn="", order=order, obx=[HB_CRITICAL]))
    clock.advance(timedelta(minutes=10))
    await lab.hl7(oru(control_id="L-2", mrn=mother["mrn"], order=order, obr25="C", obx=[HB_NORMAL]))
    async with session_factory() as session:
        alert = await session.scalar(select(CriticalAlert))
    assert alert is not None
    assert str(alert.mother_id) == mother["id"]
    assert alert.butler_id == api.staff.butlers["butler1"].id
    assert alert.due_at == clock.now() + timedelta(minutes=15)
    assert "report.unmatched" not in await kinds(api, "frontdesk")


async def test_results_after_a_second_pid_without_an_obr_are_refused(api: Api, lab: Lab) -> None:
    body = (
        "MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|PID-2|P|2.5\r"
        "PID|1||MRN-A^^^HOSP^MR\r"
        "OBR|1|O-A|F-A|2345-7^Glucose^LN|||20261128080000\r"
        "OBX|1|NM|2345-7^Glucose^LN||5.0|mmol/L|3.9-6.1|N|||F\r"
        "PID|2||MRN-B^^^HOSP^MR\r"
        "OBX|1|NM|2345-7^Glucose^LN||1.5|mmol/L|3.9-6.1|LL|||F\r"
    )
    code, echoed = await lab.hl7(body)
    assert (code, echoed) == ("AE", "PID-2")


async def test_an_update_naming_her_but_no_order_stays_with_her(api: Api, lab: Lab) -> None:
    mother, visit = await checked_in_mother(api)
    await lab.hl7(oru(control_id="NO-1", mrn=mother["mrn"], order=order_number(visit)))
    correction = oru(control_id="NO-2", mrn=mother["mrn"], order="", obr25="C")
    assert (await lab.hl7(correction))[0] == "AA"
    (report,) = (await api.client.get("/v1/reports", headers=api.auth("butler1"))).json()["items"]
    assert (report["status"], report["mother_id"]) == ("corrected", mother["id"])
