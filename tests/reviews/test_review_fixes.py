"""The clinical review of issue 16's doctor's review, API level, both databases.

- a reviewed report detached from one mother and attached to another never shows the first
  mother's advice to the second's butler, nor her review in the report's history; the first
  mother's history keeps it, marked withdrawn, for clinicians only
- a misspelt field is a 422, not silently dropped advice; a repeat test names a known exam
- a doctor revises a review (If-Match): the earlier one is kept as superseded, its follow-ups
  no longer ordered are withdrawn, the new advice goes to the butler
- "in 3 days" is due at the clinic's morning hour on that local date (23:30 local boundary)
- the nutritionist reads the reviews she acts on
- a butler's task title never carries the doctor's free text (which may name a diagnosis)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.clock import FrozenClock
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.problems import assert_problem
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

# 1. The wrong mother's advice ---------------------------------------------------------------


async def test_a_report_moved_to_another_mother_never_shows_the_first_mothers_advice(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    report_id, mother_a = case["report"]["id"], case["mother"]["id"]
    first = await reviewed(api, report_id, follow_ups=[{"kind": "call_mother", "in_days": 3}])
    detached = await api.client.post(
        f"/v1/reports/{report_id}/detach",
        headers=api.auth("frontdesk"),
        json={"reason": "the lab says this sample was another woman's"},
    )
    assert detached.status_code == 200, detached.text
    await attach_to_mother_b(api, report_id)

    (pickup,) = [i for i in await my_items(api, "butler2") if i["kind"] == "report_pickup"]
    assert pickup["id"] == report_id
    assert pickup["advice"] is None  # not A's doctor's advice
    assert await reviews_of(api, report_id, "butler2") == []
    # B has no review yet; the doctor sees A's in the report's history, withdrawn, A's.
    (history,) = await reviews_of(api, report_id, "doctor")
    assert (history["id"], history["withdrawn"], history["of_current_mother"]) == (
        first["id"],
        True,
        False,
    )
    assert history["mother_id"] == mother_a
    assert [w["report_id"] for w in await _awaiting(api)] == [report_id]
    assert (await _awaiting(api))[0]["earlier_review"] is None  # A's is not B's earlier one
    # A's history keeps the review, marked withdrawn, for clinicians; her butler no longer
    # sees it as advice.
    (kept,) = await mother_reviews(api, mother_a)
    assert (kept["id"], kept["current"], kept["withdrawn"]) == (first["id"], False, True)
    assert kept["withdrawn_reason"] == (
        "detached from the mother by frontdesk: the lab says this sample was another woman's"
    )
    assert kept["superseded_reason"] == "withdrawn"
    assert kept["withdrawn_at"] is not None
    assert await mother_reviews(api, mother_a, "butler1") == []
    assert not [i for i in await my_items(api, "butler1") if i.get("advice")]


async def _awaiting(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/reports-to-review", headers=api.auth("doctor"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_amended_report_still_shows_the_earlier_advice_marked_as_such(
    api: Api, lab: Lab
) -> None:
    """The mother filter keeps what is hers: the earlier version's review of her own report."""
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    await reviewed(api, report_id)
    (pickup,) = [i for i in await my_items(api) if i["kind"] == "report_pickup"]
    assert pickup["advice"]["advice"] == REVIEW["advice_for_mother"]
    (listed,) = await reviews_of(api, report_id, "butler1")
    assert (listed["withdrawn"], listed["withdrawn_at"], listed["withdrawn_reason"]) == (
        False,
        None,
        None,
    )


# 2. No silently dropped field -----------------------------------------------------------------


