"""Taking results in, attaching them to the right mother (or to reconciliation), and the
pickup lifecycle. Services flush; never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.core.principal import Principal
from app.feed.changes import touch_mother
from app.mothers.models import Mother
from app.notifications.outbox import enqueue
from app.reports import domain
from app.reports.domain import ParsedReport, PickupState, ReportStatus, Threshold
from app.reports.models import CriticalAlert, LabObservation, LabReport, ReportEvent
from app.reports.repository import ReportRepository
from app.visits.models import Visit


class IllegalPickup(Conflict):
    slug = "illegal-report-transition"
    title = "The report cannot change to that state"


@dataclass
class IntakeResult:
    matched: int = 0
    reconciliation: int = 0
    reports: list[uuid.UUID] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.matched} report(s) attached"]
        if self.reconciliation:
            parts.append(f"{self.reconciliation} to reconciliation")
        return "; ".join(parts + self.notes)


def _event(
    report: LabReport,
    kind: str,
    *,
    actor: str,
    at: datetime,
    message_id: uuid.UUID | None = None,
    note: str | None = None,
) -> ReportEvent:
    return ReportEvent(
        report_id=report.id,
        kind=kind,
        status=report.status.value,
        pickup_state=report.pickup_state.value,
        message_id=message_id,
        actor_name=actor,
        note=note,
        at=at,
    )


async def _match(
    repo: ReportRepository, parsed: ParsedReport
) -> tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None, str | None]:
    """(order, visit, mother, reconciliation reason). Order number AND patient must agree."""
    if not parsed.placer_order:
        return None, None, None, "no order number (OBR-2 / basedOn) in the message"
    found = await repo.order_by_number(parsed.placer_order)
    if found is None:
        return None, None, None, f"no exam order {parsed.placer_order}"
    order, visit = found
    mother = await repo.session.get(Mother, visit.mother_id)
    assert mother is not None
    if not parsed.patient_mrn:
        return None, None, None, f"order {parsed.placer_order}: the message names no patient"
    if parsed.patient_mrn != mother.mrn:
        return (
            None,
            None,
            None,
            f"order {parsed.placer_order} belongs to another patient than the message names",
        )
    return order.id, visit.id, mother.id, None


async def _butler_for(
    repo: ReportRepository, report: LabReport, *, today: date | None = None
) -> uuid.UUID | None:
    """Who brings her the results now: the butler at her side if the visit is today (a cover
    only sees her that day), otherwise her current primary butler."""
    if report.visit_id is not None and today is not None:
        visit = await repo.session.get(Visit, report.visit_id)
        if visit is not None and visit.visit_date == today and visit.accompanying_butler_id:
            return visit.accompanying_butler_id
    if report.mother_id is not None:
        mother = await repo.session.get(Mother, report.mother_id)
        if mother is not None:
            return mother.primary_butler_id
    return None


async def _announce_ready(
    repo: ReportRepository, report: LabReport, *, now: datetime, today: date, reopened: bool
) -> None:
    butler_id = await _butler_for(repo, report, today=today)
    await enqueue(
        repo.session,
        topic="report.amended" if reopened else "report.ready",
        now=now,
        butler_id=butler_id,
        mother_id=report.mother_id,
        payload={"report_id": report.id, "channel": "butler_app"},
    )
    # The mother's SMS says only that something is ready: never a result or a diagnosis.
    await enqueue(
        repo.session,
        topic="sms.report_ready",
        now=now,
        mother_id=report.mother_id,
        payload={"report_id": report.id, "channel": "sms", "template": "report_ready"},
    )


async def _raise_alert(
    repo: ReportRepository,
    report: LabReport,
    reasons: Sequence[str],
    *,
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> None:
    if await repo.open_alert(report.id) is not None:
        return  # already paging about this report
    butler_id = await _butler_for(repo, report, today=today)
    alert = CriticalAlert(
        report_id=report.id,
        mother_id=report.mother_id,
        butler_id=butler_id,
        reason="; ".join(reasons)[:500],
        raised_at=now,
        due_at=now + ack_within,
        level=0,
    )
    repo.session.add(alert)
    await repo.session.flush()
    for recipient, topic, channel in (
        (butler_id, "alert.critical", "butler_app"),
        (None, "alert.critical.doctor", "doctor"),  # the doctor on duty's list
    ):
        await enqueue(
            repo.session,
            topic=topic,
            now=now,
            butler_id=recipient,
            mother_id=report.mother_id,
            payload={"alert_id": alert.id, "report_id": report.id, "channel": channel},
        )
    repo.session.add(_event(report, "critical_alert", actor="system", at=now, note=alert.reason))


async def ingest(
    repo: ReportRepository,
    *,
    sender_id: uuid.UUID,
    message_id: uuid.UUID,
    reports: Sequence[ParsedReport],
    thresholds: Sequence[Threshold],
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> IntakeResult:
    """Store each report, attach it to its order's mother or send it to reconciliation."""
    result = IntakeResult()
    for parsed in reports:
        order_id, visit_id, mother_id, problem = await _match(repo, parsed)
        report = await repo.report_by_key(sender_id, parsed.source_key)
        new_status = parsed.status.status
        if report is None:
            report = LabReport(
                sender_id=sender_id,
                source_key=parsed.source_key,
                last_message_id=message_id,
                status=new_status,
                pickup_state=PickupState.NOT_READY,
                status_derived=parsed.status.derived,
                status_note=parsed.status.note,
                received_at=now,
                updated_at=now,
                version=1,
            )
            repo.session.add(report)
            previous_status: ReportStatus | None = None
            previous_pickup = PickupState.NOT_READY
        else:
            previous_status, previous_pickup = report.status, report.pickup_state
            if previous_status in domain.READY and not (
                new_status in domain.READY or new_status in domain.WITHDRAWN
            ):
                # A preliminary after a final would put unchecked values in front of the
                # mother: keep the final, and note what came.
                repo.session.add(
                    _event(
                        report,
                        "lab_status_ignored",
                        actor="lab",
                        at=now,
                        message_id=message_id,
                        note=f"{new_status.value} after {previous_status.value}: kept",
                    )
                )
                result.notes.append(f"{parsed.source_key}: {new_status.value} after final ignored")
                result.reports.append(report.id)
                continue
            report.version += 1
        report.last_message_id = message_id
        if report.reconciled_by is not None and report.mother_id is not None:
            # Attached by hand at the front desk: a resend does not undo that decision.
            if problem is not None:
                repo.session.add(
                    _event(
                        report,
                        "lab_identity_disagrees",
                        actor="lab",
                        at=now,
                        message_id=message_id,
                        note=problem,
                    )
                )
                problem = None
            order_id, visit_id, mother_id = report.exam_order_id, report.visit_id, report.mother_id
        previous_mother = report.mother_id
        report.exam_order_id, report.visit_id, report.mother_id = order_id, visit_id, mother_id
        report.reconciliation_reason = problem
        report.placer_order, report.filler_order = parsed.placer_order, parsed.filler_order
        report.patient_mrn = parsed.patient_mrn
        report.code, report.display = parsed.code, parsed.display
        report.status = new_status
        report.status_derived, report.status_note = parsed.status.derived, parsed.status.note
        report.effective_at, report.issued_at = parsed.effective_at, parsed.issued_at
        report.conclusion = parsed.conclusion
        report.updated_at = now
        report.pickup_state = domain.pickup_after_status(
            previous_pickup, previous_status, new_status
        )
        await repo.session.flush()

        criticals = []
        rows = []
        for seq, obs in enumerate(parsed.observations, start=1):
            reason = domain.critical_reason(obs, thresholds)
            if reason:
                criticals.append(reason)
            rows.append(
                LabObservation(
                    report_id=report.id,
                    seq=seq,
                    code=obs.code,
                    code_system=obs.code_system,
                    display=obs.display,
                    value_type=obs.value_type,
                    value=obs.value,
                    numeric=obs.numeric,
                    unit=obs.unit,
                    reference_range=obs.reference_range,
                    flag=obs.flag,
                    status=obs.status,
                    critical_reason=reason,
                )
            )
        await repo.replace_observations(report.id, rows)
        report.critical = bool(criticals)
        if previous_mother is not None and previous_mother != report.mother_id:
            await touch_mother(
                repo.session,
                previous_mother,
                kind="report.changed",
                now=now,
                today=today,
                ref_type="report",
                ref_id=report.id,
            )
        await touch_mother(
            repo.session,
            report.mother_id,
            kind="report.changed",
            now=now,
            today=today,
            ref_type="report",
            ref_id=report.id,
        )
        repo.session.add(
            _event(
                report,
                "lab_status",
                actor="lab",
                at=now,
                message_id=message_id,
                note=problem or parsed.status.note,
            )
        )
        result.reports.append(report.id)
        if problem is not None:
            result.reconciliation += 1
            await enqueue(
                repo.session,
                topic="report.unmatched",
                now=now,
                payload={"report_id": report.id, "channel": "front_desk"},
            )
            continue
        result.matched += 1
        became_ready = report.pickup_state is PickupState.READY and (
            previous_pickup is not PickupState.READY or previous_status != new_status
        )
        if became_ready:
            report.ready_at, report.reminders_sent = now, 0
            await _announce_ready(
                repo, report, now=now, today=today, reopened=previous_status in domain.READY
            )
        if criticals and new_status not in domain.WITHDRAWN:
            await _raise_alert(repo, report, criticals, now=now, today=today, ack_within=ack_within)
    await repo.session.flush()
    return result


