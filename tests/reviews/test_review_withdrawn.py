"""Round 2 of issue 16's review (the probe's F1, F2, F8), API level, both databases.

- a report detached from her withdraws EVERY review of it given to her (the current one, the
  revised and the earlier versions' ones): her history holds none of them as advice, her
  butler sees none of them, clinicians see all of them marked withdrawn; the report's own
  history stays for the doctor, the nutritionist and the admin, each review naming the mother
  it was given to (MRN, masked name), while a butler or the desk sees only the current
  mother's
- a withdrawn review whose advice had reached her butler gives the butler a neutral task (do
  not repeat it, the doctor will contact her), and the doctors' item says whether the advice
  had been delivered to her
- a repeat test's task names the exam by its catalogue name, Chinese first
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.core.clock import FrozenClock
from app.mothers.domain import mask_name
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.reviews import (
    REVIEW,
    attach_to_mother_b,
    final_cbc,
    mother_reviews,
    my_items,
    post_review,
    reviewed,
    reviews_of,
)

DETACH_REASON = "the lab says this sample was another woman's"
WITHDRAWN_DELIVERED = (
    "The results you brought her were withdrawn: do not repeat the advice; "
    "the doctor will contact her"
)
WITHDRAWN_SHOWN = (
    "The doctor's advice you were shown on her results was withdrawn: do not pass it on; "
    "the doctor will contact her"
)


async def _detach(api: Api, report_id: str) -> None:
    detached = await api.client.post(
        f"/v1/reports/{report_id}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": DETACH_REASON},
    )
    assert detached.status_code == 200, detached.text


async def _revised(api: Api, report_id: str, clock: FrozenClock) -> tuple[Any, Any]:
    """A review with a repeat test, then the doctor's revision of it (If-Match)."""
    response = await post_review(
        api, report_id, follow_ups=[{"kind": "repeat_test", "in_weeks": 2}]
    )
    assert response.status_code == 201, response.text
    clock.advance(timedelta(hours=1))
    revised = await api.client.post(
        f"/v1/reports/{report_id}/review",
        headers={**api.auth("doctor"), "If-Match": response.headers["etag"]},
        json={
            **REVIEW,
            "advice_for_mother": "Iron twice a day, with orange juice.",
            "follow_ups": [{"kind": "call_mother", "in_days": 3}],
        },
    )
    assert revised.status_code == 201, revised.text
    return response.json(), revised.json()


async def _doctor_items(api: Api, kind: str) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/worklist", headers=api.auth("doctor"))
    assert response.status_code == 200, response.text
    return [i for i in response.json()["items"] if i["kind"] == kind]


# F2: every review of a detached report is withdrawn; the report keeps its history ------------


