from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Query, Response, status

from app.auth.dependencies import (
    AdminOrDoctor,
    AuditDep,
    ClinicStaffButlerOrNutritionist,
    DoctorOnly,
    Idempotent,
)
from app.auth.models import Role
from app.core.clock import local_today
from app.core.deps import ClockDep, SettingsDep
from app.core.errors import problem_responses
from app.core.etag import IfMatch
from app.core.routing import SessionDep, make_router
from app.mothers.domain import mask_name
from app.mothers.models import Mother
from app.reports.domain import ReportStatus
from app.reviews import service
from app.reviews.dependencies import ReviewedMother, VisibleReport
from app.reviews.models import FollowUpOrder, ReportReview
from app.reviews.repository import ReviewRepository
from app.reviews.schemas import (
    AbnormalItemPublic,
    AwaitingReview,
    AwaitingReviews,
    EarlierReview,
    FollowUpPublic,
    ReviewCreate,
    ReviewList,
    ReviewPublic,
)

router = make_router(
    prefix="/v1", tags=["report reviews"], responses=problem_responses(401, 403, 422)
)


# Who reads a report's whole history of reviews, those given to a mother it was detached from
# included (to see what was advised, to whom): the clinicians and the admin. A butler and the
# desk read only the reviews given to the mother it is attached to now.
WHOLE_HISTORY = frozenset({Role.DOCTOR, Role.NUTRITIONIST, Role.ADMIN})


def review_view(
    review: ReportReview,
    follow_ups: list[FollowUpOrder],
    *,
    mother: Mother | None,
    attached_to: uuid.UUID | None,
) -> ReviewPublic:
    return ReviewPublic(
        id=review.id,
        report_id=review.report_id,
        mother_id=review.mother_id,
        mother_mrn=mother.mrn if mother is not None else None,
        mother_masked_name=mask_name(mother.name) if mother is not None else None,
        of_current_mother=attached_to == review.mother_id,
        report_version=review.report_version,
        report_status=ReportStatus(review.report_status),
        current=review.superseded_at is None,
        superseded_at=review.superseded_at,
        superseded_reason=review.superseded_reason,
        withdrawn=review.withdrawn_at is not None,
        withdrawn_at=review.withdrawn_at,
        withdrawn_reason=review.withdrawn_reason,
        reviewer_name=review.reviewer_name,
        reviewer_role=review.reviewer_role,
        reviewed_at=review.reviewed_at,
        interpretation=review.interpretation,
        abnormal_items=[AbnormalItemPublic.model_validate(i) for i in review.abnormal_items],
        abnormal_source=review.abnormal_source,
        advice_for_mother=review.advice_for_mother,
        advice_task_id=review.advice_task_id,
        follow_ups=[FollowUpPublic.model_validate(f) for f in follow_ups],
    )