# The butler's part: pick up, deliver ------------------------------------------------------


async def _advance(
    repo: ReportRepository,
    report: LabReport,
    to: PickupState,
    *,
    note: str,
    actor: Principal,
    now: datetime,
    today: date,
) -> None:
    """One step of the butler's part: check it, record it, and tell her butlers' phones."""
    try:
        domain.check_pickup(report.pickup_state, to)
    except domain.IllegalPickupError as exc:
        raise IllegalPickup(
            str(exc).capitalize() + ".",
            extra={"current_state": exc.current.value, "requested_state": to.value},
        ) from exc
    report.pickup_state = to
    report.version += 1
    report.updated_at = now
    repo.session.add(_event(report, to.value, actor=actor.name, at=now, note=note))
    await touch_mother(
        repo.session,
        report.mother_id,
        kind=f"report.{to.value}",
        now=now,
        today=today,
        ref_type="report",
        ref_id=report.id,
    )
    await repo.session.flush()


async def pick_up(
    repo: ReportRepository,
    *,
    report: LabReport,
    place: str,
    actor: Principal,
    now: datetime,
    today: date,
) -> LabReport:
    await _advance(
        repo, report, PickupState.PICKED_UP, note=place, actor=actor, now=now, today=today
    )
    report.picked_up_at, report.picked_up_by, report.pickup_place = now, actor.id, place
    await repo.session.flush()
    return report


