"""The doctors' reviews, driven through the API: a final blood count as a Chinese LIS sends it,
posting and reading reviews, a mother's butler's assignments, and a report moved to mother B."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.mothers import mother_with_butler
from tests.helpers.visits import checked_in_mother, order_number

# A blood count as a Chinese LIS sends it: LOINC with local codes and Chinese names in the
# alternate triplet, UCUM units in CE form, OBX-8 flags (L, N, and one left empty).
HB_105 = (
    "OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN^HGB^血红蛋白^L||105|g/L^g/L^UCUM|"
    "110-150|L|||F"
)
PLT_210 = (
    "OBX|2|NM|777-3^Platelets [#/volume] in Blood by Automated count^LN^PLT^血小板^L||210|"
    "10*9/L^10*9/L^UCUM|125-350|N|||F"
)
WBC_8 = "OBX|3|NM|6690-2^Leukocytes [#/volume] in Blood^LN^WBC^白细胞^L||8.2|10*9/L|3.5-9.5||||F"
HB_98 = HB_105.replace("||105|", "||98|").replace("|L|||F", "|L|||C")
HB_128 = HB_105.replace("||105|", "||128|").replace("|L|||F", "|N|||F")
HB_58 = HB_105.replace("||105|", "||58|")
CBC = "58410-2^CBC panel - Blood by Automated count^LN^BLD-RT^血常规^L"

REVIEW = {
    "interpretation": "Mild anaemia (Hb 105 g/L) at 24 weeks; platelets and white cells normal.",
    "advice_for_mother": "Take the iron tablets daily with orange juice, not with tea or milk.",
}


async def final_cbc(
    api: Api, lab: Lab, *obx: str, control_id: str = "CBC-1", obr25: str = "F"
) -> dict[str, Any]:
    """butler1's mother checked in today, and her blood count from the lab."""
    mother, visit = await checked_in_mother(api)
    order = order_number(visit)
    body = oru(
        control_id=control_id,
        mrn=mother["mrn"],
        order=order,
        obr25=obr25,
        code=CBC,
        obx=list(obx or (HB_105, PLT_210, WBC_8)),
    )
    assert await lab.hl7(body) == ("AA", control_id)
    (report,) = await reports_of(api, mother["id"])
    return {"mother": mother, "visit": visit, "order": order, "report": report}


async def reports_of(api: Api, mother_id: str) -> list[dict[str, Any]]:
    response = await api.client.get(
        "/v1/reports", headers=api.auth("doctor"), params={"mother_id": mother_id}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def to_review(api: Api, who: str = "doctor") -> list[dict[str, Any]]:
    response = await api.client.get("/v1/reports-to-review", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def review_items(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/worklist", headers=api.auth("doctor"))
    assert response.status_code == 200, response.text
    return [i for i in response.json()["items"] if i["kind"] == "report.review"]


async def post_review(api: Api, report_id: str, who: str = "doctor", **body: Any) -> Any:
    return await api.client.post(
        f"/v1/reports/{report_id}/review", headers=api.auth(who), json={**REVIEW, **body}
    )


async def reviewed(api: Api, report_id: str, **body: Any) -> dict[str, Any]:
    response = await post_review(api, report_id, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def reviews_of(api: Api, report_id: str, who: str = "doctor") -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/reports/{report_id}/reviews", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def mother_reviews(api: Api, mother_id: str, who: str = "doctor") -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/mothers/{mother_id}/reviews", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def attach_to_mother_b(api: Api, report_id: str) -> dict[str, Any]:
    """Mother B, butler2's, checked in today: the report is attached to her (override)."""
    mother_b = await mother_with_butler(api, serial="003", butler="butler2")
    visit_b = await api.client.post(
        "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother_b["mrn"]}
    )
    assert visit_b.status_code in (200, 201), visit_b.text
    attached = await api.client.post(
        f"/v1/reports/{report_id}/attach",
        headers=api.auth("frontdesk"),
        json={
            "exam_order_id": next(
                o["id"] for o in visit_b.json()["exam_orders"] if o["exam_code"] == "cbc"
            ),
            "reason": "the lab confirmed the sample is hers",
            "override": True,
        },
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["mother_id"] == mother_b["id"]
    return mother_b


async def my_items(api: Api, who: str = "butler1") -> list[dict[str, Any]]:
    response = await api.client.get("/v1/me/assignments", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