@router.get(
    "/reports-to-review",
    response_model=AwaitingReviews,
    summary="The doctors' review worklist: matched final reports with no current review, "
    "abnormal ones first, then the longest waiting",
)
async def reports_to_review(
    _doctor: AdminOrDoctor,
    session: SessionDep,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AwaitingReviews:
    rows = await ReviewRepository(session).awaiting(limit=limit)
    audit.record_many(
        "report.review_list",
        "report",
        [r.id for r, _, _, _ in rows],
        mothers={r.id: r.mother_id for r, _, _, _ in rows},
    )
    return AwaitingReviews(
        items=[
            AwaitingReview(
                report_id=report.id,
                mother_id=mother.id,
                mrn=mother.mrn,
                name=mother.name,
                code=report.code,
                display=report.display,
                status=report.status,
                pickup_state=report.pickup_state,
                critical=report.critical,
                abnormal=abnormal,
                ready_at=report.ready_at,
                version=report.version,
                earlier_review=EarlierReview(
                    id=earlier.id,
                    report_version=earlier.report_version,
                    reviewer_name=earlier.reviewer_name,
                    reviewed_at=earlier.reviewed_at,
                )
                if earlier is not None
                else None,
            )
            for report, mother, abnormal, earlier in rows
        ]
    )


@router.post(
    "/reports/{report_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewPublic,
    summary="A doctor reviews the report: interpretation, abnormal items, advice for the "
    "mother, follow-up orders (her butler's tasks, with due dates)",
    description=(
        "Only a final, corrected or amended report attached to a mother (409 otherwise, and "
        "409 when its current version has been reviewed). abnormal_items left out: the "
        "observations the lab flagged. Each follow-up is due in_days, in_weeks or at due_at "
        "(exactly one) and becomes a task of her primary butler, reminded when overdue. "
        "Reviewed after her butler delivered the report: the butler gets a task to bring the "
        "advice. A critical value is paged when it arrives and never waits for this.\n\n"
        "Due in_days / in_weeks means at 09:00 (the clinic's time zone) on that local date. "
        "An unknown field is a 422 (nothing is dropped silently); a repeat_test's exam_code "
        "must be in the exam catalogue.\n\n"
        "**Revising** a review: post again with If-Match, the ETag of the current review "
        "(this answer's ETag). The earlier review is kept, superseded (revised by whom, "
        "when); its open follow-up tasks are closed (withdrawn, or replaced by the "
        "revision's), and the revision's advice and follow-ups go to her butler. Without "
        "If-Match: 409; a stale one: 412."
    ),
    dependencies=[Idempotent],
    responses=problem_responses(404, 409, 412),
)
async def review_report(
    body: ReviewCreate,
    principal: DoctorOnly,
    report: VisibleReport,
    session: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewPublic:
    review = await service.review(
        session,
        report=report,
        body=body,
        actor=principal,
        now=clock.now(),
        today=local_today(clock, settings.tz),
        tz=settings.tz,
        if_match=if_match,
    )
    audit.record(
        "report.review",
        "report",
        report.id,
        mother_id=review.mother_id,
        detail={
            "review_id": str(review.id),
            "mother_id": str(review.mother_id),
            "revision": if_match is not None,
        },
    )
    response.headers["Location"] = f"/v1/reports/{report.id}/reviews"
    response.headers["ETag"] = service.review_etag(review)
    (view,) = await _views(session, [review])
    return view


async def _views(session: SessionDep, reviews: Sequence[ReportReview]) -> list[ReviewPublic]:
    """The reviews as read, with the mother each was given to: three queries for the list."""
    follow_ups = await service.follow_ups_of(session, reviews)
    mothers, attached = await ReviewRepository(session).mothers_of(reviews)
    return [
        review_view(
            r,
            follow_ups.get(r.id, []),
            mother=mothers.get(r.mother_id),
            attached_to=attached.get(r.report_id),
        )
        for r in reviews
    ]


@router.get(
    "/reports/{report_id}/reviews",
    response_model=ReviewList,
    summary="Every review of a report, newest first; a review of an earlier version or a "
    "revised one is kept and marked current: false",
    description=(
        "A doctor, the nutritionist and the admin read the report's whole history: the "
        "reviews given to a mother it was since detached from included (all of them marked "
        "withdrawn, of_current_mother: false), each naming the mother it was for "
        "(mother_mrn, mother_masked_name), so the doctor sees what was advised and to whom. "
        "The desk reads only the reviews given to the mother it is attached to now (withdrawn "
        "ones marked); a butler only those, and never a withdrawn one: a report detached from "
        "one mother and attached to another shows her butler none of the first's."
    ),
    responses=problem_responses(404),
)
async def reviews_of_report(
    principal: ClinicStaffButlerOrNutritionist,
    report: VisibleReport,
    session: SessionDep,
    audit: AuditDep,
) -> ReviewList:
    whole = principal.role in WHOLE_HISTORY
    reviews = await ReviewRepository(session).of_report(report, every_mother=whole)
    if principal.role == Role.BUTLER:
        reviews = [r for r in reviews if r.withdrawn_at is None]
    audit.record(
        "report.reviews",
        "report",
        report.id,
        mother_id=report.mother_id,
        detail={
            "mother_id": str(report.mother_id) if report.mother_id else None,
        },
    )
    # Whose reviews were read, on each one's own trail ("who saw mother X"): a detached
    # report's earlier mothers too.
    audit.record_many("report.reviews", "mother", sorted({r.mother_id for r in reviews}))
    return ReviewList(items=await _views(session, reviews))


@router.get(
    "/mothers/{mother_id}/reviews",
    response_model=ReviewList,
    summary="The doctors' reviews of her reports, newest first (withdrawn ones marked, not "
    "to a butler)",
    responses=problem_responses(404),
)
async def reviews_of_mother(
    principal: ClinicStaffButlerOrNutritionist,
    mother: ReviewedMother,
    session: SessionDep,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewList:
    reviews = await ReviewRepository(session).of_mother(
        mother.id, limit=limit, with_withdrawn=principal.role != Role.BUTLER
    )
    audit.record("mother.reviews", "mother", mother.id)
    return ReviewList(items=await _views(session, reviews))