async def deliver(
    repo: ReportRepository,
    *,
    report: LabReport,
    note: str,
    actor: Principal,
    now: datetime,
    today: date,
) -> LabReport:
    await _advance(
        repo, report, PickupState.DELIVERED, note=note, actor=actor, now=now, today=today
    )
    report.delivered_at, report.delivered_by, report.delivery_note = now, actor.id, note
    await repo.session.flush()
    return report


async def attach(
    repo: ReportRepository,
    *,
    report: LabReport,
    exam_order_id: uuid.UUID,
    reason: str,
    actor: Principal,
    now: datetime,
    today: date,
    thresholds: Sequence[Threshold],
    ack_within: timedelta,
) -> LabReport:
    """The front desk attaches an unmatched result by hand, saying why."""
    if report.mother_id is not None:
        raise Conflict("This report is already attached to a mother.")
    found = await repo.order(exam_order_id)
    if found is None:
        raise ValidationFailed(
            "exam_order_id: no such exam order",
            errors=[
                FieldError(
                    field="exam_order_id",
                    location="body",
                    pointer="#/exam_order_id",
                    detail="no such exam order",
                )
            ],
        )
    order, visit = found
    report.exam_order_id, report.visit_id, report.mother_id = order.id, visit.id, visit.mother_id
    report.reconciliation_reason = None
    report.reconciled_by = actor.name
    report.updated_at = now
    report.version += 1
    repo.session.add(_event(report, "reconciled", actor=actor.name, at=now, note=reason))
    await repo.session.flush()
    await touch_mother(
        repo.session,
        report.mother_id,
        kind="report.attached",
        now=now,
        today=today,
        ref_type="report",
        ref_id=report.id,
    )
    if report.pickup_state is PickupState.READY:
        report.ready_at, report.reminders_sent = now, 0
        await _announce_ready(repo, report, now=now, today=today, reopened=False)
    observations = await repo.observations(report.id)
    criticals = [o.critical_reason for o in observations if o.critical_reason]
    if criticals and report.status not in domain.WITHDRAWN:
        await _raise_alert(repo, report, criticals, now=now, today=today, ack_within=ack_within)
    await repo.session.flush()
    return report