async def test_detaching_withdraws_every_review_given_to_her_and_the_report_keeps_its_history(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await final_cbc(api, lab)
    report_id, mother_a = case["report"]["id"], case["mother"]
    first, second = await _revised(api, report_id, clock)
    await _detach(api, report_id)

    # Her history: both reviews withdrawn (the revised original too, not only "superseded").
    history = await mother_reviews(api, mother_a["id"])
    assert [(r["id"], r["current"], r["withdrawn"]) for r in history] == [
        (second["id"], False, True),
        (first["id"], False, True),
    ]
    assert {r["withdrawn_reason"] for r in history} == {
        f"detached from the mother by frontdesk: {DETACH_REASON}"
    }
    assert history[1]["superseded_reason"] == "revised by doctor"  # what it was, kept
    # Her butler sees none of them, in her history or on her phone.
    assert await mother_reviews(api, mother_a["id"], "butler1") == []
    assert not [i for i in await my_items(api, "butler1") if i.get("advice")]

    mother_b = await attach_to_mother_b(api, report_id)
    # The report's own history stays for clinicians, each review naming the mother it was for.
    for who in ("doctor", "nutritionist", "admin"):
        listed = await reviews_of(api, report_id, who)
        assert [(r["id"], r["withdrawn"]) for r in listed] == [
            (second["id"], True),
            (first["id"], True),
        ], who
        for r in listed:
            assert r["mother_id"] == mother_a["id"]
            assert r["mother_mrn"] == mother_a["mrn"]
            assert r["mother_masked_name"] == mask_name(mother_a["name"])
            assert r["of_current_mother"] is False
    # B's butler and the desk: only B's reviews, and she has none yet.
    assert await reviews_of(api, report_id, "butler2") == []
    assert await reviews_of(api, report_id, "frontdesk") == []
    (pickup,) = [i for i in await my_items(api, "butler2") if i["kind"] == "report_pickup"]
    assert pickup["advice"] is None
    # B's own review, once given, is the current mother's, and A's stay marked beside it.
    mine = await reviewed(api, report_id)
    listed = await reviews_of(api, report_id)
    assert [(r["id"], r["of_current_mother"], r["withdrawn"]) for r in listed] == [
        (mine["id"], True, False),
        (second["id"], False, True),
        (first["id"], False, True),
    ]
    assert listed[0]["mother_mrn"] == mother_b["mrn"]
    assert [r["id"] for r in await reviews_of(api, report_id, "butler2")] == [mine["id"]]


# F1: her butler is told the advice she had was withdrawn ------------------------------------


async def test_withdrawn_advice_her_butler_delivered_gives_her_a_neutral_task(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    await reviewed(api, report_id)
    for step, body in (("pick-up", {"place": "Lab"}), ("deliver", {"note": "Handed over"})):
        done = await api.client.post(
            f"/v1/reports/{report_id}/{step}", headers=api.auth("butler1"), json=body
        )
        assert done.status_code == 200, done.text
    await _detach(api, report_id)

    tasks = [i for i in await my_items(api, "butler1") if i["kind"] == "task"]
    assert [t["title"] for t in tasks] == [WITHDRAWN_DELIVERED]
    assert tasks[0].get("advice") is None  # the withdrawn advice is not repeated on it
    (item,) = await _doctor_items(api, "review.withdrawn")
    assert "had been delivered to her" in item["title"]
    assert "contact her" in item["title"]
    for title in (tasks[0]["title"], item["title"]):
        assert "anaemia" not in title.lower()
        assert "Hb" not in title


async def test_withdrawn_advice_her_butler_was_shown_gives_her_a_neutral_task_too(
    api: Api, lab: Lab
) -> None:
    """Reviewed while the report waited to be picked up: the advice was on her butler's
    phone (the pickup carried it), not yet given to the mother."""
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    await reviewed(api, report_id)
    await _detach(api, report_id)
    tasks = [i for i in await my_items(api, "butler1") if i["kind"] == "task"]
    assert [t["title"] for t in tasks] == [WITHDRAWN_SHOWN]
    (item,) = await _doctor_items(api, "review.withdrawn")
    assert "had reached her butler" in item["title"]
    assert "had been delivered" not in item["title"]


async def test_a_report_never_reviewed_withdraws_no_advice_and_gives_no_task(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    await _detach(api, case["report"]["id"])
    assert [i for i in await my_items(api, "butler1") if i["kind"] == "task"] == []
    assert await _doctor_items(api, "review.withdrawn") == []


# F8: the repeat test named as the catalogue names it ---------------------------------------------


async def test_a_repeat_test_task_names_the_exam_as_the_catalogue_does_chinese_first(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    review = await reviewed(
        api,
        case["report"]["id"],
        follow_ups=[
            {"kind": "repeat_test", "in_weeks": 2},
            {"kind": "repeat_test", "in_weeks": 4, "exam_code": "urine"},
        ],
    )
    titles = {i["id"]: i["title"] for i in await my_items(api) if i["kind"] == "task"}
    assert [titles[f["task_id"]] for f in review["follow_ups"]] == [
        "Book the repeat test the doctor ordered: 血常规 Complete blood count",
        "Book the repeat test the doctor ordered: 尿常规 Urinalysis",
    ]
    assert [f["exam_code"] for f in review["follow_ups"]] == ["cbc", "urine"]  # the code kept


async def test_a_late_review_brought_to_her_counts_as_delivered_a_replaced_one_does_not(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    """Delivered before the doctor reviewed it: the advice reached her only once her butler
    completed the task to bring it, not when a revision replaced that task."""
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    for step, body in (("pick-up", {"place": "Lab"}), ("deliver", {"note": "Handed over"})):
        done = await api.client.post(
            f"/v1/reports/{report_id}/{step}", headers=api.auth("butler1"), json=body
        )
        assert done.status_code == 200, done.text
    clock.advance(timedelta(hours=2))  # reviewed after the delivery
    first, second = await _revised(api, report_id, clock)
    assert first["advice_task_id"]
    assert second["advice_task_id"]
    await _detach(api, report_id)
    (item,) = await _doctor_items(api, "review.withdrawn")
    assert "had been delivered" not in item["title"]
    titles = [i["title"] for i in await my_items(api, "butler1") if i["kind"] == "task"]
    assert titles == [WITHDRAWN_SHOWN]
