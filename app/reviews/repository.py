"""Every query of the reviews and their follow-up orders, and the list of reports to review."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Exists

from app.mothers.models import Mother
from app.queues.models import ExamType
from app.reports.models import LabObservation, LabReport
from app.reviews.domain import NOT_ABNORMAL_FLAGS, REVIEWABLE
from app.reviews.models import FollowUpOrder, ReportReview
from app.visits.models import ExamOrder


def _flagged_observation() -> Exists:
    """The report has an observation the lab flagged, or one on the critical list."""
    flag = func.upper(func.trim(func.coalesce(LabObservation.flag, "")))
    return exists().where(
        LabObservation.report_id == LabReport.id,
        or_(LabObservation.critical_reason.is_not(None), flag.not_in(NOT_ABNORMAL_FLAGS)),
    )


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(
        self, report_id: uuid.UUID, *, for_update: bool = False
    ) -> ReportReview | None:
        """The review of the report as it stands (not superseded by a later version)."""
        stmt = select(ReportReview).where(
            ReportReview.report_id == report_id, ReportReview.superseded_at.is_(None)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def of_report(self, report: LabReport) -> list[ReportReview]:
        """Every review of the report given while it was her current mother's, newest first
        (earlier versions' and revisions kept, withdrawn ones marked). A report detached from
        one mother and attached to another shows the second none of the first's reviews."""
        if report.mother_id is None:
            return []
        return list(
            await self.session.scalars(
                select(ReportReview)
                .where(
                    ReportReview.report_id == report.id,
                    ReportReview.mother_id == report.mother_id,
                )
                .order_by(ReportReview.reviewed_at.desc(), ReportReview.id.desc())
            )
        )

    async def of_mother(
        self, mother_id: uuid.UUID, *, limit: int, with_withdrawn: bool
    ) -> list[ReportReview]:
        """Her reviews, newest first; withdrawn ones only for who may read the history."""
        stmt = select(ReportReview).where(ReportReview.mother_id == mother_id)
        if not with_withdrawn:
            stmt = stmt.where(ReportReview.withdrawn_at.is_(None))
        return list(
            await self.session.scalars(
                stmt.order_by(ReportReview.reviewed_at.desc(), ReportReview.id.desc()).limit(limit)
            )
        )

    async def exam_known(self, code: str) -> bool:
        """The code names an exam of the catalogue (a repeat test must be bookable)."""
        return (
            await self.session.scalar(select(ExamType.code).where(ExamType.code == code))
        ) is not None

    async def follow_ups(
        self, review_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[FollowUpOrder]]:
        found: dict[uuid.UUID, list[FollowUpOrder]] = defaultdict(list)
        if not review_ids:
            return found
        for order in await self.session.scalars(
            select(FollowUpOrder)
            .where(FollowUpOrder.review_id.in_(review_ids))
            .order_by(FollowUpOrder.due_at, FollowUpOrder.id)
        ):
            found[order.review_id].append(order)
        return found

    async def exam_code_of(self, report: LabReport) -> str | None:
        """The catalogue's exam the report answers (its order's), to repeat it."""
        if report.exam_order_id is None:
            return None
        return await self.session.scalar(
            select(ExamOrder.exam_code).where(ExamOrder.id == report.exam_order_id)
        )

    async def awaiting(
        self, *, limit: int
    ) -> list[tuple[LabReport, Mother, bool, ReportReview | None]]:
        """Matched, released reports with no current review: (report, mother, abnormal, the
        review of its earlier version if any). Abnormal ones first (a critical value, a result
        that could not be assessed, anything the lab flagged), then the longest waiting."""
        abnormal = or_(LabReport.critical, LabReport.needs_review, _flagged_observation())
        reviewed = exists().where(
            ReportReview.report_id == LabReport.id, ReportReview.superseded_at.is_(None)
        )
        rows = (
            await self.session.execute(
                select(LabReport, Mother, case((abnormal, True), else_=False))
                .join(Mother, Mother.id == LabReport.mother_id)
                .where(
                    LabReport.status.in_(REVIEWABLE),
                    ~reviewed,
                )
                .order_by(
                    case((abnormal, 0), else_=1),
                    LabReport.ready_at,
                    LabReport.received_at,
                    LabReport.id,
                )
                .limit(limit)
            )
        ).all()
        earlier = await self._latest_superseded([r.id for r, _, _ in rows])
        return [(r, m, bool(a), earlier.get(r.id)) for r, m, a in rows]

    async def _latest_superseded(
        self, report_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ReportReview]:
        if not report_ids:
            return {}
        found: dict[uuid.UUID, ReportReview] = {}
        for review in await self.session.scalars(
            select(ReportReview)
            .join(LabReport, LabReport.id == ReportReview.report_id)
            .where(
                and_(
                    ReportReview.report_id.in_(report_ids),
                    ReportReview.mother_id == LabReport.mother_id,  # hers, not a mother before
                    ReportReview.superseded_at.is_not(None),
                    ReportReview.withdrawn_at.is_(None),
                )
            )
            .order_by(ReportReview.reviewed_at)
        ):
            found[review.report_id] = review  # the newest wins
        return found
