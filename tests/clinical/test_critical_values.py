"""Critical values (危急值) closed by a clinician, API level, both databases (issue 20 point 7).

- a butler or the desk taps "acknowledge" → 403 naming the doctor's closure; the butler records
  "mother contacted" (who, when, note on the register), her call leaves her list, and the alert
  still escalates → 2018 core system of medical quality (危急值报告制度): a clinician receives it
- a doctor closes it with the read-back and the action → on the register; every tier's page
  leaves the lists; it no longer escalates; closing without read-back or action → 422 → same
- a doctor cannot take the page off her list without closing the value → 409 → same
- nobody closes it → the obstetric lead's list at 15 min, the duty office's at 30, each step on
  the report's trail; the duty office is the last tier; a late run climbs one tier per run
  → Fei et al. 2017 (15-minute target), CAP 15–30 min, CLSI GP47 (one hour)
- the lab cancels the report → its alert is voided with the reason, its pages closed, her
  butler's call withdrawn (and told), nothing escalates → traceable end to end
- the report is detached (another woman's sample) → her alert is voided; the value pages afresh
  unmatched; attached to the right mother → her butler is paged with the whole clock
- a doctor who had closed it for the wrong mother is told to review the action → same
- total bile acids 39.9 / 40 / 40.1 µmol/L → not / critical / critical → CSOG/CMA ICP 2024 (5-2)
- glucose by the molar 2-hour OGTT code 14995-5: 21.9 / 22.0 mmol/L → not / critical → table
- every analyte added to the default list, just below / at / just above its limit, through an
  ORU^R01 → critical exactly where its rule says → app/reports/critical_values.json sources
- the register's indicators: counts, median and P90 to a doctor's closure → 2018 rules
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.notifications.models import OutboxMessage
from app.reports.models import LabObservation, LabReport
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem
from tests.helpers.visits import checked_in_mother, order_number

HB_58 = (
    "OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN^HGB^血红蛋白^L||58|g/L^g/L^UCUM|"
    "110-150|L|||F"
)
CLOSE = {"read_back": "Hb 58 g/L", "action_taken": "Phoned her: day ward now for transfusion"}


async def critical_for(api: Api, lab: Lab, control_id: str = "CV-1") -> dict[str, Any]:
    """A mother of butler1's with a critical haemoglobin; the alert as the register shows it."""
    mother, visit = await checked_in_mother(api)
    body = oru(control_id=control_id, mrn=mother["mrn"], order=order_number(visit), obx=[HB_58])
    assert await lab.hl7(body) == ("AA", control_id)
    (alert,) = await register(api)
    return {"alert": alert, "mother": mother, "visit": visit, "message": body}


async def register(api: Api, who: str = "doctor", **query: str) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/alerts", headers=api.auth(who), params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def pages(api: Api, who: str) -> list[tuple[str, str, int]]:
    """(audience, kind, priority) of the open worklist items about alerts."""
    response = await api.client.get("/v1/worklist", headers=api.auth(who))
    assert response.status_code == 200, response.text
    return [
        (i["audience"], i["kind"], i["priority"]) for i in response.json()["items"] if i["alert_id"]
    ]


async def butler_alerts(api: Api, who: str = "butler1") -> list[dict[str, Any]]:
    response = await api.client.get("/v1/me/assignments", headers=api.auth(who))
    assert response.status_code == 200, response.text
    return [i for i in response.json()["items"] if i["kind"] == "alert"]


