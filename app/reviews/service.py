"""A doctor's review of a final report: the worklist of reports awaiting review, the review
with its advice and follow-up orders (her butler's tasks). Services flush; never commit.

A critical value never waits for a review: the report service pages it in the same
transaction whatever happens here, and ``on_report_ready`` runs in a savepoint, so that a
failure in it loses neither the report nor its alert."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, PreconditionFailed, invalid_field
from app.core.etag import if_match_matches
from app.core.principal import Principal
from app.feed.changes import touch_mother
from app.feed.models import Task
from app.mothers.models import Mother
from app.notifications.outbox import notify_butler
from app.reports.domain import PickupState
from app.reports.models import LabObservation, LabReport
from app.reports.repository import ReportRepository
from app.reviews import domain
from app.reviews.domain import AbnormalSource, FollowUpKind
from app.reviews.models import FollowUpOrder, ReportReview
from app.reviews.repository import ReviewRepository
from app.reviews.schemas import FollowUpCreate, ReviewCreate
from app.worklist import service as worklist

logger = logging.getLogger("app.reviews")

REVIEW_KIND = "report.review"  # the doctors' worklist item: one open per report
REFERRAL_KIND = "review.see_nutritionist"
UNASSIGNED_KIND = "review.follow_up_unassigned"


class NotReviewable(Conflict):
    slug = "report-not-reviewable"
    title = "Only a final, corrected or amended report of a mother can be reviewed"


class AlreadyReviewed(Conflict):
    slug = "report-already-reviewed"
    title = "This version of the report has been reviewed"


def observations_of(rows: Sequence[LabObservation]) -> list[domain.Observation]:
    return [
        domain.Observation(
            seq=o.seq,
            code=o.code,
            display=o.display,
            value=o.value,
            unit=o.unit,
            flag=o.flag,
            critical_reason=o.critical_reason,
        )
        for o in rows
    ]


# The report is ready: it awaits a review --------------------------------------------------


async def on_report_ready(
    session: AsyncSession, report: LabReport, *, now: datetime, today: date, reopened: bool
) -> None:
    """A matched report became final (or was amended): it awaits a doctor's review.

    An amended or corrected report marks the review of its earlier version superseded (kept,
    and shown as such) and puts the report back on the doctors' list. Contained in a
    savepoint: a failure here is logged (ids only) and the report stays on
    GET /v1/reports-to-review, which is read from the reports themselves."""
    if report.mother_id is None:
        return
    try:
        async with session.begin_nested():
            await _await_review(session, report, now=now, reopened=reopened)
    except Exception as exc:  # the report and its alert must not be lost with it
        logger.error(
            "the report could not be put on the review list",
            extra={
                "event": "review_item_failed",
                "report": str(report.id),
                "error": type(exc).__name__,
            },
        )


async def _await_review(
    session: AsyncSession, report: LabReport, *, now: datetime, reopened: bool
) -> None:
    repo = ReviewRepository(session)
    earlier = None
    if reopened:
        earlier = await repo.current(report.id, for_update=True)
        if earlier is not None:
            earlier.superseded_at = now
            earlier.superseded_reason = domain.superseded_reason(report.status, report.version)
            await session.flush()
    observations = observations_of(await ReportRepository(session).observations(report.id))
    abnormal = domain.is_abnormal(observations, critical=report.critical)
    what = domain.report_title(report.display, report.code)
    title = f"Report to review: {what}" + (" (abnormal results)" if abnormal else "")
    if earlier is not None:
        title += f"; {report.status.value}: the review of version {earlier.report_version} is kept"
    await worklist.add(
        session,
        audiences=[worklist.DOCTOR],
        kind=REVIEW_KIND,
        priority=worklist.TODAY if abnormal else worklist.ROUTINE,
        title=title,
        now=now,
        report_id=report.id,
        mother_id=report.mother_id,
    )


# The review ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Due:
    order: FollowUpCreate
    due_at: datetime


async def _check_follow_ups(
    repo: ReviewRepository,
    follow_ups: Sequence[FollowUpCreate],
    *,
    now: datetime,
    tz: ZoneInfo,
) -> list[_Due]:
    checked = []
    for i, order in enumerate(follow_ups):
        field = f"follow_ups.{i}"
        given = [
            name
            for name, value in (
                ("in_days", order.in_days),
                ("in_weeks", order.in_weeks),
                ("due_at", order.due_at),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise invalid_field(
                f"{field}.{given[1] if len(given) > 1 else 'in_days'}",
                "give exactly one of in_days, in_weeks or due_at",
            )
        if order.due_at is not None and order.due_at < now:
            raise invalid_field(f"{field}.due_at", "a follow-up cannot be due in the past")
        if order.kind is FollowUpKind.OTHER and order.note is None:
            raise invalid_field(f"{field}.note", "say what the follow-up is")
        if order.exam_code is not None and not await repo.exam_known(order.exam_code):
            # A repeat test her butler cannot book is no order at all.
            raise invalid_field(
                f"{field}.exam_code",
                f"no exam {order.exam_code!r} in the catalogue (GET /v1/exam-types)",
            )
        due = domain.due_at(
            now=now, tz=tz, in_days=order.in_days, in_weeks=order.in_weeks, at=order.due_at
        )
        checked.append(_Due(order, due))
    return checked


def review_etag(review: ReportReview) -> str:
    """A review is never changed, only replaced: its id is its version."""
    return f'"{review.id}"'


def _matches(if_match: str, review: ReportReview) -> bool:
    """Strong comparison (RFC 9110): a weak tag never matches; an unquoted one is a 400."""
    return if_match_matches(if_match, review_etag(review))


async def review(
    session: AsyncSession,
    *,
    report: LabReport,
    body: ReviewCreate,
    actor: Principal,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    if_match: str | None = None,
) -> ReportReview:
    """Record the doctor's review of the report as it stands, turn each follow-up order into
    her butler's task, close the review item, and tell her butlers' phones.

    A review is revised by reviewing again with If-Match: the ETag of the current review (its
    answer's ETag). The earlier review is kept, superseded "revised by …" at that time; the
    open tasks it gave her butler are closed (the follow-ups the revision orders again get
    new tasks with the revision's due dates, those it no longer orders are withdrawn), its
    nutritionist referral leaves her list unless ordered again, and the new advice is what
    the butler's pickup, delivery or task carries. Without If-Match a second review is 409
    (two doctors at once must not overwrite each other); a stale one is 412."""
    if report.mother_id is None:
        raise NotReviewable(
            "The report is not attached to a mother: the front desk reconciles it first."
        )
    if report.status not in domain.REVIEWABLE:
        raise NotReviewable(
            f"The report is {report.status.value}: only a final (or later corrected or amended) "
            "report is reviewed.",
            extra={"status": report.status.value},
        )
    reports = ReportRepository(session)
    if await reports.open_conflict(report.id) is not None:
        raise NotReviewable(
            "The lab has sent an update of this report naming another patient; it is on hold "
            "until the front desk resolves it."
        )
    repo = ReviewRepository(session)
    current = await repo.current(report.id, for_update=True)
    if if_match is not None and (current is None or not _matches(if_match, current)):
        raise PreconditionFailed(
            "The review you revise is no longer the current one: read "
            f"GET /v1/reports/{report.id}/reviews again.",
            extra={"current_etag": review_etag(current) if current is not None else None},
        )
    if current is not None and if_match is None:
        raise AlreadyReviewed(
            f"{current.reviewer_name} reviewed version {current.report_version} of this report; "
            f"to revise it, review again with If-Match: {review_etag(current)}.",
            extra={"review_id": str(current.id), "etag": review_etag(current)},
        )
    due = await _check_follow_ups(repo, body.follow_ups, now=now, tz=tz)
    observations = observations_of(await reports.observations(report.id))
    if body.abnormal_items is None:
        items, source = domain.lab_flagged(observations), AbnormalSource.LAB_FLAGS
    else:
        try:
            items = domain.chosen(observations, [(p.seq, p.why) for p in body.abnormal_items])
        except KeyError as exc:
            index = exc.args[0]
            raise invalid_field(
                f"abnormal_items.{index}.seq",
                f"the report has no observation {body.abnormal_items[index].seq}",
            ) from exc
        source = AbnormalSource.DOCTOR
    mother = await session.get(Mother, report.mother_id)
    assert mother is not None
    what = domain.report_title(report.display, report.code)
    if current is not None:
        await _supersede_revised(
            session, repo, current, report=report, revision=due, actor=actor, now=now
        )

    entry = ReportReview(
        report_id=report.id,
        mother_id=mother.id,
        report_version=report.version,
        report_status=report.status.value,
        lab_message_id=report.last_message_id,
        reviewer_id=actor.id,
        reviewer_name=actor.name,
        reviewer_role=actor.role,
        interpretation=body.interpretation,
        abnormal_items=[i.as_json() for i in items],
        abnormal_source=source,
        advice_for_mother=body.advice_for_mother,
        reviewed_at=now,
    )
    session.add(entry)
    await session.flush()

    butler_id = mother.primary_butler_id
    exam_code = await repo.exam_code_of(report) or report.code
    codes = [
        order.exam_code or (exam_code if order.kind is FollowUpKind.REPEAT_TEST else None)
        for order in (d.order for d in due)
    ]
    names = await repo.exam_names([c for c in codes if c is not None])
    tasks: list[Task] = []
    for d, code in zip(due, codes, strict=True):
        order = d.order
        if code is None:
            label = None
        elif code in names or code != report.code:
            label = domain.exam_label(code, names.get(code))
        else:  # no order, not a catalogue code: the report's own name for it
            label = report.display or code
        task = _task(
            mother,
            domain.task_title(order.kind, exam=label),
            due_at=d.due_at,
            by=actor.name,
            now=now,
        )
        session.add(task)
        await session.flush()
        tasks.append(task)
        session.add(
            FollowUpOrder(
                review_id=entry.id,
                mother_id=mother.id,
                kind=order.kind,
                exam_code=code,
                due_at=d.due_at,
                note=order.note,
                task_id=task.id,
                created_at=now,
            )
        )
        if order.kind is FollowUpKind.SEE_NUTRITIONIST:
            await worklist.add(
                session,
                audiences=[worklist.NUTRITIONIST],
                kind=REFERRAL_KIND,
                title="A doctor asks for a nutrition consultation after reviewing a lab report",
                now=now,
                report_id=report.id,
                mother_id=mother.id,
                task_id=task.id,
            )
    if report.pickup_state is PickupState.DELIVERED:
        # She already has the report: her butler brings the advice as a task of its own.
        task = _task(
            mother,
            domain.bring_advice_title(what),
            due_at=now + domain.BRING_ADVICE_WITHIN,
            by=actor.name,
            now=now,
        )
        session.add(task)
        await session.flush()
        tasks.append(task)
        entry.advice_task_id = task.id
    await session.flush()

    if tasks and butler_id is None:
        await worklist.add(
            session,
            audiences=[worklist.FRONT_DESK],
            kind=UNASSIGNED_KIND,
            title="A doctor's follow-up has no butler to do it: assign her a primary butler",
            now=now,
            report_id=report.id,
            mother_id=mother.id,
        )
    await worklist.close_about(
        session,
        report_id=report.id,
        kinds=[REVIEW_KIND],
        by=actor.name,
        note=f"reviewed (version {report.version})",
        now=now,
    )
    await notify_butler(
        session,
        topic="report.reviewed",
        now=now,
        butler_id=butler_id,
        mother_id=mother.id,
        payload={
            "report_id": report.id,
            "review_id": entry.id,
            "revised": current is not None,
            "channel": "butler_app",
        },
    )
    await touch_mother(
        session,
        mother.id,
        kind="report.reviewed",
        now=now,
        today=today,
        ref_type="report",
        ref_id=report.id,
    )
    return entry


async def _supersede_revised(
    session: AsyncSession,
    repo: ReviewRepository,
    earlier: ReportReview,
    *,
    report: LabReport,
    revision: Sequence[_Due],
    actor: Principal,
    now: datetime,
) -> None:
    """The doctor replaces her review: the earlier one is kept, superseded by who and when;
    the open tasks it gave her butler are closed (withdrawn, or replaced when the revision
    orders the same follow-up again: its own task carries the new due date)."""
    earlier.superseded_at = now
    earlier.superseded_reason = domain.revised_reason(actor.name)
    await session.flush()  # one current review: the earlier one leaves the unique index first
    again = {(d.order.kind, d.order.exam_code) for d in revision}
    orders = (await repo.follow_ups([earlier.id]))[earlier.id]
    closing: list[tuple[uuid.UUID, str]] = [
        (
            o.task_id,
            "replaced by the doctor's revised follow-up"
            if (o.kind, o.exam_code) in again or (o.kind, None) in again
            else "withdrawn: the doctor revised the review and no longer orders it",
        )
        for o in orders
    ]
    if earlier.advice_task_id is not None:
        closing.append((earlier.advice_task_id, _REPLACED_ADVICE))
    await _close_tasks(session, closing, now=now)
    if any(o.kind is FollowUpKind.SEE_NUTRITIONIST for o in orders):
        await worklist.close_about(
            session,
            report_id=report.id,
            kinds=[REFERRAL_KIND],
            by=actor.name,
            note="the doctor revised the review",
            now=now,
        )


_REPLACED_ADVICE = "replaced by the doctor's revised advice"
# How the tasks this service closes itself begin (not her butler's own completion).
_CLOSED_BY_US = (_REPLACED_ADVICE, "replaced by the doctor's", "withdrawn")


async def _close_tasks(
    session: AsyncSession, closing: Sequence[tuple[uuid.UUID, str]], *, now: datetime
) -> int:
    """Complete the open ones of these tasks with the note saying why; how many were open."""
    closed = 0
    for task_id, note in closing:
        task = await session.get(Task, task_id, with_for_update=True)
        if task is not None and task.completed_at is None:
            task.completed_at, task.completion_note = now, note[:1000]
            closed += 1
    await session.flush()
    return closed


def _task(mother: Mother, title: str, *, due_at: datetime, by: str, now: datetime) -> Task:
    return Task(
        mother_id=mother.id,
        butler_id=mother.primary_butler_id,
        title=title,
        due_at=due_at,
        created_by_name=by[:100],
        created_at=now,
    )


# Reading ------------------------------------------------------------------------------------


async def follow_ups_of(
    session: AsyncSession, reviews: Sequence[ReportReview]
) -> dict[uuid.UUID, list[FollowUpOrder]]:
    return await ReviewRepository(session).follow_ups([r.id for r in reviews])


# The report is withdrawn or was not hers ------------------------------------------------------

WITHDRAWN_KIND = "review.withdrawn"


async def on_report_withdrawn(
    session: AsyncSession,
    report: LabReport,
    *,
    mother_id: uuid.UUID,
    why: str,
    by: str,
    now: datetime,
    today: date,
) -> bool:
    """The lab cancelled the report, or the desk detached it from her (it was another
    patient's): it leaves the review list, and advice given on it no longer stands. True when
    her butler was given a task about it (the caller need not give another). EVERY
    review of it given to her is marked withdrawn: the current one, a revised one, the review
    of an earlier version (kept in her history, with why, for clinicians; never advice on a
    butler's phone again, and never the "earlier review" a later one falls back to). The
    nutritionist's referral leaves her list, the open tasks they gave her butler (follow-ups,
    the advice to bring) are withdrawn, and the doctors are told, so that nobody repeats a
    test or calls a mother on a result that was not hers.

    The advice had reached her butler (her phone carried it with the report, or as a task to
    bring it): the butler gets a task, now, saying not to repeat it and that the doctor will
    contact her; neutral, it names neither the result nor a diagnosis. The doctors' item says
    whether it had been delivered to her (the butler delivered the report after the review,
    or brought the advice of a late review), which the doctor must then put right with her.
    Not contained: withdrawing wrong advice is part of withdrawing the report, and both stand
    or fall together."""
    await worklist.close_about(
        session,
        report_id=report.id,
        kinds=[REVIEW_KIND, REFERRAL_KIND],
        by=by,
        note=why[:1000],
        now=now,
    )
    repo = ReviewRepository(session)
    standing = await repo.standing_of(report.id, mother_id)
    if not standing:
        return False
    orders = await repo.follow_ups([r.id for r in standing])
    task_ids: list[uuid.UUID] = []
    advice_tasks: list[uuid.UUID] = []
    for review in standing:
        if review.superseded_at is None:
            review.superseded_at = now
            review.superseded_reason = domain.WITHDRAWN_REASON
        review.withdrawn_at, review.withdrawn_reason = now, why[:300]
        task_ids += [o.task_id for o in orders[review.id]]
        if review.advice_task_id is not None:
            advice_tasks.append(review.advice_task_id)
    await session.flush()
    # The advice of a late review brought to her already: delivered, as much as the report.
    # (Not a task the service itself closed, replaced by a revision's, or withdrawn.)
    brought = [
        t
        for t in [await session.get(Task, task_id) for task_id in advice_tasks]
        if t is not None
        and t.completed_at is not None
        and not (t.completion_note or "").startswith(_CLOSED_BY_US)
    ]
    delivered = bool(brought) or await repo.delivered_since(report.id, standing[0].reviewed_at)
    withdrawn = await _close_tasks(
        session,
        [(task_id, f"withdrawn: {why}") for task_id in task_ids + advice_tasks],
        now=now,
    )
    mother = await session.get(Mother, mother_id)
    assert mother is not None
    butler_id = mother.primary_butler_id
    if butler_id is not None:
        session.add(
            _task(
                mother,
                domain.withdrawn_advice_title(delivered=delivered),
                due_at=now,
                by=by,
                now=now,
            )
        )
        await session.flush()
        await notify_butler(
            session,
            topic="review.withdrawn",
            now=now,
            butler_id=butler_id,
            mother_id=mother_id,
            payload={"report_id": report.id, "delivered": delivered, "channel": "butler_app"},
        )
    await touch_mother(
        session,
        mother_id,
        kind="review.withdrawn",
        now=now,
        today=today,
        ref_type="report",
        ref_id=report.id,
    )
    await worklist.add(
        session,
        audiences=[worklist.DOCTOR],
        kind=WITHDRAWN_KIND,
        priority=worklist.TODAY,
        # No free text: the desk's reason may name the other patient.
        title=domain.withdrawn_item_title(
            delivered=delivered, butler_told=butler_id is not None, tasks_withdrawn=withdrawn
        ),
        now=now,
        report_id=report.id,
        mother_id=mother_id,
    )
    return butler_id is not None
