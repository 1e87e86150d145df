"""HL7 v2 and FHIR parsing, status mapping, signatures and critical values: no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.reports import domain, fhir, hl7v2, webhooks
from app.reports.domain import PickupState, ReportStatus
from tests.helpers.messages import fhir_bundle, fixture, oru

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("obr25", "status"),
    [
        ("O", "registered"),
        ("I", "registered"),
        ("S", "registered"),
        ("P", "preliminary"),
        ("R", "partial"),
        ("F", "final"),
        ("C", "corrected"),
        ("X", "cancelled"),
    ],
)
def test_obr25_follows_the_v2_to_fhir_mapping(obr25: str, status: str) -> None:
    reading = domain.report_status_from_hl7(obr25, ["F"])
    assert reading.status.value == status
    assert reading.derived is False


@pytest.mark.parametrize(
    ("obx11", "status"),
    [
        (["F", "F"], "final"),
        (["F", "C"], "corrected"),
        (["F", "P"], "preliminary"),
        (["R"], "preliminary"),
        (["I", "I"], "registered"),
        ([], "unknown"),
    ],
)
def test_an_empty_obr25_is_derived_from_obx11_and_says_so(obx11: list[str], status: str) -> None:
    for obr25 in ("", "Z"):
        reading = domain.report_status_from_hl7(obr25, obx11)
        assert reading.status.value == status
        assert reading.derived is True
        assert "derived from OBX-11" in reading.note


def test_the_classic_ghh_lab_message() -> None:
    message = hl7v2.parse_message(fixture("oru-r01-glucose-v24.hl7"))
    header, (report,) = hl7v2.parse_oru(message, tz=TZ)
    assert (header.control_id, header.version) == ("CNTRL-3456", "2.4")
    assert (report.placer_order, report.filler_order, report.patient_mrn) == (
        "845439",
        "1045813",
        "555-44-4444",
    )
    assert report.status.status is ReportStatus.FINAL  # OBR-25 empty, OBX-11 F
    assert report.status.derived
    (obs,) = report.observations
    assert (obs.value_type, obs.numeric, obs.unit, obs.flag, obs.reference_range) == (
        "SN",
        182.0,
        "mg/dl",
        "H",
        "70_105",
    )


def test_two_obrs_with_lf_separators_and_disagreeing_statuses() -> None:
    message = hl7v2.parse_message(fixture("oru-r01-cbc-v25.hl7"))
    _, reports = hl7v2.parse_oru(message, tz=TZ)
    assert [r.placer_order for r in reports] == ["88502218", "855238581"]
    assert [len(r.observations) for r in reports] == [5, 5]
    # OBR-25 says F although four of its five OBX-11 say I or P: not final, partial.
    assert reports[0].status.status is ReportStatus.PARTIAL
    assert reports[0].status.derived
    assert reports[0].status.note == "OBR-25 F but 4 of 5 results pending (OBX-11 I/P): partial"
    # The second OBR-25 is empty (its F sits in OBR-26): derived from OBX-11, all P.
    assert reports[1].status.status is ReportStatus.PRELIMINARY
    assert reports[1].status.derived
    assert reports[0].patient_mrn == "10006579"


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_every_segment_separator(sep: str) -> None:
    body = oru(control_id="C1", mrn="MRN1", order="ORD-1", sep=sep)
    _, (report,) = hl7v2.parse_oru(hl7v2.parse_message(body), tz=TZ)
    assert len(report.observations) == 2


def test_value_types() -> None:
    body = oru(
        control_id="C2",
        mrn="M",
        order="O",
        obx=[
            "OBX|1|NM|718-7^Hgb^LN||65|g/L|110-150|LL|||F",
            "OBX|2|SN|2345-7^Glucose^LN||<^2.0|mmol/L|3.9-6.1|L|||F",
            "OBX|3|ST|X^Comment||hemolysed sample||||||F",
            "OBX|4|CWE|5196-1^HBsAg^LN||260385009^Negative^SCT||||||F",
            "OBX|5|TX|Y^Note||see doctor||||||P",
        ],
    )
    _, (report,) = hl7v2.parse_oru(hl7v2.parse_message(body), tz=TZ)
    got = [(o.value_type, o.value, o.numeric, o.flag) for o in report.observations]
    assert got == [
        ("NM", "65", 65.0, "LL"),
        ("SN", "<2.0", 2.0, "L"),  # the comparator is kept apart: "<" and 2.0
        ("ST", "hemolysed sample", None, None),
        ("CWE", "Negative (260385009)", None, None),
        ("TX", "see doctor", None, None),
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("PID|1||X", hl7v2.Hl7Rejected),
        ("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C9|P|2.5\rPID|1||X", hl7v2.Hl7Rejected),
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01||P|2.5\rPID|1||X", hl7v2.Hl7Rejected),
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01|C9|P|2.5\rPID|1||X", hl7v2.Hl7Unprocessable),
        ("MSH|#~\\&|A", hl7v2.Hl7Rejected),
    ],
)
def test_messages_we_do_not_accept(body: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        hl7v2.parse_oru(hl7v2.parse_message(body), tz=TZ)


def test_the_ack_echoes_msh10() -> None:
    message = hl7v2.parse_message(oru(control_id="CTRL-77", mrn="M", order="O"))
    ack = hl7v2.ack(message, "AE", "no | such ^ order", now=NOW)
    segments = ack.strip("\r").split("\r")
    assert segments[0].startswith("MSH|^~\\&|PREGNANCY-BUTLER|VIP-CLINIC|LIS|HOSP|")
    assert segments[1] == "MSA|AE|CTRL-77|no \\F\\ such \\S\\ order"  # HL7-escaped
    assert hl7v2.ack(None, "AR", "garbage", now=NOW).split("\r")[1] == "MSA|AR||garbage"


def test_the_fhir_bundle() -> None:
    _key, (report,) = fhir.parse_reports(json.loads(fhir_bundle(order="ORD-9", mrn="M9")))
    assert (report.placer_order, report.patient_mrn, report.filler_order) == (
        "ORD-9",
        "M9",
        "LIS-1",
    )
    # The identifier is unique only within its system, and per report code: both are in the key.
    assert report.source_key == "id:urn:example:lis:report|LIS-1:http://loinc.org|1504-0"
    assert report.status.status is ReportStatus.FINAL
    assert [o.code for o in report.observations] == ["1558-6", "1504-0", "1518-0"]
    assert report.observations[1].flag == "H"
    assert report.conclusion
    assert "IADPSG" in report.conclusion


def test_pickup_reopens_on_an_amendment_and_withdraws_on_cancel() -> None:
    after = domain.pickup_after_status
    assert after(PickupState.NOT_READY, None, ReportStatus.PRELIMINARY) is PickupState.NOT_READY
    assert (
        after(PickupState.NOT_READY, ReportStatus.PRELIMINARY, ReportStatus.FINAL)
        is PickupState.READY
    )
    assert (
        after(PickupState.DELIVERED, ReportStatus.FINAL, ReportStatus.CORRECTED)
        is PickupState.READY
    )
    assert (
        after(PickupState.DELIVERED, ReportStatus.FINAL, ReportStatus.FINAL)
        is PickupState.DELIVERED
    )
    assert (
        after(PickupState.PICKED_UP, ReportStatus.FINAL, ReportStatus.ENTERED_IN_ERROR)
        is PickupState.WITHDRAWN
    )
    with pytest.raises(domain.IllegalPickupError):
        domain.check_pickup(PickupState.READY, PickupState.DELIVERED)


def test_critical_values_by_flag_and_by_threshold() -> None:
    table = domain.load_thresholds()

    def obs(
        code: str, value: float, unit: str, flag: str | None = None
    ) -> domain.ParsedObservation:
        return domain.ParsedObservation(
            code, None, None, "NM", str(value), value, unit, None, flag, "F"
        )

    assert domain.critical_reason(obs("718-7", 65, "g/L"), table) == "haemoglobin 65 g/L < 70"
    assert domain.critical_reason(obs("718-7", 70, "g/L"), table) is None
    assert (
        domain.critical_reason(obs("2823-3", 6.5, "mmol/L"), table) == "potassium 6.5 mmol/L > 6.2"
    )
    assert domain.critical_reason(obs("1558-6", 22, "mmol/L"), table) == "glucose 22 mmol/L >= 22"
    assert domain.critical_reason(obs("777-3", 40, "10*9/L"), table) == "platelets 40 10*9/L < 50"
    assert domain.critical_reason(obs("x", 1, "u", flag="AA"), table) == "x: flagged AA"
    # Converted, never guessed: 65 g/dL is 650 g/L, above the high limit (a mistyped unit
    # reaches a clinician rather than passing).
    assert (
        domain.critical_reason(obs("718-7", 65, "g/dL"), table)
        == "haemoglobin 65 g/dL (= 650 g/L) > 200"
    )


def test_signatures() -> None:
    body = b'{"x":1}'
    at = int(NOW.timestamp())
    good = webhooks.sign("s1", "id1", at, body)
    webhooks.verify(
        secrets=["s1"], msg_id="id1", timestamp=str(at), signatures=good, body=body, now=NOW
    )
    rotated = f"{webhooks.sign('old', 'id1', at, body)} {good}"
    webhooks.verify(
        secrets=["s1"], msg_id="id1", timestamp=str(at), signatures=rotated, body=body, now=NOW
    )
    webhooks.verify(
        secrets=["old", "s1"], msg_id="id1", timestamp=str(at), signatures=good, body=body, now=NOW
    )
    for secrets, ts, sig, b in (
        (["wrong"], str(at), good, body),
        (["s1"], str(at - 301), webhooks.sign("s1", "id1", at - 301, body), body),
        (["s1"], str(at), good, b'{"x":2}'),
        (["s1"], str(at), None, body),
    ):
        with pytest.raises(webhooks.SignatureInvalid):
            webhooks.verify(
                secrets=secrets, msg_id="id1", timestamp=ts, signatures=sig, body=b, now=NOW
            )
