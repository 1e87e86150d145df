"""Standard Webhooks timestamps as the scheme writes them: integer Unix seconds in ASCII digits,
and the signature checked over the timestamp exactly as it arrived."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from app.reports import webhooks
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY
from tests.helpers.lab import HL7, Lab
from tests.helpers.messages import SECRET, oru
from tests.helpers.problems import assert_problem

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
AT = int(NOW.timestamp())
BODY = b'{"x":1}'


def raw_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """What a sender that signs the header's own text computes (independent of sign())."""
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def check(timestamp: str, signature: str) -> None:
    webhooks.verify(
        secrets=["s1"],
        msg_id="id1",
        timestamp=timestamp,
        signatures=signature,
        body=BODY,
        now=NOW,
    )


def test_plain_digits_signed_as_received_pass() -> None:
    check(str(AT), raw_signature("s1", "id1", str(AT), BODY))


@pytest.mark.parametrize(
    "spelling",
    [
        f"+{AT}",
        f" {AT}",
        f"{AT} ",
        f"{AT}\n",
        f"{AT:_}",  # 1_764_322_200
        f"{float(AT):e}",  # 1.764322e+09
        f"{AT}.0",
        hex(AT),
        f"-{AT}",
        "".join(chr(0xFF10 + int(d)) for d in str(AT)),  # fullwidth digits
        "".join(chr(0x0660 + int(d)) for d in str(AT)),  # Arabic-Indic digits
        "",
    ],
)
def test_other_spellings_of_the_time_are_refused(spelling: str) -> None:
    """Even signed over that very spelling: int() reads them all, the scheme does not."""
    with pytest.raises(webhooks.SignatureInvalid):
        check(spelling, raw_signature("s1", "id1", spelling, BODY))


def test_the_signature_covers_the_timestamp_as_received_not_reformatted() -> None:
    """Leading zeros are digits (same second), but a signature over "0<ts>" is not one over
    "<ts>": the check uses the header's text, so a re-spelled header fails its signature."""
    padded = f"0{AT}"
    check(padded, raw_signature("s1", "id1", padded, BODY))
    with pytest.raises(webhooks.SignatureInvalid):
        check(padded, raw_signature("s1", "id1", str(AT), BODY))
    with pytest.raises(webhooks.SignatureInvalid):
        check(str(AT), raw_signature("s1", "id1", padded, BODY))


async def test_a_lab_post_with_a_plus_signed_timestamp_is_401(api: Api, lab: Lab) -> None:
    body = oru(control_id="TS1", mrn="M", order="O").encode()
    at = f"+{int(lab.clock.now().timestamp())}"
    headers = {
        "X-API-Key": LAB_KEY,
        "webhook-id": "msg_ts1",
        "webhook-timestamp": at,
        "webhook-signature": raw_signature(SECRET, "msg_ts1", at, body),
    }
    response = await api.client.post(HL7, content=body, headers=headers)
    assert_problem(response, 401)
    assert "digits" in response.json()["detail"]