async def escalate(api: Api) -> list[dict[str, Any]]:
    response = await api.client.post("/v1/alerts/escalate", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def trail(api: Api, report_id: str, kind: str) -> list[str]:
    detail = (await api.client.get(f"/v1/reports/{report_id}", headers=api.auth("doctor"))).json()
    return [e["note"] or "" for e in detail["events"] if e["kind"] == kind]


# Who closes it ---------------------------------------------------------------------------


async def test_a_butler_cannot_close_a_critical_value_but_records_that_she_reached_the_mother(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await critical_for(api, lab)
    alert_id = case["alert"]["id"]
    assert [a["title"] for a in await butler_alerts(api)] == [
        "Critical value: contact her now (haemoglobin 58 g/L < 70)"
    ]
    for who in ("butler1", "frontdesk", "admin"):
        refused = assert_problem(
            await api.client.post(
                f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth(who), json=CLOSE
            ),
            403,
        )
        assert refused["type"] == "/problems/critical-value-closed-by-doctor"
        assert f"/v1/alerts/{alert_id}/mother-contacted" in refused["detail"]
    clock.advance(timedelta(minutes=5))
    contacted = await api.client.post(
        f"/v1/alerts/{alert_id}/mother-contacted",
        headers=api.auth("butler1"),
        json={"note": "Phoned her at 10:05; she is coming to the clinic now."},
    )
    assert contacted.status_code == 200, contacted.text
    line = contacted.json()
    assert (line["state"], line["mother_contacted_by"], line["acknowledged_at"]) == (
        "open",
        "butler:butler1",
        None,
    )
    assert line["mother_contacted_at"] == "2026-11-28T02:05:00Z"
    assert await butler_alerts(api) == []  # her part is done
    assert ("doctor", "alert.critical", 0) in await pages(api, "doctor")  # the doctor's is not
    # A second tap keeps the first contact.
    again = await api.client.post(
        f"/v1/alerts/{alert_id}/mother-contacted",
        headers=api.auth("butler1"),
        json={"note": "again"},
    )
    assert again.json()["mother_contact_note"] == line["mother_contact_note"]
    # Reaching the mother does not close the value: it still climbs to the obstetric lead.
    clock.advance(timedelta(minutes=10))
    assert [(a["id"], a["tier_name"]) for a in await escalate(api)] == [
        (alert_id, "obstetric_lead")
    ]
    (shown,) = await register(api, open="true")
    assert (shown["mother_contact_note"], shown["tier"]) == (line["mother_contact_note"], 1)


async def test_a_doctor_closes_it_with_the_read_back_and_the_action_and_it_stops(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await critical_for(api, lab)
    alert_id = case["alert"]["id"]
    for incomplete in (
        {},
        {"action_taken": CLOSE["action_taken"]},
        {"read_back": "Hb 58 g/L"},
        {"read_back": "Hb 58 g/L", "action_taken": "   "},
        {"read_back": " ", "action_taken": CLOSE["action_taken"]},
    ):
        assert_problem(
            await api.client.post(
                f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=incomplete
            ),
            422,
        )
    assert (await register(api))[0]["state"] == "open"
    clock.advance(timedelta(minutes=7))
    closed = await api.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    assert closed.status_code == 200, closed.text
    line = closed.json()
    assert (line["state"], line["acknowledged_by"], line["read_back"], line["action_taken"]) == (
        "acknowledged",
        "doctor:doctor",
        "Hb 58 g/L",
        CLOSE["action_taken"],
    )
    assert line["acknowledged_at"] == "2026-11-28T02:07:00Z"
    assert await register(api) == []  # nothing open
    (everything,) = await register(api, open="false")
    assert everything == line
    for who in ("doctor", "frontdesk", "admin"):
        assert await pages(api, who) == []
    assert await butler_alerts(api) == []
    clock.advance(timedelta(hours=2))
    assert await escalate(api) == []
    notes = await trail(api, line["report_id"], "alert_acknowledged")
    assert notes == [f"read back: Hb 58 g/L; action: {CLOSE['action_taken']}"]
    # A second click (a retry from a flaky connection) answers the closure as it stands.
    again = await api.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    assert again.status_code == 200
    assert again.json() == line
    # Another read-back or action on a closed value is not dropped in silence (issue 18).
    other = await api.client.post(
        f"/v1/alerts/{alert_id}/acknowledge",
        headers=api.auth("doctor"),
        json={"read_back": "other", "action_taken": "other"},
    )
    assert "closed already" in assert_problem(other, 409)["detail"]
    assert (await register(api, open="false"))[0] == line  # what was recorded stays


async def test_a_doctor_cannot_take_the_page_off_her_list_without_closing_the_value(
    api: Api, lab: Lab
) -> None:
    await critical_for(api, lab)
    items = (await api.client.get("/v1/worklist", headers=api.auth("doctor"))).json()["items"]
    (page,) = [i for i in items if i["kind"] == "alert.critical"]
    refused = await api.client.post(
        f"/v1/worklist/{page['id']}/acknowledge",
        headers=api.auth("doctor"),
        json={"note": "seen"},
    )
    assert assert_problem(refused, 409)["type"] == "/problems/critical-value-still-open"
    assert ("doctor", "alert.critical", 0) in await pages(api, "doctor")


# The tiers -------------------------------------------------------------------------------


async def test_nobody_closes_it_the_lead_then_the_duty_office(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await critical_for(api, lab)
    alert_id, report_id = case["alert"]["id"], case["alert"]["report_id"]
    assert (case["alert"]["tier"], case["alert"]["tier_name"]) == (0, "doctor_on_duty")
    clock.advance(timedelta(minutes=14, seconds=59))
    assert await escalate(api) == []
    clock.advance(timedelta(seconds=1))  # 15 minutes: the obstetric lead
    (up,) = await escalate(api)
    assert (up["id"], up["tier"], up["tier_name"]) == (alert_id, 1, "obstetric_lead")
    assert up["due_at"] == "2026-11-28T02:30:00Z"
    assert ("obstetric_lead", "alert.escalated", 0) in await pages(api, "doctor")
    assert ("obstetric_lead", "alert.escalated", 0) in await pages(api, "admin")
    assert await pages(api, "frontdesk") == []
    clock.advance(timedelta(minutes=14, seconds=59))
    assert await escalate(api) == []
    clock.advance(timedelta(seconds=1))  # 30 minutes: the hospital's duty office
    (up,) = await escalate(api)
    assert (up["tier"], up["tier_name"]) == (2, "duty_office")
    assert ("duty_office", "alert.escalated", 0) in await pages(api, "admin")
    assert "duty_office" not in {a for a, _, _ in await pages(api, "doctor")}
    clock.advance(timedelta(hours=3))
    assert await escalate(api) == []  # the last tier keeps it until a doctor closes it
    assert [n.split(":")[0] for n in await trail(api, report_id, "alert_escalated")] == [
        "tier 1 (the obstetric lead)",
        "tier 2 (the hospital's duty office)",
    ]
    # The doctor's closure takes it off every tier's list.
    await api.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    for who in ("doctor", "admin"):
        assert await pages(api, who) == []


async def test_a_late_run_climbs_one_tier_at_a_time(api: Api, lab: Lab, clock: FrozenClock) -> None:
    case = await critical_for(api, lab)
    clock.advance(timedelta(minutes=50))  # the worker was down
    assert [a["tier"] for a in await escalate(api)] == [1]
    assert [a["tier"] for a in await escalate(api)] == [2]
    assert await escalate(api) == []
    assert len(await trail(api, case["alert"]["report_id"], "alert_escalated")) == 2


# Void ------------------------------------------------------------------------------------


async def test_a_cancelled_report_voids_its_alert(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    case = await critical_for(api, lab)
    alert_id = case["alert"]["id"]
    clock.advance(timedelta(minutes=3))
    cancelled = oru(
        control_id="CV-2",
        mrn=case["mother"]["mrn"],
        order=order_number(case["visit"]),
        obr25="X",
        obx=[HB_58.replace("|||F", "|||X")],
    )
    assert await lab.hl7(cancelled) == ("AA", "CV-2")
    assert await register(api) == []
    (line,) = await register(api, open="false")
    assert (line["state"], line["voided_by"]) == ("voided", "lab")
    assert line["void_reason"] == "the lab withdrew the report (cancelled)"
    assert line["voided_at"] == "2026-11-28T02:03:00Z"
    for who in ("doctor", "admin"):
        assert await pages(api, who) == []
    assert await butler_alerts(api) == []
    async with session_factory() as session:
        told = list(
            await session.scalars(
                select(OutboxMessage.topic).where(OutboxMessage.topic.like("alert.%"))
            )
        )
    assert told == ["alert.critical", "alert.voided"]  # her phone hears it is withdrawn
    clock.advance(timedelta(hours=1))
    assert await escalate(api) == []
    assert_problem(
        await api.client.post(
            f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=CLOSE
        ),
        409,
    )


async def test_a_detached_report_voids_its_alert_and_the_right_mother_is_paged_afresh(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    case = await critical_for(api, lab)
    alert_id, report_id = case["alert"]["id"], case["alert"]["report_id"]
    other = await enrol(api, serial="014", primary_butler_id=str(api.staff.butlers["butler2"].id))
    visit = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": other["mrn"]}
    )
    assert visit.status_code in (200, 201), visit.text
    clock.advance(timedelta(minutes=4))
    detached = await api.client.post(
        f"/v1/reports/{report_id}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "the lab says the sample was another woman's"},
    )
    assert detached.status_code == 200, detached.text
    lines = {a["id"]: a for a in await register(api, open="false")}
    voided = lines.pop(alert_id)
    assert voided["state"] == "voided"
    assert "another woman's" in voided["void_reason"]
    (fresh,) = lines.values()  # for the real patient, whom nobody has matched yet
    assert (fresh["state"], fresh["mother_id"], fresh["tier"]) == ("open", None, 0)
    assert await butler_alerts(api) == []
    assert ("doctor", "critical.unmatched", 0) in await pages(api, "doctor")
    assert ("doctor", "alert.critical", 0) not in await pages(api, "doctor")
    # The desk attaches it to the right mother: her butler is paged, with the whole clock.
    clock.advance(timedelta(minutes=10))
    cbc = next(o["id"] for o in visit.json()["exam_orders"] if o["exam_code"] == "cbc")
    attached = await api.client.post(
        f"/v1/reports/{report_id}/attach",
        headers=api.auth("frontdesk"),
        json={"exam_order_id": cbc, "reason": "lab: the sample was hers", "override": True},
    )
    assert attached.status_code == 200, attached.text
    (paged,) = await register(api)
    assert (paged["id"], paged["mother_id"]) == (fresh["id"], other["id"])
    assert paged["butler_id"] == str(api.staff.butlers["butler2"].id)
    assert paged["due_at"] == "2026-11-28T02:29:00Z"  # 15 minutes from the attachment
    assert [a["id"] for a in await butler_alerts(api, "butler2")] == [fresh["id"]]
    assert ("doctor", "alert.critical", 0) in await pages(api, "doctor")
    async with session_factory() as session:
        butlers = list(
            await session.scalars(
                select(OutboxMessage.butler_id).where(OutboxMessage.topic == "alert.critical")
            )
        )
    assert butlers == [api.staff.butlers["butler1"].id, api.staff.butlers["butler2"].id]


async def test_a_closure_for_the_wrong_mother_is_voided_and_the_doctor_told(
    api: Api, lab: Lab
) -> None:
    case = await critical_for(api, lab)
    alert_id = case["alert"]["id"]
    await api.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    await api.client.post(
        f"/v1/reports/{case['alert']['report_id']}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "another woman's sample"},
    )
    closed = {a["id"]: a for a in await register(api, open="false")}[alert_id]
    assert (closed["state"], closed["read_back"]) == ("voided", "Hb 58 g/L")  # as it happened
    assert ("doctor", "alert.voided", 0) in await pages(api, "doctor")


# The list of critical values -------------------------------------------------------------


def _obx(seq: int, code: str, display: str, value: str, unit: str, ref: str) -> str:
    low, high = (float(x) for x in ref.split("-"))
    flag = "L" if float(value) < low else "H" if float(value) > high else "N"
    return (
        f"OBX|{seq}|NM|{code}^{display}^LN||{value}|{unit}^{unit}^UCUM|{ref}|{flag}|||F|||"
        "20261128091500"
    )


async def results(
    api: Api,
    lab: Lab,
    session_factory: async_sessionmaker[AsyncSession],
    panel: str,
    code: str,
    display: str,
    unit: str,
    ref: str,
    values: list[str],
    *,
    order: str,
    mrn: str,
) -> list[str | None]:
    """One ORU^R01 with a result per value; the critical reason of each, in order."""
    filler = f"F-{code}-{values[0]}"
    body = oru(
        control_id=f"T-{filler}",
        mrn=mrn,
        order=order,
        filler=filler,
        code=panel,
        obx=[_obx(n, code, display, v, unit, ref) for n, v in enumerate(values, start=1)],
    )
    assert await lab.hl7(body) == ("AA", f"T-{filler}")
    async with session_factory() as session:
        rows = await session.scalars(
            select(LabObservation.critical_reason)
            .join(LabReport, LabReport.id == LabObservation.report_id)
            .where(LabReport.filler_order == filler)
            .order_by(LabObservation.seq)
        )
        return list(rows)


COAG, CBC, CHEM = "34528-0^Coagulation panel^LN", "58410-2^CBC panel^LN", "24323-8^CMP^LN"

# (panel, code, display, unit, reference range, [(value, critical?)]) just below, at, above.
LIMITS = [
    (
        COAG,
        "3255-7",
        "Fibrinogen",
        "g/L",
        "2.0-4.0",
        [("1.9", True), ("2.0", False), ("2.1", False)],
    ),
    (
        COAG,
        "5902-2",
        "Prothrombin time (PT)",
        "s",
        "11.0-13.5",
        [("29.9", False), ("30.0", False), ("30.1", True)],
    ),
    (COAG, "14979-9", "aPTT", "s", "25-35", [("74.9", False), ("75.0", False), ("75.1", True)]),
    (
        CBC,
        "6690-2",
        "Leukocytes",
        "10*9/L",
        "3.5-9.5",
        [("1.9", True), ("2.0", False), ("2.1", False)],
    ),
    (
        CBC,
        "26464-8",
        "Leukocytes",
        "10*9/L",
        "3.5-9.5",
        [("29.9", False), ("30.0", False), ("30.1", True)],
    ),
    (CBC, "718-7", "Hemoglobin", "g/L", "110-150", [("199", False), ("200", False), ("201", True)]),
    (
        CBC,
        "777-3",
        "Platelets",
        "10*9/L",
        "125-350",
        [("999", False), ("1000", False), ("1001", True)],
    ),
    (
        CHEM,
        "2951-2",
        "Sodium",
        "mmol/L",
        "136-146",
        [("119", True), ("120", False), ("121", False)],
    ),
    (
        CHEM,
        "2947-0",
        "Sodium",
        "mmol/L",
        "136-146",
        [("159", False), ("160", False), ("161", True)],
    ),
    (
        CHEM,
        "2000-8",
        "Calcium",
        "mmol/L",
        "2.10-2.55",
        [("1.49", True), ("1.50", False), ("1.51", False)],
    ),
    (
        CHEM,
        "2000-8",
        "Calcium",
        "mmol/L",
        "2.10-2.55",
        [("3.24", False), ("3.25", False), ("3.26", True)],
    ),
    (CHEM, "14682-9", "Creatinine", "umol/L", "41-73", [("89", False), ("90", True), ("91", True)]),
    (
        CHEM,
        "2160-0",
        "Creatinine",
        "mg/dL",
        "0.5-0.9",
        [("1.01", False), ("1.02", True), ("1.03", True)],
    ),
    (CHEM, "1742-6", "ALT", "U/L", "7-40", [("299", False), ("300", True), ("301", True)]),
    (CHEM, "1920-8", "AST", "U/L", "13-35", [("299", False), ("300", True), ("301", True)]),
    (
        CHEM,
        "14628-2",
        "Bile acid",
        "umol/L",
        "0.0-10.0",
        [("39.9", False), ("40.0", True), ("40.1", True)],
    ),
    (
        CHEM,
        "14995-5",
        "Glucose 2h post 75 g",
        "mmol/L",
        "3.9-8.5",
        [("21.9", False), ("22.0", True), ("22.1", True)],
    ),
]


async def test_each_added_analyte_pages_exactly_at_its_limit(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    wrong = []
    for panel, code, display, unit, ref, cases in LIMITS:
        reasons = await results(
            api,
            lab,
            session_factory,
            panel,
            code,
            display,
            unit,
            ref,
            [v for v, _ in cases],
            order=order_number(visit),
            mrn=mother["mrn"],
        )
        for (value, critical), reason in zip(cases, reasons, strict=True):
            if (reason is not None) != critical:
                wrong.append(f"{code} {value} {unit}: {reason or 'not critical'}")
    assert wrong == []


async def test_bile_acids_page_from_40_and_the_reason_names_the_rule(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    reasons = await results(
        api,
        lab,
        session_factory,
        CHEM,
        "14628-2",
        "Bile acid [Moles/volume] in Serum or Plasma",
        "umol/L",
        "0.0-10.0",
        ["40"],
        order=order_number(visit),
        mrn=mother["mrn"],
    )
    assert reasons == ["total bile acids 40 umol/L >= 40"]
    (alert,) = await register(api)
    assert alert["reason"] == "total bile acids 40 umol/L >= 40"
    quiet = await results(
        api,
        lab,
        session_factory,
        CHEM,
        "14628-2",
        "Bile acid",
        "umol/L",
        "0.0-10.0",
        ["39.9"],
        order=order_number(visit),
        mrn=mother["mrn"],
    )
    assert quiet == [None]
    assert len(await register(api)) == 1  # 39.9 paged nobody


async def test_glucose_in_mmol_per_litre_under_the_molar_ogtt_code_pages(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother, visit = await checked_in_mother(api)
    reasons = await results(
        api,
        lab,
        session_factory,
        "1518-0^OGTT^LN",
        "14995-5",
        "Glucose [Moles/volume] in Serum or Plasma --2 hours post 75 g glucose PO",
        "mmol/L",
        "3.9-8.5",
        ["22.0"],
        order=order_number(visit, "ogtt"),
        mrn=mother["mrn"],
    )
    assert reasons == ["glucose 22.0 mmol/L >= 22"]
    assert [a["reason"] for a in await register(api)] == ["glucose 22.0 mmol/L >= 22"]


# The register's indicators ---------------------------------------------------------------


async def test_the_register_counts_and_times_closures(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    first = await critical_for(api, lab)
    clock.advance(timedelta(minutes=10))
    await api.client.post(
        f"/v1/alerts/{first['alert']['id']}/acknowledge", headers=api.auth("doctor"), json=CLOSE
    )
    second_mother = await enrol(
        api, serial="024", primary_butler_id=str(api.staff.butlers["butler1"].id)
    )
    visit = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": second_mother["mrn"]}
    )
    await lab.hl7(
        oru(
            control_id="CV-9",
            mrn=second_mother["mrn"],
            order=order_number(visit.json()),
            obx=[HB_58],
        )
    )
    clock.advance(timedelta(minutes=20))
    response = await api.client.get("/v1/alerts/indicators", headers=api.auth("doctor"))
    assert response.status_code == 200, response.text
    found = response.json()
    assert {
        k: found[k] for k in ("total", "open", "acknowledged", "voided", "open_past_target")
    } == {
        "total": 2,
        "open": 1,
        "acknowledged": 1,
        "voided": 0,
        "open_past_target": 1,
    }
    assert (found["median_minutes_to_acknowledge"], found["p90_minutes_to_acknowledge"]) == (10, 10)
    assert (found["unacknowledged_rate"], found["acknowledged_within_target"]) == (0.5, 1)
    assert_problem(await api.client.get("/v1/alerts/indicators", headers=api.auth("butler1")), 403)