async def test_a_misspelt_field_is_a_422_and_a_repeat_test_names_a_known_exam(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    misspelt = {
        "interpretation": REVIEW["interpretation"],
        "advice_for_mothr": REVIEW["advice_for_mother"],
    }
    response = await api.client.post(
        f"/v1/reports/{report_id}/review", headers=api.auth("doctor"), json=misspelt
    )
    bad = assert_problem(response, 422)
    fields = [e["field"] for e in bad["errors"]]  # type: ignore[union-attr]
    assert any("advice_for_mothr" in f for f in fields), fields
    for follow_up, field in (
        ({"kind": "call_mother", "in_days": 3, "due": "tomorrow"}, "follow_ups.0.due"),
        ({"kind": "repeat_test", "in_weeks": 2, "exam_code": "cbcc"}, "follow_ups.0.exam_code"),
    ):
        bad = assert_problem(await post_review(api, report_id, follow_ups=[follow_up]), 422)
        fields = [e["field"] for e in bad["errors"]]  # type: ignore[union-attr]
        assert any(field in f for f in fields), (field, bad)
    bad = assert_problem(
        await post_review(api, report_id, abnormal_items=[{"seq": 1, "reason": "low"}]), 422
    )
    assert await reviews_of(api, report_id) == []
    ok = await reviewed(
        api, report_id, follow_ups=[{"kind": "repeat_test", "in_weeks": 2, "exam_code": "urine"}]
    )
    assert ok["follow_ups"][0]["exam_code"] == "urine"


# 3. A review revised ----------------------------------------------------------------------------


async def test_a_doctor_revises_her_review_and_the_follow_ups_follow(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    response = await post_review(
        api,
        report_id,
        follow_ups=[
            {"kind": "call_mother", "in_days": 3},
            {"kind": "see_nutritionist", "in_days": 7},
        ],
    )
    assert response.status_code == 201, response.text
    first = response.json()
    etag = response.headers["etag"]
    old_tasks = {f["kind"]: f["task_id"] for f in first["follow_ups"]}
    clock.advance(timedelta(hours=1))
    revision = {
        **REVIEW,
        "advice_for_mother": "Iron twice a day; we will repeat the blood count in 2 weeks.",
        "follow_ups": [{"kind": "repeat_test", "in_weeks": 2}],
    }
    # Without If-Match: 409 as before, saying how to revise; a stale one: 412.
    again = assert_problem(
        await api.client.post(
            f"/v1/reports/{report_id}/review", headers=api.auth("doctor"), json=revision
        ),
        409,
    )
    assert "If-Match" in str(again["detail"])
    assert_problem(
        await api.client.post(
            f"/v1/reports/{report_id}/review",
            headers={**api.auth("doctor"), "If-Match": '"not-this-one"'},
            json=revision,
        ),
        412,
    )
    revised = await api.client.post(
        f"/v1/reports/{report_id}/review",
        headers={**api.auth("doctor"), "If-Match": etag},
        json=revision,
    )
    assert revised.status_code == 201, revised.text
    second = revised.json()
    assert second["id"] != first["id"]
    listed = await reviews_of(api, report_id)
    assert [(r["id"], r["current"], r["withdrawn"]) for r in listed] == [
        (second["id"], True, False),
        (first["id"], False, False),
    ]
    assert listed[1]["superseded_reason"] == "revised by doctor"
    assert listed[1]["superseded_at"] == "2026-11-28T03:00:00Z"
    # Her butler: the old follow-ups are gone, the new one is there, the advice is the new.
    items = await my_items(api)
    task_ids = {i["id"] for i in items if i["kind"] == "task"}
    assert not task_ids & set(old_tasks.values())
    assert second["follow_ups"][0]["task_id"] in task_ids
    (pickup,) = [i for i in items if i["kind"] == "report_pickup"]
    assert pickup["advice"]["advice"] == revision["advice_for_mother"]
    assert pickup["advice"]["review_id"] == second["id"]
    # The nutritionist's referral the new review no longer orders leaves her list.
    nut = (await api.client.get("/v1/worklist", headers=api.auth("nutritionist"))).json()
    assert [i for i in nut["items"] if i["kind"] == "review.see_nutritionist"] == []
    # The revised review is the current one: revising it again needs its own ETag.
    assert_problem(
        await api.client.post(
            f"/v1/reports/{report_id}/review",
            headers={**api.auth("doctor"), "If-Match": etag},
            json=revision,
        ),
        412,
    )


# 4. Due at a clinic hour ------------------------------------------------------------------------


async def test_follow_ups_are_due_at_the_clinics_morning_hour_on_the_local_date(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    # 23:30 in Shanghai on the 28th (15:30 UTC): "in 3 days" is 1 December, 09:00 local.
    clock.set(datetime(2026, 11, 28, 15, 30, tzinfo=UTC))
    review = await reviewed(
        api,
        report_id,
        follow_ups=[
            {"kind": "call_mother", "in_days": 3},
            {"kind": "repeat_test", "in_weeks": 2},
        ],
    )
    due = {f["kind"]: f["due_at"] for f in review["follow_ups"]}
    assert due == {"call_mother": "2026-12-01T01:00:00Z", "repeat_test": "2026-12-12T01:00:00Z"}


async def test_half_an_hour_later_it_is_the_next_local_day(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await final_cbc(api, lab)
    # 00:30 in Shanghai on the 29th is still the 28th in UTC: the local date counts.
    clock.set(datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    review = await reviewed(
        api, case["report"]["id"], follow_ups=[{"kind": "call_mother", "in_days": 3}]
    )
    assert review["follow_ups"][0]["due_at"] == "2026-12-02T01:00:00Z"


# 5. The nutritionist reads reviews ---------------------------------------------------------------


async def test_the_nutritionist_reads_the_reviews_she_acts_on(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    await reviewed(api, report_id, follow_ups=[{"kind": "see_nutritionist", "in_days": 7}])
    (listed,) = await reviews_of(api, report_id, "nutritionist")
    assert listed["follow_ups"][0]["kind"] == "see_nutritionist"
    (mine,) = await mother_reviews(api, case["mother"]["id"], "nutritionist")
    assert mine["id"] == listed["id"]
    assert_problem(await post_review(api, report_id, "nutritionist"), 403)


# 6. Neutral butler task titles --------------------------------------------------------------------


async def test_a_butlers_task_title_carries_no_free_text_of_the_doctor(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    review = await reviewed(
        api,
        case["report"]["id"],
        follow_ups=[
            {"kind": "call_mother", "in_days": 3, "note": "ask about her anaemia symptoms"},
            {"kind": "repeat_test", "in_weeks": 2, "note": "after two weeks of iron for anaemia"},
            {"kind": "other", "in_days": 1, "note": "gestational diabetes diary check"},
        ],
    )
    titles = {i["id"]: i["title"] for i in await my_items(api) if i["kind"] == "task"}
    by_kind = {f["kind"]: titles[f["task_id"]] for f in review["follow_ups"]}
    assert by_kind == {
        "call_mother": "Call her: the doctor's follow-up",
        "repeat_test": "Book the repeat test the doctor ordered: 血常规 Complete blood count",
        "other": "The doctor's follow-up: see the doctor's note",
    }
    for title in titles.values():
        assert "anaemia" not in title
        assert "diabetes" not in title
    # The note stays where the doctor wrote it, on the review.
    assert {f["note"] for f in review["follow_ups"]} >= {"ask about her anaemia symptoms"}
