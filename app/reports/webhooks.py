"""Standard Webhooks signatures: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

TOLERANCE = timedelta(minutes=5)
# The scheme writes integer Unix seconds: ASCII digits and nothing else. Python's int() also
# reads "+123", " 123 ", "1_700", fullwidth and Arabic-Indic digits; those are refused, so one
# signed timestamp has exactly one spelling.
TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureInvalid(Exception):
    pass


def _key(secret: str) -> bytes:
    """Standard Webhooks secrets are 'whsec_<base64>'; a plain secret is used as its bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The signature over ``id.timestamp.body``, the timestamp as written on the wire."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(
    *,
    secrets: Iterable[str],
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    now: datetime,
) -> None:
    """Raise SignatureInvalid unless one signature matches one secret within the tolerance."""
    if not msg_id or not timestamp or not signatures:
        raise SignatureInvalid("webhook-id, webhook-timestamp and webhook-signature are required")
    if TIMESTAMP.fullmatch(timestamp) is None:
        raise SignatureInvalid("webhook-timestamp must be Unix seconds: ASCII digits only")
    sent = int(timestamp)
    if abs(now.timestamp() - sent) > TOLERANCE.total_seconds():
        raise SignatureInvalid("webhook-timestamp is outside the 5-minute tolerance")
    if len(msg_id) > 200:
        raise SignatureInvalid("webhook-id is longer than 200 characters")
    offered = [s.encode() for s in signatures.split() if s.startswith("v1,")]
    for secret in secrets:
        # Signed over the timestamp as received, not as re-formatted: "0123" is not "123".
        expected = sign(secret, msg_id, timestamp, body).encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureInvalid("no webhook-signature matches a current secret")
