"""Expert feedback on reports (issue 16 point 6), API level, both databases, with results
sent as the lab sends them (HL7 v2.5 ORU^R01 through the signed lab route).

- a final report of a mother goes on the doctors' review list (and worklist); a preliminary
  does not, and cannot be reviewed (409)
- a critical value pages at once: the alert stands before anyone reviews, and the review
  neither closes nor replaces it
- a review: the abnormal items default to what the lab flagged; the doctor's own choice must
  name observations of the report (422 naming the field); a second review of the same version
  is 409; the worklist item is closed
- an amended (corrected) report keeps the earlier review, marked as of an earlier version,
  and goes back on the list; the new review is the current one
- "repeat in 2 weeks" becomes her butler's task due then, reminded when overdue
- her butler's pickup and delivery carry the advice; a review after delivery gives the
  butler a task to bring it
- a butler not hers gets 404; only a doctor reviews (403)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.feed.models import Task
from app.notifications.models import OutboxMessage
from app.notifications.reminders import remind_overdue_tasks
from app.reviews import service
from app.reviews.models import ReportReview
from tests.helpers.api import Api
from tests.helpers.lab import Lab
from tests.helpers.messages import oru
from tests.helpers.problems import assert_problem
from tests.helpers.reviews import (
    CBC,
    HB_58,
    HB_98,
    HB_105,
    HB_128,
    PLT_210,
    REVIEW,
    final_cbc,
    my_items,
    post_review,
    reports_of,
    review_items,
    reviewed,
    reviews_of,
    to_review,
)
from tests.helpers.visits import order_number

# On the list, or not -----------------------------------------------------------------------


async def test_a_final_report_goes_on_the_doctors_review_list_with_its_abnormal_flag(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab)
    report = case["report"]
    (waiting,) = await to_review(api)
    assert (waiting["report_id"], waiting["mother_id"], waiting["mrn"]) == (
        report["id"],
        case["mother"]["id"],
        case["mother"]["mrn"],
    )
    assert (waiting["status"], waiting["abnormal"], waiting["critical"]) == ("final", True, False)
    assert waiting["earlier_review"] is None
    (item,) = await review_items(api)
    assert item["report_id"] == report["id"]
    assert item["title"] == (
        "Report to review: CBC panel - Blood by Automated count (abnormal results)"
    )
    assert case["mother"]["name"] not in item["title"]  # no personal data in a title
    # The admin reads every list; the desk and butlers do not review.
    assert len(await to_review(api, "admin")) == 1
    for who in ("frontdesk", "butler1", "nutritionist", "station"):
        response = await api.client.get("/v1/reports-to-review", headers=api.auth(who))
        assert_problem(response, 403)


async def test_a_preliminary_report_is_not_on_the_list_and_cannot_be_reviewed(
    api: Api, lab: Lab
) -> None:
    prelim = [line.replace("|||F", "|||P") for line in (HB_105, PLT_210)]
    case = await final_cbc(api, lab, *prelim, obr25="P")
    assert case["report"]["status"] == "preliminary"
    assert await to_review(api) == []
    assert await review_items(api) == []
    refused = assert_problem(await post_review(api, case["report"]["id"]), 409)
    assert refused["type"] == "/problems/report-not-reviewable"
    assert "preliminary" in str(refused["detail"])
    # The final one, when it comes, goes on the list.
    final = oru(
        control_id="CBC-2",
        mrn=case["mother"]["mrn"],
        order=case["order"],
        code=CBC,
        obx=[HB_105, PLT_210],
    )
    assert await lab.hl7(final) == ("AA", "CBC-2")
    assert [w["report_id"] for w in await to_review(api)] == [case["report"]["id"]]


async def test_abnormal_reports_come_first_then_the_longest_waiting(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    normal = await final_cbc(api, lab, HB_128, PLT_210, control_id="N-1")
    clock.advance(timedelta(minutes=30))
    # A second order of the same mother's visit: her urine test, normal, arrives later.
    urine = oru(
        control_id="U-1",
        mrn=normal["mother"]["mrn"],
        order=order_number(normal["visit"], "urine"),
        filler="F-2",
        code="24356-8^Urinalysis complete panel^LN",
        obx=["OBX|1|ST|5804-0^Protein [Mass/volume] in Urine by Test strip^LN||NEG||NEG|N|||F"],
    )
    assert await lab.hl7(urine) == ("AA", "U-1")
    clock.advance(timedelta(minutes=30))
    flagged = oru(
        control_id="A-1",
        mrn=normal["mother"]["mrn"],
        order=order_number(normal["visit"], "liver_kidney"),
        filler="F-3",
        code="24325-3^Hepatic function panel^LN",
        obx=[
            "OBX|1|NM|1742-6^Alanine aminotransferase [Enzymatic activity/volume] in Serum or "
            "Plasma^LN||56|U/L|7-40|H|||F"
        ],
    )
    assert await lab.hl7(flagged) == ("AA", "A-1")
    listed = await to_review(api)
    assert [(w["display"], w["abnormal"]) for w in listed] == [
        ("Hepatic function panel", True),
        ("CBC panel - Blood by Automated count", False),
        ("Urinalysis complete panel", False),
    ]
    assert [i["priority"] for i in await review_items(api)] == [1, 2, 2]


# A critical value is never held back --------------------------------------------------------


async def test_a_critical_value_pages_at_once_and_the_review_does_not_replace_the_alert(
    api: Api, lab: Lab
) -> None:
    case = await final_cbc(api, lab, HB_58, PLT_210)
    report_id = case["report"]["id"]
    # Before anyone has reviewed anything, the alert stands and her butler is paged.
    alerts = (await api.client.get("/v1/alerts", headers=api.auth("doctor"))).json()["items"]
    assert [(a["report_id"], a["state"]) for a in alerts] == [(report_id, "open")]
    assert [i["kind"] for i in await my_items(api) if i["kind"] == "alert"] == ["alert"]
    assert await reviews_of(api, report_id) == []
    # It is on the review list too, first among the abnormal.
    (waiting,) = await to_review(api)
    assert (waiting["critical"], waiting["abnormal"]) == (True, True)
    review = await reviewed(api, report_id)
    assert review["abnormal_items"][0]["why"] == "critical value: haemoglobin 58 g/L < 70"
    alerts = (await api.client.get("/v1/alerts", headers=api.auth("doctor"))).json()["items"]
    assert [a["state"] for a in alerts] == ["open"]  # only the read-back closes it


# The review -------------------------------------------------------------------------------


async def test_a_review_highlights_the_lab_flags_by_default_and_closes_the_item(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    assert len(await to_review(api)) == 1
    review = await reviewed(api, report_id)
    assert review["abnormal_source"] == "lab_flags"
    assert review["abnormal_items"] == [
        {
            "seq": 1,
            "code": "718-7",
            "display": "Hemoglobin [Mass/volume] in Blood",
            "value": "105",
            "unit": "g/L",
            "flag": "L",
            "why": "flagged L by the lab",
        }
    ]
    assert (review["reviewer_name"], review["reviewer_role"]) == ("doctor", "doctor")
    assert (review["report_version"], review["report_status"], review["current"]) == (
        1,
        "final",
        True,
    )
    assert await to_review(api) == []
    assert await review_items(api) == []
    # The trail: who reviewed is on the audit log; the same version again is 409.
    again = assert_problem(await post_review(api, report_id), 409)
    assert again["type"] == "/problems/report-already-reviewed"
    assert again["review_id"] == review["id"]
    assert [r["id"] for r in await reviews_of(api, report_id)] == [review["id"]]
    async with session_factory() as session:
        actions = set(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.resource_id == report_id)
            )
        )
    assert {"report.review", "report.reviews", "report.review_list"} <= actions


async def test_the_doctor_chooses_the_items_and_an_unknown_one_is_named(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    bad = assert_problem(
        await post_review(api, report_id, abnormal_items=[{"seq": 2}, {"seq": 9}]), 422
    )
    assert bad["errors"][0]["field"] == "abnormal_items.1.seq"  # type: ignore[index]
    review = await reviewed(
        api,
        report_id,
        abnormal_items=[{"seq": 1, "why": "below 110 g/L: anaemia in pregnancy (WHO)"}, {"seq": 2}],
    )
    assert review["abnormal_source"] == "doctor"
    assert [(i["seq"], i["why"]) for i in review["abnormal_items"]] == [
        (1, "below 110 g/L: anaemia in pregnancy (WHO)"),
        (2, "highlighted by the doctor"),
    ]


async def test_only_a_doctor_reviews_and_a_butler_not_hers_gets_404(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    report_id, mother_id = case["report"]["id"], case["mother"]["id"]
    for who in ("butler1", "frontdesk", "admin", "nutritionist"):
        assert_problem(await post_review(api, report_id, who), 403)
    await reviewed(api, report_id)
    assert len(await reviews_of(api, report_id, "butler1")) == 1
    for path in (f"/v1/reports/{report_id}/reviews", f"/v1/mothers/{mother_id}/reviews"):
        assert_problem(await api.client.get(path, headers=api.auth("butler2")), 404)
        mine = await api.client.get(path, headers=api.auth("butler1"))
        assert mine.status_code == 200, mine.text
        assert mine.json()["items"][0]["advice_for_mother"] == REVIEW["advice_for_mother"]
    unknown = "01900000-0000-7000-8000-000000000000"
    assert_problem(await post_review(api, unknown), 404)


async def test_the_review_is_idempotent(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    headers = {**api.auth("doctor"), "Idempotency-Key": "review-1"}
    body = {**REVIEW, "follow_ups": [{"kind": "call_mother", "in_days": 3}]}
    first = await api.client.post(f"/v1/reports/{report_id}/review", headers=headers, json=body)
    again = await api.client.post(f"/v1/reports/{report_id}/review", headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert len([i for i in await my_items(api) if i["kind"] == "task"]) == 1


# An amended report ------------------------------------------------------------------------


async def test_an_amended_report_keeps_the_earlier_review_marked_and_awaits_a_new_one(
    api: Api, lab: Lab, clock: FrozenClock
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    first = await reviewed(api, report_id)
    clock.advance(timedelta(hours=3))
    corrected = oru(
        control_id="CBC-2",
        mrn=case["mother"]["mrn"],
        order=case["order"],
        obr25="C",
        code=CBC,
        obx=[HB_98, PLT_210.replace("|||F", "|||C")],
    )
    assert await lab.hl7(corrected) == ("AA", "CBC-2")
    (earlier,) = await reviews_of(api, report_id)
    assert (earlier["id"], earlier["current"], earlier["report_version"]) == (first["id"], False, 1)
    assert earlier["superseded_reason"] == (
        "the lab sent a corrected report since (report version 2)"
    )
    assert earlier["advice_for_mother"] == REVIEW["advice_for_mother"]  # kept as it was
    (waiting,) = await to_review(api)
    assert (waiting["status"], waiting["version"]) == ("corrected", 2)
    assert waiting["earlier_review"]["id"] == first["id"]
    (item,) = await review_items(api)
    assert item["title"].endswith("corrected: the review of version 1 is kept")
    # Her butler's pickup says the advice she holds is of the earlier version.
    (pickup,) = [i for i in await my_items(api) if i["kind"] == "report_pickup"]
    assert pickup["advice"]["of_earlier_version"] is True
    second = await reviewed(
        api,
        report_id,
        interpretation="Anaemia, Hb corrected to 98 g/L: moderate.",
        advice_for_mother="Iron twice a day; we will repeat the blood count.",
    )
    assert (second["report_version"], second["report_status"]) == (2, "corrected")
    assert [(r["id"], r["current"]) for r in await reviews_of(api, report_id)] == [
        (second["id"], True),
        (first["id"], False),
    ]
    (pickup,) = [i for i in await my_items(api) if i["kind"] == "report_pickup"]
    assert pickup["advice"]["advice"] == "Iron twice a day; we will repeat the blood count."
    assert pickup["advice"]["of_earlier_version"] is False
    assert await review_items(api) == []


# Follow-ups and the butler ------------------------------------------------------------------


async def test_repeat_in_two_weeks_becomes_her_butlers_task_due_then_and_reminded_when_overdue(
    api: Api, lab: Lab, clock: FrozenClock, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    case = await final_cbc(api, lab)
    review = await reviewed(
        api,
        case["report"]["id"],
        follow_ups=[
            {"kind": "repeat_test", "in_weeks": 2, "note": "after two weeks of iron"},
            {"kind": "see_nutritionist", "in_days": 7},
            {"kind": "call_mother", "in_days": 3},
        ],
    )
    due = {f["kind"]: f for f in review["follow_ups"]}
    # Reviewed 28 Nov 10:00 in Shanghai: due at 09:00 local (01:00 UTC) on the day.
    assert due["repeat_test"]["due_at"] == "2026-12-12T01:00:00Z"
    assert due["repeat_test"]["exam_code"] == "cbc"  # the exam this report answers
    assert due["call_mother"]["due_at"] == "2026-12-01T01:00:00Z"
    tasks = {i["id"]: i for i in await my_items(api) if i["kind"] == "task"}
    repeat = tasks[due["repeat_test"]["task_id"]]
    assert repeat["title"] == (  # no free text; the exam as the catalogue names it
        "Book the repeat test the doctor ordered: 血常规 Complete blood count"
    )
    assert repeat["at"] == "2026-12-12T01:00:00Z"
    assert set(tasks) == {f["task_id"] for f in review["follow_ups"]}
    # The nutritionist hears of the referral on her own list.
    listed = (await api.client.get("/v1/worklist", headers=api.auth("nutritionist"))).json()
    assert [i["kind"] for i in listed["items"]] == ["review.see_nutritionist"]

    async def remind() -> set[str]:
        async with session_factory() as session:
            await remind_overdue_tasks(session, now=clock.now(), escalate_after=timedelta(hours=2))
            await session.commit()
            messages = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "task.overdue")
            )
            return {str(m.payload["task_id"]) for m in messages}

    clock.advance(timedelta(days=14) - timedelta(minutes=61))  # the call is overdue by now
    assert await remind() == {due["call_mother"]["task_id"], due["see_nutritionist"]["task_id"]}
    clock.advance(timedelta(minutes=1))
    assert due["repeat_test"]["task_id"] in await remind()


async def test_the_pickup_and_delivery_carry_the_advice_and_a_late_review_is_brought(
    api: Api, lab: Lab, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    (pickup,) = [i for i in await my_items(api) if i["kind"] == "report_pickup"]
    assert pickup["advice"] is None  # not reviewed yet: nothing to bring
    review = await reviewed(api, report_id)
    (pickup,) = [i for i in await my_items(api) if i["kind"] == "report_pickup"]
    assert pickup["advice"]["advice"] == REVIEW["advice_for_mother"]
    assert pickup["advice"]["review_id"] == review["id"]
    picked = await api.client.post(
        f"/v1/reports/{report_id}/pick-up",
        headers=api.auth("butler1"),
        json={"place": "Lab reception, 2nd floor"},
    )
    assert picked.status_code == 200, picked.text
    (delivery,) = [i for i in await my_items(api) if i["kind"] == "report_delivery"]
    assert delivery["advice"]["advice"] == REVIEW["advice_for_mother"]
    assert review["advice_task_id"] is None

    # Another report, delivered before the doctor reviews it.
    other = oru(
        control_id="U-1",
        mrn=case["mother"]["mrn"],
        order=order_number(case["visit"], "urine"),
        filler="F-2",
        code="24356-8^Urinalysis complete panel^LN",
        obx=["OBX|1|ST|5804-0^Protein [Mass/volume] in Urine by Test strip^LN||1+||NEG|A|||F"],
    )
    assert await lab.hl7(other) == ("AA", "U-1")
    (urine,) = [r for r in await reports_of(api, case["mother"]["id"]) if r["id"] != report_id]
    for step, body in (("pick-up", {"place": "Lab"}), ("deliver", {"note": "Handed over"})):
        done = await api.client.post(
            f"/v1/reports/{urine['id']}/{step}", headers=api.auth("butler1"), json=body
        )
        assert done.status_code == 200, done.text
    late = await reviewed(
        api,
        urine["id"],
        interpretation="Trace protein, blood pressure normal: repeat at the next visit.",
        advice_for_mother="Nothing to worry about; we will check your urine again next visit.",
    )
    assert late["advice_task_id"] is not None
    (bring,) = [i for i in await my_items(api) if i["id"] == late["advice_task_id"]]
    assert bring["kind"] == "task"
    assert bring["title"] == "Bring her the doctor's advice on Urinalysis complete panel"
    assert bring["at"] == "2026-11-29T02:00:00Z"  # within a day, then reminded
    assert bring["advice"]["advice"] == late["advice_for_mother"]
    async with session_factory() as session:
        task = await session.get(Task, uuid.UUID(late["advice_task_id"]))
    assert task is not None
    assert task.butler_id == api.staff.butlers["butler1"].id


async def test_follow_ups_are_checked_and_name_the_field(api: Api, lab: Lab) -> None:
    case = await final_cbc(api, lab)
    report_id = case["report"]["id"]
    cases = [
        ([{"kind": "call_mother"}], "follow_ups.0.in_days"),
        ([{"kind": "call_mother", "in_days": 3, "in_weeks": 1}], "follow_ups.0.in_weeks"),
        ([{"kind": "call_mother", "due_at": "2026-11-27T02:00:00Z"}], "follow_ups.0.due_at"),
        (
            [{"kind": "see_doctor", "in_days": 1}, {"kind": "other", "in_days": 1}],
            "follow_ups.1.note",
        ),
        ([{"kind": "repeat_test", "in_weeks": 41}], "follow_ups.0.in_weeks"),
    ]
    for follow_ups, field in cases:
        bad = assert_problem(await post_review(api, report_id, follow_ups=follow_ups), 422)
        assert field in [e["field"] for e in bad["errors"]], (field, bad)  # type: ignore[union-attr]
    assert await reviews_of(api, report_id) == []  # nothing half-stored


# The database holds the invariants ----------------------------------------------------------


def _row(report: dict[str, Any], mother_id: str, **kw: Any) -> ReportReview:
    values: dict[str, Any] = {
        "report_id": uuid.UUID(report["id"]),
        "mother_id": uuid.UUID(mother_id),
        "report_version": 1,
        "report_status": "final",
        "reviewer_name": "Dr Wang",
        "reviewer_role": "doctor",
        "interpretation": "Normal",
        "abnormal_items": [],
        "abnormal_source": "lab_flags",
        "advice_for_mother": "All normal",
        "reviewed_at": datetime(2026, 11, 28, 3, tzinfo=UTC),
    }
    values.update(kw)
    return ReportReview(**values)


@pytest.mark.parametrize(
    "change",
    [
        {"reviewer_role": "front_desk"},
        {"report_status": "preliminary"},
        {"advice_for_mother": ""},
        {"superseded_at": datetime(2026, 11, 28, 4, tzinfo=UTC)},  # without a reason
        None,  # a second current review of the same report
    ],
)
async def test_the_database_refuses_what_a_review_may_not_be(
    api: Api,
    lab: Lab,
    session_factory: async_sessionmaker[AsyncSession],
    change: dict[str, Any] | None,
) -> None:
    case = await final_cbc(api, lab)
    async with session_factory() as session:
        if change is None:
            session.add(_row(case["report"], case["mother"]["id"]))
            await session.commit()
        session.add(_row(case["report"], case["mother"]["id"], **(change or {})))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_a_failure_in_the_review_list_loses_neither_the_report_nor_its_alert(
    api: Api, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the review list is broken")

    monkeypatch.setattr(service, "_await_review", broken)
    case = await final_cbc(api, lab, HB_58, PLT_210)
    assert (case["report"]["status"], case["report"]["critical"]) == ("final", True)
    alerts = (await api.client.get("/v1/alerts", headers=api.auth("doctor"))).json()["items"]
    assert [a["report_id"] for a in alerts] == [case["report"]["id"]]
    assert await review_items(api) == []  # the item was lost with the failure ...
    # ... but the list is read from the reports themselves: it is there.
    assert [w["report_id"] for w in await to_review(api)] == [case["report"]["id"]]
