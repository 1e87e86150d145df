"""Enrolment, reading with masking, search, optimistic concurrency, object-level access."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api
from tests.helpers.factories import mother_body, national_id
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem


async def test_enrolment_dates_the_pregnancy(api: Api) -> None:
    mother = await enrol(api)
    pregnancy = mother["pregnancy"]
    assert pregnancy["edd_date"] == "2027-03-08"  # 2026-06-01 + 280 days
    assert pregnancy["dating_method"] == "lmp"
    # 2026-11-28 in Shanghai is day 180 since LMP.
    assert pregnancy["gestational_age"] == {"days": 180, "display": "25+5", "trimester": "second"}
    assert mother["national_id"] == national_id()  # front desk sees the full number
    assert mother["date_of_birth"] == "1995-03-07"  # from the national id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"national_id": national_id()[:-1] + ("0" if national_id()[-1] != "0" else "1")},
            "national_id",
        ),
        ({"phone": "12345678901"}, "phone"),
        ({"mrn": "a b"}, "mrn"),
        ({"date_of_birth": "1990-01-01"}, "date_of_birth"),
        ({"national_id": national_id(born=__import__("datetime").date(2020, 1, 1))}, "national_id"),
    ],
)
async def test_invalid_identity_gets_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = await api.client.post(
        "/v1/mothers", headers=api.auth("frontdesk"), json=mother_body(**change)
    )
    body = assert_problem(response, 422)
    assert field in {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pregnancy", "field"),
    [
        ({"lmp_date": "2026-12-01"}, "pregnancy.lmp_date"),
        ({"lmp_date": "2025-12-01"}, "pregnancy.lmp_date"),
        ({"lmp_date": None, "edd_date": "2028-01-01"}, "pregnancy.edd_date"),
    ],
)
async def test_implausible_dating_gets_422(api: Api, pregnancy: dict[str, Any], field: str) -> None:
    body = mother_body()
    body["pregnancy"].update(pregnancy)
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    problem = assert_problem(response, 422)
    assert field in {e["field"] for e in problem["errors"]}  # type: ignore[attr-defined]


async def test_para_must_be_below_gravida(api: Api) -> None:
    body = mother_body()
    body["pregnancy"].update({"gravida": 2, "para": 2})
    assert_problem(
        await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body), 422
    )


async def test_mrn_and_national_id_are_unique(api: Api) -> None:
    first = await enrol(api)
    same_mrn = mother_body(mrn=first["mrn"], serial="003")
    assert_problem(
        await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=same_mrn), 409
    )
    same_id = mother_body()
    assert_problem(
        await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=same_id), 409
    )


async def test_who_may_enrol(api: Api) -> None:
    for who in ("butler1", "station", "doctor"):
        response = await api.client.post("/v1/mothers", headers=api.auth(who), json=mother_body())
        assert_problem(response, 403)
    assert_problem(
        await api.client.post(
            "/v1/mothers", headers={"X-API-Key": "pbk_test_lab_key_0123456789"}, json=mother_body()
        ),
        403,
    )


async def test_lists_mask_id_and_phone(api: Api) -> None:
    await enrol(api)
    response = await api.client.get("/v1/mothers", headers=api.auth("frontdesk"))
    assert response.status_code == 200
    (row,) = response.json()["items"]
    full_id = national_id()
    assert row["national_id"] == "*" * 14 + full_id[-4:]
    assert row["phone"] == "138****8000"
    assert full_id not in response.text
    assert "13800138000" not in response.text


async def test_single_record_reveals_by_role(api: Api) -> None:
    butler_id = str(api.staff.butlers["butler1"].id)
    mother = await enrol(api, primary_butler_id=butler_id)
    path = f"/v1/mothers/{mother['id']}"
    doctor = (await api.client.get(path, headers=api.auth("doctor"))).json()
    assert doctor["national_id"] == national_id()
    assert not doctor["national_id_masked"]
    butler = (await api.client.get(path, headers=api.auth("butler1"))).json()
    assert butler["national_id_masked"]
    assert "*" in butler["national_id"]
    assert butler["phone"] == "13800138000"  # she needs to call the mother


async def test_a_butler_cannot_see_another_butlers_mother(api: Api) -> None:
    mine = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    theirs = await enrol(
        api,
        primary_butler_id=str(api.staff.butlers["butler2"].id),
        serial="003",
        phone="13900139000",
    )
    ok = await api.client.get(f"/v1/mothers/{mine['id']}", headers=api.auth("butler1"))
    assert ok.status_code == 200
    for path in (f"/v1/mothers/{theirs['id']}", f"/v1/mothers/{theirs['id']}/risk-history"):
        assert_problem(await api.client.get(path, headers=api.auth("butler1")), 404)
    listed = await api.client.get("/v1/mothers", headers=api.auth("butler1"))
    assert [m["id"] for m in listed.json()["items"]] == [mine["id"]]
    # Asking for another butler's mothers by filter does not widen the view.
    widened = await api.client.get(
        "/v1/mothers",
        headers=api.auth("butler1"),
        params={"primary_butler_id": str(api.staff.butlers["butler2"].id)},
    )
    assert widened.json()["items"] == []


async def test_unknown_mother_is_404(api: Api) -> None:
    assert_problem(
        await api.client.get(
            "/v1/mothers/01a221b4-0000-7000-8000-000000000000", headers=api.auth("frontdesk")
        ),
        404,
    )


async def test_update_needs_the_current_etag(api: Api) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}"
    headers = api.auth("frontdesk")
    assert_problem(await api.client.patch(path, headers=headers, json={"name": "李红"}), 428)
    updated = await api.client.patch(
        path, headers={**headers, "If-Match": '"1"'}, json={"name": "李红"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == '"2"'
    assert updated.json()["name"] == "李红"
    stale = await api.client.patch(
        path, headers={**headers, "If-Match": '"1"'}, json={"phone": "13900000000"}
    )
    body = assert_problem(stale, 412)
    assert body["current_etag"] == '"2"'
    current = await api.client.get(path, headers=headers)
    assert current.json()["phone"] == "13800138000"  # the stale write changed nothing


async def test_risk_grade_change_keeps_history(api: Api) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}"
    missing_reason = await api.client.patch(
        path, headers={**api.auth("doctor"), "If-Match": '"1"'}, json={"risk_grade": "orange"}
    )
    assert_problem(missing_reason, 422)
    # The old single grade 'purple' sets the purple flag beside her colour (NHFPC 2017).
    changed = await api.client.patch(
        path,
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={"risk_grade": "purple", "risk_reason": "HBsAg positive"},
    )
    assert changed.status_code == 200
    pregnancy = changed.json()["pregnancy"]
    assert pregnancy["infection_control"] is True
    assert (pregnancy["risk_grade"], pregnancy["purple"]) == ("green", True)
    history = (await api.client.get(f"{path}/risk-history", headers=api.auth("doctor"))).json()
    assert [
        (c["from_grade"], c["to_grade"], c["to_purple"], c["decision"]) for c in history["changes"]
    ] == [
        (None, "green", False, "initial"),
        ("green", "green", True, "changed"),
    ]
    assert history["changes"][1]["reason"] == "HBsAg positive"
    assert history["changes"][1]["changed_by_name"] == "doctor"


async def test_an_edd_without_its_scan_is_judged_as_a_scan_today(api: Api) -> None:
    mother = await enrol(api)  # LMP 2026-06-01: 25+5 today
    response = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={"pregnancy": {"edd_date": "2027-03-01", "dating_method": "ultrasound"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pregnancy"]["edd_date"] == "2027-03-08"  # 7 days: within 14 at 22+0-27+6
    assert body["pregnancy"]["dating_method"] == "lmp"
    assert body["dating_decision"]["outcome"] == "confirmed"
    assert "ACOG" in body["dating_decision"]["reason"]


async def test_ultrasound_redating_overrides_lmp(api: Api) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}"
    # A CRL scan on 2026-08-10 (10+0 by LMP) measuring 11+1: 8 days, past 7 (ACOG 700).
    response = await api.client.patch(
        path,
        headers={**api.auth("doctor"), "If-Match": '"1"'},
        json={
            "pregnancy": {
                "ultrasound": {
                    "scan_date": "2026-08-10",
                    "measurement": "crl",
                    "value_mm": 45,
                    "ga": "11+1",
                }
            }
        },
    )
    assert response.status_code == 200, response.text
    pregnancy = response.json()["pregnancy"]
    assert pregnancy["edd_date"] == "2027-02-28"
    assert pregnancy["lmp_date"] == "2026-06-01"
    assert pregnancy["dating"]["scan"]["ga"] == "11+1"
    # A later LMP correction keeps the ultrasound EDD.
    again = await api.client.patch(
        path,
        headers={**api.auth("doctor"), "If-Match": '"2"'},
        json={"pregnancy": {"lmp_date": "2026-06-03"}},
    )
    assert again.json()["pregnancy"]["edd_date"] == "2027-02-28"
    assert again.json()["pregnancy"]["dating_method"] == "ultrasound"


async def test_a_butler_cannot_change_a_record(api: Api) -> None:
    mother = await enrol(api, primary_butler_id=str(api.staff.butlers["butler1"].id))
    response = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("butler1"), "If-Match": '"1"'},
        json={"name": "x"},
    )
    assert_problem(response, 403)


async def test_search_filters_and_pages(api: Api) -> None:
    a = await enrol(api, name="王小琪", phone="13800000001", serial="101")
    b = await enrol(api, name="王芳", phone="13800000002", serial="102")
    body = mother_body(name="张敏", phone="13800000003", serial="103")
    body["pregnancy"].update({"risk_grade": "red", "lmp_date": "2026-03-01"})
    c = (await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)).json()
    headers = api.auth("frontdesk")

    async def ids(**params: Any) -> list[str]:
        response = await api.client.get("/v1/mothers", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["items"]]

    assert await ids(name="王") == [a["id"], b["id"]]
    assert await ids(phone="+86 138 0000 0002") == [b["id"]]
    assert await ids(mrn=c["mrn"]) == [c["id"]]
    assert await ids(risk_grade=["red", "orange"]) == [c["id"]]
    assert await ids(edd_to="2026-12-31") == [c["id"]]
    assert await ids(edd_from="2027-01-01") == [a["id"], b["id"]]
    assert await ids(name="%") == []

    first = (await api.client.get("/v1/mothers", headers=headers, params={"limit": 2})).json()
    assert [m["id"] for m in first["items"]] == [a["id"], b["id"]]
    second = (
        await api.client.get(
            "/v1/mothers",
            headers=headers,
            params={"limit": 2, "cursor": first["page"]["next_cursor"]},
        )
    ).json()
    assert [m["id"] for m in second["items"]] == [c["id"]]
    assert second["page"]["next_cursor"] is None
    assert_problem(await api.client.get("/v1/mothers", headers=headers, params={"limit": 500}), 422)
    assert_problem(
        await api.client.get("/v1/mothers", headers=headers, params={"cursor": "!!"}), 422
    )
