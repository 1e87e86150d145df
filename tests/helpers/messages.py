"""Builders of lab messages for tests: HL7 v2 ORU^R01 text and FHIR Bundles, plus signing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from app.reports.webhooks import sign

FIXTURES = Path(__file__).resolve().parents[1] / "reports" / "fixtures"
SECRET = "test-secret"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def oru(
    *,
    control_id: str,
    mrn: str,
    order: str,
    obr25: str = "F",
    filler: str = "F-1",
    obx: list[str] | None = None,
    sep: str = "\r",
    code: str = "24317-0^Hemogram^LN",
) -> str:
    obx = (
        obx
        if obx is not None
        else [
            "OBX|1|NM|718-7^Hemoglobin^LN||112|g/L|110-150|N|||F",
            "OBX|2|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F",
        ]
    )
    segments = [
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|{control_id}|P|2.5",
        f"PID|1||{mrn}^^^HOSP^MR||TEST^MOTHER",
        f"OBR|1|{order}|{filler}|{code}|||20261128080000|||||||||||||||20261128092500|||{obr25}",
        *obx,
    ]
    return sep.join(segments) + sep


def signed(
    body: str | bytes, *, at: int, secret: str = SECRET, msg_id: str | None = None
) -> dict[str, str]:
    raw = body.encode() if isinstance(body, str) else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign(secret, msg_id, at, raw),
    }


def fhir_bundle(*, order: str, mrn: str, status: str = "final", report_id: str = "LIS-1") -> str:
    data: dict[str, Any] = json.loads(fixture("fhir-r4-ogtt-bundle.json"))
    report = data["entry"][0]["resource"]
    report["basedOn"][0]["identifier"]["value"] = order
    report["subject"]["identifier"]["value"] = mrn
    report["status"] = status
    report["identifier"][0]["value"] = report_id
    for entry in data["entry"][1:]:
        entry["resource"]["subject"]["identifier"]["value"] = mrn
    return json.dumps(data)


def ogtt_obx(fasting: float, one_hour: float, two_hours: float) -> list[str]:
    """A 75 g OGTT's three draws in mmol/L, as a LIS sends them (LOINC 1558-6, 1504-0 labelled
    "75 g", 1518-0), each flagged H at or above its IADPSG limit (5.1 / 10.0 / 8.5)."""
    draws = [
        ("1558-6^Fasting glucose^LN", fasting, 5.1),
        ("1504-0^Glucose 1 hour post 75 g glucose PO^LN", one_hour, 10.0),
        ("1518-0^Glucose 2 hours post 75 g glucose PO^LN", two_hours, 8.5),
    ]
    return [
        f"OBX|{n}|NM|{code}||{value:g}|mmol/L|<{limit:.1f}|{'H' if value >= limit else 'N'}|||F"
        for n, (code, value, limit) in enumerate(draws, start=1)
    ]
