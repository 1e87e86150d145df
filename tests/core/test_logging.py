"""Logs are structured, carry the request id and no personal numbers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.core.logging import JsonFormatter, scrub
from tests.helpers.api import Api
from tests.helpers.factories import mother_body, national_id


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_logs_carry_no_national_id_or_phone(api: Api, log_lines: io.StringIO) -> None:
    body = mother_body()
    created = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert created.status_code == 201
    mother_id = created.json()["id"]
    await api.client.get(
        "/v1/mothers", headers=api.auth("frontdesk"), params={"phone": body["phone"]}
    )
    await api.client.get(f"/v1/mothers/{mother_id}", headers=api.auth("frontdesk"))
    bad = dict(body, national_id=body["national_id"][:-1] + "0", mrn="MRNBAD01")
    await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=bad)

    text = log_lines.getvalue()
    records = [json.loads(line) for line in text.splitlines()]
    access = [r for r in records if r.get("event") == "http_request"]
    assert len(access) == 4
    assert all(r["request_id"] for r in access)
    assert {r["route"] for r in access} == {"/v1/mothers", "/v1/mothers/{mother_id}"}
    for secret in (national_id(), national_id()[:-1], "13800138000", "李小红"):
        assert secret not in text


def test_scrub_masks_numbers_that_slip_into_a_message() -> None:
    assert scrub(f"id {national_id()} phone 13800138000") == (
        f"id {national_id()[:6]}********{national_id()[-4:]} phone 138****8000"
    )


def test_scrub_masks_numbers_in_chinese_text_and_after_punctuation() -> None:
    assert scrub("电话13800138000，身份证" + national_id()) == (
        "电话138****8000，身份证" + national_id()[:6] + "********" + national_id()[-4:]
    )
    assert scrub("tel:+8613800138000;") == "tel:138****8000;"


def test_scrub_leaves_hex_ids_whole_even_when_they_hold_a_phone_shaped_run() -> None:
    # A request id from a failed CI run: "14069840773" inside it looks like a mobile number.
    request_id = "fcc276d0f4884feca2d7a14069840773"
    assert scrub(f"request {request_id} failed") == f"request {request_id} failed"
    uuid = "3f2b8c1e-9d4a-4e7b-8c2d-a14069840773"
    assert scrub(uuid) == uuid
    assert scrub("x" + national_id() + "y") == "x" + national_id() + "y"


def test_scrub_hides_database_key_values() -> None:
    detail = "DETAIL:  Key (mrn)=(MRN0001) already exists."
    assert scrub(detail) == "DETAIL:  Key (mrn)=(…) already exists."
