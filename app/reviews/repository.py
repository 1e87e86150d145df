"""Every query of the reviews and their follow-up orders, and the list of reports to review."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Exists

from app.mothers.models import Mother
from app.queues.models import ExamType
from app.reports.domain import PickupState
from app.reports.models import LabObservation, LabReport, ReportEvent
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

    async def of_report(self, report: LabReport, *, every_mother: bool) -> list[ReportReview]:
        """The reviews of the report, newest first (earlier versions' and revisions kept,
        withdrawn ones marked). every_mother: its whole history, the reviews given to a mother
        it was later detached from included (the clinicians' view: what was advised, to whom);
        else only those given to the mother it is attached to now, so that a report detached
        from one mother and attached to another shows the second none of the first's."""
        stmt = select(ReportReview).where(ReportReview.report_id == report.id)
        if not every_mother:
            if report.mother_id is None:
                return []
            stmt = stmt.where(ReportReview.mother_id == report.mother_id)
        return list(
            await self.session.scalars(
                stmt.order_by(ReportReview.reviewed_at.desc(), ReportReview.id.desc())
            )
        )

    async def standing_of(self, report_id: uuid.UUID, mother_id: uuid.UUID) -> list[ReportReview]:
        """Every review of the report given to her and not withdrawn (the current one, the
        revised ones, the earlier versions' ones), oldest first, locked: to withdraw them."""
        return list(
            await self.session.scalars(
                select(ReportReview)
                .where(
                    ReportReview.report_id == report_id,
                    ReportReview.mother_id == mother_id,
                    ReportReview.withdrawn_at.is_(None),
                )
                .order_by(ReportReview.reviewed_at, ReportReview.id)
                .with_for_update()
            )
        )

    async def mothers_of(
        self, reviews: Sequence[ReportReview]
    ) -> tuple[dict[uuid.UUID, Mother], dict[uuid.UUID, uuid.UUID | None]]:
        """For a list of reviews, in two queries: the mothers they were given to, and the
        mother each one's report is attached to now (None: detached)."""
        mother_ids = {r.mother_id for r in reviews}
        report_ids = {r.report_id for r in reviews}
        if not reviews:
            return {}, {}
        mothers = {
            m.id: m
            for m in await self.session.scalars(select(Mother).where(Mother.id.in_(mother_ids)))
        }
        attached = {
            rid: mid
            for rid, mid in (
                await self.session.execute(
                    select(LabReport.id, LabReport.mother_id).where(LabReport.id.in_(report_ids))
                )
            ).all()
        }
        return mothers, attached

    async def of_mother(
        self, mother_id: uuid.UUID, *, limit: int, with_withdrawn: bool
    ) -> list[ReportReview]:
        """Her reviews, newest first; withdrawn ones only for who may read the history. Without
        them, also none of a report no longer attached to her (a review given before the
        reviews of a detached report were all marked withdrawn stays off a butler's phone)."""
        stmt = select(ReportReview).where(ReportReview.mother_id == mother_id)
        if not with_withdrawn:
            stmt = stmt.join(LabReport, LabReport.id == ReportReview.report_id).where(
                ReportReview.withdrawn_at.is_(None), LabReport.mother_id == mother_id
            )
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

    async def delivered_since(self, report_id: uuid.UUID, since: datetime) -> bool:
        """Her butler delivered the report (explained it to her) at or after that time."""
        return (
            await self.session.scalar(
                select(ReportEvent.id)
                .where(
                    ReportEvent.report_id == report_id,
                    ReportEvent.kind == PickupState.DELIVERED.value,
                    ReportEvent.at >= since,
                )
                .limit(1)
            )
        ) is not None

    async def exam_names(self, codes: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """The catalogue's names (English, Chinese or None) of each exam code it has."""
        if not codes:
            return {}
        return {
            code: (name, name_zh)
            for code, name, name_zh in (
                await self.session.execute(
                    select(ExamType.code, ExamType.name, ExamType.name_zh).where(
                        ExamType.code.in_(set(codes))
                    )
                )
            ).all()
        }

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
