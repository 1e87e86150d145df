"""A corpus of bad input: each gets a clear error or ACK, nothing is half-written, and every
delivery to the lab endpoints is stored before it is judged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.mothers.models import Mother
from app.reports.models import InboundMessage, LabReport
from tests.helpers.api import Api
from tests.helpers.counts import COUNTS
from tests.helpers.factories import LAB_KEY, mother_body
from tests.helpers.lab import FHIR, HL7
from tests.helpers.messages import signed

GOOD = json.dumps(mother_body())

# (name, content-type, body bytes, expected status)
REST: list[tuple[str, str, bytes, int]] = [
    ("malformed JSON", "application/json", b'{"name": "x",', 400),
    ("JSON array, not an object", "application/json", b"[1, 2, 3]", 422),
    ("empty body", "application/json", b"", 422),
    ("null body", "application/json", b"null", 422),
    ("wrong content type", "text/plain", GOOD.encode(), 415),
    ("no content type", "", GOOD.encode(), 415),
    ("form instead of JSON", "application/x-www-form-urlencoded", b"name=x&mrn=y", 415),
    ("invalid UTF-8", "application/json", b'{"name": "\xff\xfe"}', 400),
    ("deep nesting", "application/json", b'{"name": ' + b"[" * 3000 + b"]" * 3000 + b"}", 400),
    ("NUL in a string", "application/json", GOOD.replace("MRN", "MR\\u0000N").encode(), 422),
    (
        "huge number",
        "application/json",
        GOOD.replace('"gravida": 1', '"gravida": 1e309').encode(),
        422,
    ),
    (
        "string for a number",
        "application/json",
        GOOD.replace('"gravida": 1', '"gravida": "one"').encode(),
        422,
    ),
    (
        "unknown field",
        "application/json",
        GOOD.replace('{"mrn"', '{"is_admin": true, "mrn"').encode(),
        422,
    ),
    ("huge body", "application/json", b'{"name": "' + b"x" * 2_000_000 + b'"}', 413),
]


@pytest.mark.parametrize(("name", "ctype", "body", "expect"), REST, ids=[r[0] for r in REST])
async def test_bad_rest_input_is_a_problem_and_writes_nothing(
    api: Api,
    session_factory: async_sessionmaker[AsyncSession],
    name: str,
    ctype: str,
    body: bytes,
    expect: int,
) -> None:
    headers = {**api.auth("frontdesk"), **({"content-type": ctype} if ctype else {})}
    response = await api.client.post("/v1/mothers", headers=headers, content=body)
    assert response.status_code == expect, (name, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == expect
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Mother)) == 0
    COUNTS["bad inputs tried"] += 1


@pytest.mark.parametrize(
    ("body", "line", "column", "offset"),
    [
        (b'{"mrn": "x",', 1, 13, 12),
        (b'{\n  "mrn": "x",\n  "name": \n}', 4, 1, 27),
        ('{"name": "王芳", "mrn": }'.encode(), 1, 23, 26),  # the offset counts bytes
    ],
)
async def test_malformed_json_says_where_it_breaks(
    api: Api, body: bytes, line: int, column: int, offset: int
) -> None:
    response = await api.client.post(
        "/v1/mothers",
        headers={**api.auth("frontdesk"), "content-type": "application/json"},
        content=body,
    )
    problem = response.json()
    assert (response.status_code, problem["type"]) == (400, "/problems/malformed-json")
    assert problem["json_error"] == {"line": line, "column": column, "offset": offset}
    assert f"line {line}, column {column} (byte {offset})" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["body"]  # not the offset as a "field"


@pytest.mark.parametrize("ctype", ["text/plain", "", "application/x-www-form-urlencoded"])
async def test_json_without_a_json_content_type_says_so(api: Api, ctype: str) -> None:
    headers = {**api.auth("frontdesk"), **({"content-type": ctype} if ctype else {})}
    response = await api.client.post("/v1/mothers", headers=headers, content=GOOD.encode())
    problem = response.json()
    assert (response.status_code, problem["type"]) == (415, "/problems/unsupported-media-type")
    assert "Content-Type: application/json" in problem["detail"]
    assert (ctype or "sent none") in problem["detail"]
    # And with the right one, the same bytes enrol her.
    ok = await api.client.post(
        "/v1/mothers",
        headers={**api.auth("frontdesk"), "content-type": "application/json; charset=utf-8"},
        content=GOOD.encode(),
    )
    assert ok.status_code == 201, ok.text


# Conditional headers and methods, as a client gets them wrong: (name, method, header
# value for If-Match / If-None-Match, expected status).
CONDITIONAL: list[tuple[str, str, dict[str, str], int]] = [
    ("unquoted If-Match", "PATCH", {"If-Match": "1"}, 400),
    ("If-Match with a stray quote", "PATCH", {"If-Match": '"1'}, 400),
    ("If-Match list with an unquoted member", "PATCH", {"If-Match": '"1", 2'}, 400),
    ("weak If-Match (strong comparison)", "PATCH", {"If-Match": 'W/"1"'}, 412),
    ("stale If-Match", "PATCH", {"If-Match": '"9"'}, 412),
    ("empty If-Match", "PATCH", {"If-Match": ""}, 428),
    ("garbage If-None-Match (ignored)", "GET", {"If-None-Match": "\x01,,,W/"}, 200),
    ("weak If-None-Match", "GET", {"If-None-Match": 'W/"1"'}, 304),
    ("If-None-Match *", "GET", {"If-None-Match": "*"}, 304),
    ("HEAD with a weak If-None-Match", "HEAD", {"If-None-Match": 'W/"1"'}, 304),
    ("HEAD", "HEAD", {}, 200),
    ("OPTIONS with a body", "OPTIONS", {}, 204),
    ("a method nobody serves", "PUT", {}, 405),
]


@pytest.mark.parametrize(
    ("name", "method", "headers", "expect"), CONDITIONAL, ids=[c[0] for c in CONDITIONAL]
)
async def test_bad_conditional_headers_and_methods_get_the_right_answer(
    api: Api, name: str, method: str, headers: dict[str, str], expect: int
) -> None:
    created = await api.client.post(
        "/v1/mothers", headers=api.auth("frontdesk"), json=mother_body()
    )
    path = f"/v1/mothers/{created.json()['id']}"
    response = await api.client.request(
        method,
        path,
        headers={**api.auth("frontdesk"), **headers},
        json={"phone": "13900000009"} if method in ("PATCH", "OPTIONS", "PUT") else None,
    )
    assert response.status_code == expect, (name, response.text[:300])
    if expect >= 400 and method != "HEAD":
        assert response.headers["content-type"].startswith("application/problem+json")
    if expect == 400:
        assert "double quotes" in response.json()["detail"]
    if method in ("HEAD", "OPTIONS") or expect == 304:
        assert response.content == b""
    if expect in (204, 405):
        assert response.headers["allow"] == "GET, HEAD, PATCH, OPTIONS"
    after = (await api.client.get(path, headers=api.auth("frontdesk"))).json()
    assert after["phone"] != "13900000009" or (method, expect) == ("PATCH", 200)  # unchanged
    COUNTS["bad inputs tried"] += 1


MSH = "MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|{id}|P|2.5\r"
# (name, body bytes, acceptable MSA-1 codes)
HL7_CORPUS: list[tuple[str, bytes, set[str]]] = [
    ("no MSH", b"PID|1||MRN1\rOBR|1|ORD-1\r", {"AR"}),
    ("empty", b"", {"AR"}),
    (
        "wrong encoding characters",
        b"MSH#~|\\&#LIS#HOSP#PB#VIP#2026##ORU^R01#BAD-ENC#P#2.5\r",
        {"AR", "AE"},
    ),
    ("truncated inside MSH", b"MSH|^~\\&|LIS|HO", {"AR"}),
    ("binary", bytes(range(256)) * 4, {"AR"}),
    ("invalid UTF-8", (MSH.format(id="UTF-1") + "PID|1||\xff\r").encode("latin-1"), {"AR", "AE"}),
    ("not a result (ADT)", MSH.format(id="ADT-1").replace("ORU^R01", "ADT^A01").encode(), {"AR"}),
    ("ORU without OBR", (MSH.format(id="NOOBR-1") + "PID|1||MRN1\r").encode(), {"AE", "AR"}),
    (
        "OBX before any OBR",
        (MSH.format(id="OBX-1") + "PID|1||MRN1\rOBX|1|NM|718-7^Hb^LN||118\r").encode(),
        {"AE", "AR"},
    ),
]


def lab_headers(body: bytes, clock: FrozenClock) -> dict[str, str]:
    return {"X-API-Key": LAB_KEY, **signed(body, at=int(clock.now().timestamp()))}


@pytest.mark.parametrize(("name", "body", "codes"), HL7_CORPUS, ids=[h[0] for h in HL7_CORPUS])
async def test_bad_hl7_gets_a_negative_ack_and_is_stored(
    api: Api,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    name: str,
    body: bytes,
    codes: set[str],
) -> None:
    response = await api.client.post(
        HL7,
        content=body,
        headers={**lab_headers(body, clock), "content-type": "application/hl7-v2"},
    )
    assert response.status_code in (200, 400, 413, 415, 422), (name, response.status_code)
    msa = next((s for s in response.text.split("\r") if s.startswith("MSA")), None)
    assert msa is not None, (name, response.text[:200])
    assert msa.split("|")[1] in codes, (name, msa)
    async with session_factory() as session:
        stored = await session.scalar(select(func.count()).select_from(InboundMessage))
        reports = await session.scalar(select(func.count()).select_from(LabReport))
    assert stored == 1, name  # kept, exactly as received, whatever it was
    assert reports == 0, name
    COUNTS["bad inputs tried"] += 1


def dr(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "Hb"}, **extra}


FHIR_CORPUS: list[tuple[str, bytes]] = [
    ("malformed JSON", b'{"resourceType": "DiagnosticReport",'),
    ("not JSON", b"MSH|^~\\&|not fhir"),
    ("wrong resource type", json.dumps({"resourceType": "Patient", "id": "p1"}).encode()),
    ("JSON array", b"[]"),
    ("invalid UTF-8", b'{"resourceType": "Diagnostic\xffReport"}'),
    ("an R5-only status", json.dumps(dr(status="final-ish")).encode()),
    ("an STU3-only element", json.dumps(dr(codedDiagnosis=[{"text": "x"}])).encode()),
    (
        "a Bundle of nothing useful",
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}).encode(),
    ),
    (
        "deep nesting",
        b'{"resourceType": "DiagnosticReport", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    ),
    (
        "a missing required element",
        json.dumps({"resourceType": "DiagnosticReport", "status": "final"}).encode(),
    ),
]


@pytest.mark.parametrize(("name", "body"), FHIR_CORPUS, ids=[f[0] for f in FHIR_CORPUS])
async def test_bad_fhir_gets_an_operation_outcome_and_is_stored(
    api: Api,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
    name: str,
    body: bytes,
) -> None:
    response = await api.client.post(
        FHIR,
        content=body,
        headers={**lab_headers(body, clock), "content-type": "application/fhir+json"},
    )
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:200])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", name
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    async with session_factory() as session:
        stored = await session.scalar(select(func.count()).select_from(InboundMessage))
        reports = await session.scalar(select(func.count()).select_from(LabReport))
    assert stored == 1, name
    assert reports == 0, name
    COUNTS["bad inputs tried"] += 1