# Critical-value alerts ---------------------------------------------------------------------


async def acknowledge(
    repo: ReportRepository, *, alert_id: uuid.UUID, actor: Principal, now: datetime, today: date
) -> CriticalAlert:
    alert = await repo.alert(alert_id, for_update=True)
    if alert is None:
        raise NotFound("No alert with that id.")
    if alert.acknowledged_at is not None:
        return alert  # a second tap on the phone changes nothing
    alert.acknowledged_at, alert.acknowledged_by = now, f"{actor.role}:{actor.name}"
    await touch_mother(
        repo.session,
        alert.mother_id,
        kind="alert.acknowledged",
        now=now,
        today=today,
        ref_type="alert",
        ref_id=alert.id,
    )
    report = await repo.report(alert.report_id)
    if report is not None:
        repo.session.add(_event(report, "alert_acknowledged", actor=actor.name, at=now))
    await repo.session.flush()
    return alert


async def escalate_overdue(repo: ReportRepository, *, now: datetime) -> list[CriticalAlert]:
    """Alerts nobody acknowledged in time go to the front-desk lead and the admins."""
    escalated = []
    for alert in await repo.overdue_alerts(now):
        alert.escalated_at = now
        alert.level = 1
        await enqueue(
            repo.session,
            topic="alert.escalated",
            now=now,
            mother_id=alert.mother_id,
            payload={"alert_id": alert.id, "channel": "front_desk_lead"},
        )
        report = await repo.report(alert.report_id)
        if report is not None:
            repo.session.add(
                _event(
                    report,
                    "alert_escalated",
                    actor="system",
                    at=now,
                    note=f"not acknowledged by {alert.due_at.isoformat()}",
                )
            )
        escalated.append(alert)
    await repo.session.flush()
    return escalated


async def remind_overdue_pickups(
    repo: ReportRepository, *, now: datetime, today: date, after: timedelta
) -> list[uuid.UUID]:
    """Final but not picked up: remind the butler after ``after``, the front desk after twice."""
    reminded = []
    for report in await repo.ready_since(now - after):
        due = report.ready_at + after * (report.reminders_sent + 1) if report.ready_at else now
        if report.reminders_sent >= 2 or due > now:
            continue
        report.reminders_sent += 1
        to_desk = report.reminders_sent == 2
        await enqueue(
            repo.session,
            topic="report.pickup_overdue",
            now=now,
            butler_id=None if to_desk else await _butler_for(repo, report, today=today),
            mother_id=report.mother_id,
            payload={"report_id": report.id, "channel": "front_desk" if to_desk else "butler_app"},
        )
        repo.session.add(
            _event(
                report,
                "pickup_reminder",
                actor="system",
                at=now,
                note="front desk told" if to_desk else "butler reminded",
            )
        )
        reminded.append(report.id)
    await repo.session.flush()
    return reminded
