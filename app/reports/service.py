"""Taking results in, attaching them to the right mother (or to reconciliation), and the
pickup lifecycle. Services flush; never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from app.audit.models import AuditEvent
from app.audit.service import audit_row
from app.auth.models import ApiClient, Role
from app.clinical import service as clinical
from app.core.errors import Conflict, Forbidden, NotFound, invalid_field
from app.core.principal import Principal, PrincipalKind
from app.core.settings import Settings
from app.feed.changes import touch_mother
from app.feed.models import Task
from app.mothers.models import Mother
from app.notifications.outbox import enqueue, notify_butler
from app.reports import domain, reconciliation
from app.reports.alerts import LAST_TIER, TIER_AUDIENCE, EscalationPlan, next_step
from app.reports.domain import NO_ORDER_KEY, ParsedReport, PickupState, ReportStatus, Threshold
from app.reports.models import (
    CriticalAlert,
    LabAttachment,
    LabObservation,
    LabReport,
    ReportEvent,
)
from app.reports.repository import ReportRepository
from app.reviews import service as reviews
from app.visits.models import ExamOrder, Visit
from app.worklist import service as worklist


class ReportOnHold(Conflict):
    slug = "report-on-hold"
    title = "The report is on hold: an update names another patient"


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
    await notify_butler(
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
    # The clinical rules that read lab results, and the doctor's review worklist. A critical
    # value is paged by _raise_alert in the same transaction whatever these do: they never
    # hold it back, and a failure in them is contained (each runs in a savepoint).
    await clinical.on_report_ready(repo.session, report, now=now, today=today)
    await reviews.on_report_ready(repo.session, report, now=now, today=today, reopened=reopened)


def identifiers(report: LabReport) -> str:
    """What the message says about whom and which orders, for people who must find her."""
    parts = [f"MRN {report.patient_mrn or 'none'}"]
    if report.patient_birth_date:
        parts.append(f"born {report.patient_birth_date.isoformat()}")
    orders = ", ".join(o for o in (report.placer_order, report.filler_order) if o)
    parts.append(f"order {orders}" if orders else "no order number")
    return "; ".join(parts)


async def _raise_alert(
    repo: ReportRepository,
    report: LabReport,
    reasons: Sequence[str],
    *,
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> None:
    """Page about a critical value. One that matches no mother pages the doctor on duty and
    the front desk at once, with the identifiers the message carries, on the same clock."""
    if await repo.open_alert(report.id) is not None:
        # paging already; follow her
        await _adopt_alert(repo, report, now=now, today=today, ack_within=ack_within)
        return
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
    if report.mother_id is not None:
        await _page_matched(repo, report, alert, now=now)
    else:
        await _page_unmatched(repo, report, alert, now=now)
    repo.session.add(_event(report, "critical_alert", actor="system", at=now, note=alert.reason))


async def _page_matched(
    repo: ReportRepository, report: LabReport, alert: CriticalAlert, *, now: datetime
) -> None:
    """Her butler's phone, and the doctors' list until a clinician acknowledges."""
    await notify_butler(
        repo.session,
        topic="alert.critical",
        now=now,
        butler_id=alert.butler_id,
        mother_id=report.mother_id,
        payload={"alert_id": alert.id, "report_id": report.id, "channel": "butler_app"},
    )
    await worklist.add(
        repo.session,
        audiences=[worklist.DOCTOR],
        kind="alert.critical",
        priority=worklist.CRITICAL,
        title=f"Critical value: {alert.reason}"[:300],
        now=now,
        report_id=report.id,
        alert_id=alert.id,
        mother_id=report.mother_id,
    )


async def _page_unmatched(
    repo: ReportRepository, report: LabReport, alert: CriticalAlert, *, now: datetime
) -> None:
    await worklist.add(
        repo.session,
        audiences=[worklist.DOCTOR, worklist.FRONT_DESK],
        kind="critical.unmatched",
        priority=worklist.CRITICAL,
        title=f"Critical value, no mother matched ({identifiers(report)}): {alert.reason}"[:300],
        now=now,
        report_id=report.id,
        alert_id=alert.id,
    )


def _assess(parsed: ParsedReport, thresholds: Sequence[Threshold]) -> list[domain.Assessment]:
    return [domain.assess(obs, thresholds) for obs in parsed.observations]


async def _store_results(
    repo: ReportRepository,
    report: LabReport,
    parsed: ParsedReport,
    assessments: Sequence[domain.Assessment],
    *,
    message_id: uuid.UUID,
    now: datetime,
) -> None:
    """The observations and attachments of the report, as this message has them."""
    rows, files = [], []
    for seq, (obs, assessment) in enumerate(
        zip(parsed.observations, assessments, strict=True), start=1
    ):
        rows.append(
            LabObservation(
                report_id=report.id,
                seq=seq,
                code=obs.code,
                code_system=obs.code_system,
                display=obs.display,
                value_type=obs.value_type,
                value=obs.value,
                comparator=obs.comparator,
                numeric=obs.numeric,
                unit=obs.unit,
                unit_code=obs.unit_code,
                reference_range=obs.reference_range,
                flag=obs.flag,
                status=obs.status,
                critical_reason=(assessment.critical or None) and assessment.critical[:300],
                review_reason=(assessment.review or None) and assessment.review[:300],
                comments=obs.comments,
            )
        )
        for attachment in obs.attachments:
            files.append(
                LabAttachment(
                    report_id=report.id,
                    observation_seq=seq,
                    kind=attachment.kind,
                    media_type=attachment.media_type,
                    title=attachment.title,
                    size=len(attachment.data) if attachment.data is not None else None,
                    data=attachment.data,
                    pointer=attachment.pointer,
                    message_id=message_id,
                    created_at=now,
                )
            )
    await repo.replace_observations(report.id, rows, files)
    report.critical = any(a.critical for a in assessments)
    report.needs_review = any(a.review for a in assessments)


def _copy_identity(report: LabReport, parsed: ParsedReport) -> None:
    patient = parsed.patient
    report.placer_order, report.filler_order = parsed.placer_order, parsed.filler_order
    report.patient_mrn = parsed.patient_mrn
    report.patient_name = patient.name[:200] if patient and patient.name else None
    report.patient_birth_date = patient.birth_date if patient else None
    report.patient_sex = patient.sex[:10] if patient and patient.sex else None
    report.code, report.display = parsed.code, parsed.display
    report.comments = parsed.comments


async def _names_another_patient(
    repo: ReportRepository, report: LabReport, parsed: ParsedReport
) -> str | None:
    """Why an update for a known report cannot be applied to it, or None when it may.

    The update must name the report's mother (her MRN). A report the desk attached by hand
    may also keep being sent under the identifier the lab used before (the desk decided on
    that one). A report held in reconciliation takes updates naming the same patient only.
    """
    sent = parsed.patient_mrn
    if report.mother_id is None:
        if sent == report.patient_mrn or report.patient_mrn is None:
            return None  # the same patient, or the held one named nobody
        return "the update names another patient than the held report"
    mother = await repo.session.get(Mother, report.mother_id)
    if mother is not None and sent == mother.mrn:
        return None
    if report.reconciled_by is not None and sent is not None and sent == report.patient_mrn:
        return None
    return "the update names another patient than the mother the report belongs to"


async def _hold_conflict(
    repo: ReportRepository,
    existing: LabReport,
    parsed: ParsedReport,
    why: str,
    *,
    sender_id: uuid.UUID,
    message_id: uuid.UUID,
    thresholds: Sequence[Threshold],
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> LabReport:
    """Keep the update beside the report, held for the desk; the report stays as it was,
    but is not picked up or delivered while the conflict is open. Later updates naming the
    same other patient update the same held copy."""
    key = f"{parsed.source_key[:130]}#conflict:{(parsed.patient_mrn or '-')[:60]}"
    held = await repo.report_by_key(sender_id, key)
    if held is not None:
        held.status = parsed.status.status
        held.status_derived, held.status_note = parsed.status.derived, parsed.status.note[:200]
        held.pickup_state = domain.pickup_after_status(
            held.pickup_state, held.status, parsed.status.status
        )
        held.last_message_id, held.updated_at = message_id, now
        held.effective_at, held.issued_at = parsed.effective_at, parsed.issued_at
        held.conclusion = parsed.conclusion
        held.version += 1
        _copy_identity(held, parsed)
        await repo.session.flush()
        assessments = _assess(parsed, thresholds)
        await _store_results(repo, held, parsed, assessments, message_id=message_id, now=now)
        repo.session.add(
            _event(held, "lab_status", actor="lab", at=now, message_id=message_id, note=why)
        )
        if held.status in domain.WITHDRAWN:
            await void_alerts(
                repo,
                held,
                why=f"the lab withdrew the report ({held.status.value})",
                by="lab",
                now=now,
                today=today,
            )
        criticals = [a.critical for a in assessments if a.critical]
        if criticals and held.status not in domain.WITHDRAWN:
            await _raise_alert(repo, held, criticals, now=now, today=today, ack_within=ack_within)
        return held
    held = LabReport(
        sender_id=sender_id,
        source_key=key,
        last_message_id=message_id,
        status=parsed.status.status,
        status_derived=parsed.status.derived,
        status_note=parsed.status.note[:200],
        pickup_state=domain.pickup_after_status(PickupState.NOT_READY, None, parsed.status.status),
        effective_at=parsed.effective_at,
        issued_at=parsed.issued_at,
        conclusion=parsed.conclusion,
        conflict_of=existing.id,
        reconciliation_reason=f"identity conflict: {why}"[:300],
        received_at=now,
        updated_at=now,
        version=1,
    )
    _copy_identity(held, parsed)
    repo.session.add(held)
    await repo.session.flush()
    assessments = _assess(parsed, thresholds)
    await _store_results(repo, held, parsed, assessments, message_id=message_id, now=now)
    repo.session.add(
        _event(held, "lab_identity_conflict", actor="lab", at=now, message_id=message_id, note=why)
    )
    repo.session.add(
        _event(
            existing,
            "lab_identity_conflict",
            actor="lab",
            at=now,
            message_id=message_id,
            note=f"{why}: the update is held for reconciliation; this report is unchanged",
        )
    )
    if existing.mother_id is not None:  # her butler must not hand it over meanwhile
        await touch_mother(
            repo.session,
            existing.mother_id,
            kind="report.on_hold",
            now=now,
            today=today,
            ref_type="report",
            ref_id=existing.id,
        )
    await worklist.add(
        repo.session,
        audiences=[worklist.FRONT_DESK, worklist.DOCTOR],
        kind="report.identity_conflict",
        priority=worklist.CRITICAL if held.critical else worklist.TODAY,
        title=f"Identity conflict: an update names another patient ({identifiers(held)})",
        now=now,
        report_id=held.id,
        mother_id=existing.mother_id,
    )
    criticals = [a.critical for a in assessments if a.critical]
    if criticals and held.status not in domain.WITHDRAWN:
        await _raise_alert(repo, held, criticals, now=now, today=today, ack_within=ack_within)
    return held


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
    left: dict[uuid.UUID, uuid.UUID] = {}  # report -> the mother a later message took it from
    for parsed in reports:
        if NO_ORDER_KEY in parsed.source_key:  # no lab key: this message's own report
            parsed = replace(
                parsed, source_key=parsed.source_key.replace(NO_ORDER_KEY, f"msg:{message_id.hex}")
            )
        order_id, visit_id, mother_id, problem = await _match(repo, parsed)
        report = await repo.report_by_key(sender_id, parsed.source_key)
        new_status = parsed.status.status
        if (
            report is not None
            and mother_id is not None
            and mother_id == report.detached_from_mother_id
        ):
            order_id = visit_id = mother_id = None
            problem = "the desk detached this report from the mother its order names"
        if report is not None:
            conflict = await _names_another_patient(repo, report, parsed)
            if conflict is not None:
                held = await _hold_conflict(
                    repo,
                    report,
                    parsed,
                    conflict,
                    sender_id=sender_id,
                    message_id=message_id,
                    thresholds=thresholds,
                    now=now,
                    today=today,
                    ack_within=ack_within,
                )
                result.reconciliation += 1
                result.reports.append(held.id)
                result.notes.append(f"{parsed.source_key}: identity conflict, held")
                continue
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
                # Not applied, but never unseen: a doctor is told, and a critical value in it
                # pages as any other.
                ignored = _assess(parsed, thresholds)
                criticals = [a.critical for a in ignored if a.critical]
                await worklist.add(
                    repo.session,
                    audiences=[worklist.DOCTOR],
                    kind="report.update_ignored",
                    priority=worklist.CRITICAL if criticals else worklist.TODAY,
                    title=(
                        f"The lab sent a {new_status.value} result after the final one; it was "
                        "not applied: check with the lab"
                        + (f" (critical: {'; '.join(criticals)})" if criticals else "")
                    )[:300],
                    now=now,
                    report_id=report.id,
                    mother_id=report.mother_id,
                    message_id=message_id,
                )
                if criticals:
                    await _raise_alert(
                        repo, report, criticals, now=now, today=today, ack_within=ack_within
                    )
                continue
            report.version += 1
        report.last_message_id = message_id
        if report.mother_id is not None and problem is not None:
            # Hers already, and the update names her (checked above): an update that drops
            # or changes the order number, or one the desk attached by hand, stays with her.
            repo.session.add(
                _event(
                    report,
                    "lab_order_disagrees",
                    actor="lab",
                    at=now,
                    message_id=message_id,
                    note=f"{problem}; kept with her (the update names her)",
                )
            )
            problem = None
            order_id, visit_id, mother_id = report.exam_order_id, report.visit_id, report.mother_id
        previous_mother = report.mother_id
        report.exam_order_id, report.visit_id, report.mother_id = order_id, visit_id, mother_id
        report.reconciliation_reason = problem
        _copy_identity(report, parsed)
        report.status = new_status
        report.status_derived, report.status_note = parsed.status.derived, parsed.status.note
        report.effective_at, report.issued_at = parsed.effective_at, parsed.issued_at
        report.conclusion = parsed.conclusion
        report.updated_at = now
        report.pickup_state = domain.pickup_after_status(
            previous_pickup, previous_status, new_status
        )
        await repo.session.flush()

        assessments = _assess(parsed, thresholds)
        await _store_results(repo, report, parsed, assessments, message_id=message_id, now=now)
        criticals = [a.critical for a in assessments if a.critical]
        if new_status in domain.WITHDRAWN:
            why = f"the lab withdrew the report ({new_status.value})"
            await void_alerts(repo, report, why=why, by="lab", now=now, today=today)
            her = report.mother_id or previous_mother
            if her is not None and previous_status not in domain.WITHDRAWN:
                await _withdraw_from_her(
                    repo,
                    report,
                    mother_id=her,
                    why=why,
                    by="lab",
                    now=now,
                    today=today,
                )
        if previous_mother is not None and previous_mother != report.mother_id:
            # A later message names another patient: what it brought her no longer stands.
            await _withdraw_from_her(
                repo,
                report,
                mother_id=previous_mother,
                why="a later message from the lab names another patient",
                by="lab",
                now=now,
                today=today,
            )
        if previous_mother != report.mother_id and report.version > 1:
            if report.mother_id is not None:
                await worklist.close_about(
                    repo.session,
                    report_id=report.id,
                    kinds=HELD_KINDS,
                    by="lab",
                    note="a later message matched its order and patient",
                    now=now,
                )
            await _adopt_alert(repo, report, now=now, today=today, ack_within=ack_within)
        if previous_mother is not None and previous_mother != report.mother_id:
            left[report.id] = previous_mother
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
        if report.needs_review:
            reviews = "; ".join(a.review for a in assessments if a.review)
            await worklist.add(
                repo.session,
                audiences=[worklist.DOCTOR],
                kind="observation.review",
                title=f"A result could not be assessed against the critical list: {reviews}",
                now=now,
                report_id=report.id,
                mother_id=report.mother_id,
            )
        if problem is not None:
            result.reconciliation += 1
            await worklist.add(
                repo.session,
                audiences=[worklist.FRONT_DESK],
                kind="report.unmatched",
                priority=worklist.CRITICAL if criticals else worklist.TODAY,
                title=f"Result to reconcile: {problem} ({identifiers(report)})",
                now=now,
                report_id=report.id,
            )
        else:
            result.matched += 1
            became_ready = report.pickup_state is PickupState.READY and (
                previous_pickup is not PickupState.READY or previous_status != new_status
            )
            if became_ready:
                report.ready_at, report.reminders_sent = now, 0
                await _announce_ready(
                    repo, report, now=now, today=today, reopened=previous_status in domain.READY
                )
            elif report.status in domain.READY and previous_mother == report.mother_id:
                # Sent again with the same status (a second correction, a resend): the rules
                # read its values again; they keep what still stands, so nothing doubles.
                await clinical.on_report_ready(repo.session, report, now=now, today=today)
        if criticals and new_status not in domain.WITHDRAWN:
            await _raise_alert(repo, report, criticals, now=now, today=today, ack_within=ack_within)
    await repo.session.flush()
    await _audit_intake(repo, sender_id, message_id, result, left, now=now)
    return result


async def _audit_intake(
    repo: ReportRepository,
    sender_id: uuid.UUID,
    message_id: uuid.UUID,
    result: IntakeResult,
    left: dict[uuid.UUID, uuid.UUID],
    *,
    now: datetime,
) -> None:
    """The lab's writes to her record are on her trail like anyone's: one row per report the
    message brought (attached to her, or held for reconciliation: then no mother), and one for
    the mother a later message took a report from. The lab system is the actor; HTTP, MLLP and
    an admin's replay all come through here, in the transaction that stores the reports."""
    client = await repo.session.get(ApiClient, sender_id)
    lab = Principal(
        kind=PrincipalKind.CLIENT,
        id=sender_id,
        name=client.name if client is not None else "lab",
        role=Role.LAB_SYSTEM.value,
    )
    rows = []
    for report_id in dict.fromkeys(result.reports):
        report = await repo.session.get(LabReport, report_id)
        her = report.mother_id if report is not None else None
        detail = {"message_id": str(message_id), "attached": her is not None}
        rows.append(("report.receive", report_id, her, detail))
        if report_id in left:
            rows.append(
                ("report.withdraw", report_id, left[report_id], {"message_id": str(message_id)})
            )
    repo.session.add_all(
        AuditEvent(
            **audit_row(
                lab,
                action,
                "report",
                report_id,
                occurred_at=now,
                request_id=None,
                detail=detail,
                mother_id=her,
            )
        )
        for action, report_id, her, detail in rows
    )


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
    if await repo.open_conflict(report.id) is not None:
        raise ReportOnHold(
            "The lab has sent an update of this report naming another patient; it is on hold "
            "until the front desk resolves it. Do not hand it over."
        )
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


class PatientDisagrees(Conflict):
    slug = "patient-disagrees"
    title = "The result names another patient than this mother"


HELD_KINDS = ("report.unmatched", "report.identity_conflict", "critical.unmatched")
DETACHED_KIND = "report.detached"
NOT_HERS_TASK = (
    "The results you brought her were not hers and were withdrawn: do not act on them; "
    "the doctor will contact her"
)
ALERT_KINDS = ("alert.critical", "critical.unmatched", "alert.escalated")


def sent_identity(report: LabReport) -> reconciliation.SentIdentity:
    return reconciliation.SentIdentity(
        mrn=report.patient_mrn,
        name=report.patient_name,
        birth_date=report.patient_birth_date,
        orders=tuple(o for o in (report.placer_order, report.filler_order) if o),
    )


async def candidates(repo: ReportRepository, report: LabReport) -> list[dict[str, object]]:
    """Mothers (and their open orders) a held result may belong to, ranked and explained."""
    sent = sent_identity(report)
    people = {
        m.id: m
        for m in await repo.mothers_like(mrn=sent.mrn, name=sent.name, birth_date=sent.birth_date)
    }
    for number in sent.orders:
        found = await repo.order_by_number(number)
        if found is not None and found[1].mother_id not in people:
            mother = await repo.session.get(Mother, found[1].mother_id)
            if mother is not None:
                people[mother.id] = mother
    orders = await repo.open_orders(list(people))
    numbers: dict[uuid.UUID, list[tuple[ExamOrder, Visit]]] = {}
    for order, visit in orders:
        numbers.setdefault(visit.mother_id, []).append((order, visit))
    ranked = reconciliation.rank(
        sent,
        [
            reconciliation.Person(
                mother_id=m.id,
                mrn=m.mrn,
                name=m.name,
                birth_date=m.date_of_birth,
                orders=frozenset(o.order_number for o, _ in numbers.get(m.id, [])),
            )
            for m in people.values()
        ],
    )
    return [
        {
            "mother_id": c.mother_id,
            "score": c.score,
            "reasons": c.reasons,
            "disagreements": c.disagreements,
            "open_orders": [
                {
                    "exam_order_id": o.id,
                    "order_number": o.order_number,
                    "exam_code": o.exam_code,
                    "visit_date": v.visit_date,
                    "named_in_message": o.order_number in sent.orders,
                }
                for o, v in numbers.get(c.mother_id, [])
            ],
        }
        for c in ranked
    ]


async def _adopt_alert(
    repo: ReportRepository,
    report: LabReport,
    *,
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> None:
    """An open alert of a report that now has a mother (or lost one) follows it, and whoever
    is paged now gets the whole acknowledgement time (raised_at keeps when it first paged)."""
    alert = await repo.open_alert(report.id, for_update=True)
    if alert is None or alert.mother_id == report.mother_id:
        return
    alert.mother_id = report.mother_id
    alert.butler_id = await _butler_for(repo, report, today=today)
    alert.due_at, alert.escalated_at, alert.level = now + ack_within, None, 0
    if report.mother_id is not None:
        await _page_matched(repo, report, alert, now=now)
    else:
        await worklist.close_about(
            repo.session,
            alert_id=alert.id,
            kinds=("alert.critical",),
            by="system",
            note="the report was detached from her",
            now=now,
        )
        await _page_unmatched(repo, report, alert, now=now)
    await repo.session.flush()


async def attach(
    repo: ReportRepository,
    *,
    report: LabReport,
    exam_order_id: uuid.UUID,
    reason: str,
    override: bool,
    actor: Principal,
    now: datetime,
    today: date,
    thresholds: Sequence[Threshold],
    ack_within: timedelta,
) -> LabReport:
    """The front desk attaches a held result by hand, saying why. The mother must agree with
    what the message says of the patient, or the desk overrides that explicitly."""
    if report.mother_id is not None:
        raise Conflict("This report is already attached to a mother.")
    await repo.open_alert(report.id, for_update=True)  # alert before items, as acknowledge
    found = await repo.order(exam_order_id)
    if found is None:
        raise invalid_field("exam_order_id", "no such exam order")
    order, visit = found
    mother = await repo.session.get(Mother, visit.mother_id)
    assert mother is not None
    ok, why = reconciliation.agrees(
        sent_identity(report),
        reconciliation.Person(mother.id, mother.mrn, mother.name, mother.date_of_birth),
    )
    if not ok and not override:
        raise PatientDisagrees(
            f"Not attached: {why}. Check the patient with the lab; to attach anyway, send "
            "override: true with the reason.",
            extra={"disagreement": why},
        )
    report.exam_order_id, report.visit_id, report.mother_id = order.id, visit.id, visit.mother_id
    report.reconciliation_reason = None
    report.reconciled_by = actor.name
    report.updated_at = now
    report.version += 1
    note = reason if ok else f"OVERRIDE ({why}): {reason}"
    repo.session.add(_event(report, "reconciled", actor=actor.name, at=now, note=note))
    await repo.session.flush()
    await worklist.close_about(
        repo.session,
        report_id=report.id,
        kinds=HELD_KINDS,
        by=f"{actor.role}:{actor.name}",
        note=f"attached to order {order.order_number}",
        now=now,
    )
    # The desk's "reattach it" is done; the doctors' item about what the first mother was
    # told stays until a doctor has dealt with it.
    await worklist.close_about(
        repo.session,
        report_id=report.id,
        kinds=(DETACHED_KIND,),
        by=f"{actor.role}:{actor.name}",
        note=f"reattached to order {order.order_number}",
        now=now,
        audiences=[worklist.FRONT_DESK],
    )
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
    await _adopt_alert(repo, report, now=now, today=today, ack_within=ack_within)
    observations = await repo.observations(report.id)
    criticals = [o.critical_reason for o in observations if o.critical_reason]
    if criticals and report.status not in domain.WITHDRAWN:
        await _raise_alert(repo, report, criticals, now=now, today=today, ack_within=ack_within)
    await repo.session.flush()
    return report


async def detach(
    repo: ReportRepository,
    *,
    report: LabReport,
    reason: str,
    actor: Principal,
    now: datetime,
    today: date,
    ack_within: timedelta,
) -> LabReport:
    """Put a wrongly attached report back in reconciliation, and tell whoever was told. The
    lab's later messages about it never attach it to her again by themselves."""
    if report.mother_id is None:
        raise Conflict("This report is not attached to a mother.")
    await repo.open_alert(report.id, for_update=True)  # alert before items, as acknowledge
    mother_id = report.mother_id
    report.detached_from_mother_id = mother_id
    told = await _butler_for(repo, report, today=today)
    was_with_her = report.pickup_state in (PickupState.PICKED_UP, PickupState.DELIVERED)
    report.exam_order_id = report.visit_id = report.mother_id = None
    report.reconciliation_reason = f"detached by {actor.name}: {reason}"[:300]
    report.reconciled_by = None
    if report.pickup_state is not PickupState.WITHDRAWN:
        report.pickup_state = (
            PickupState.READY if report.status in domain.READY else PickupState.NOT_READY
        )
    report.updated_at = now
    report.version += 1
    repo.session.add(_event(report, "detached", actor=actor.name, at=now, note=reason))
    await repo.session.flush()
    await touch_mother(
        repo.session,
        mother_id,
        kind="report.detached",
        now=now,
        today=today,
        ref_type="report",
        ref_id=report.id,
        also=[told],
    )
    await notify_butler(
        repo.session,
        topic="report.detached",
        now=now,
        butler_id=told,
        mother_id=mother_id,
        payload={"report_id": report.id, "channel": "butler_app"},
    )
    priority = worklist.CRITICAL if was_with_her or report.critical else worklist.TODAY
    await worklist.add(
        repo.session,
        audiences=[worklist.FRONT_DESK],
        kind=DETACHED_KIND,
        priority=priority,
        title=(
            "A report was detached from the mother it had reached: "
            + ("her butler had already brought it to her; " if was_with_her else "")
            + f"reattach it to the right patient ({identifiers(report)})"
        ),
        now=now,
        report_id=report.id,
        mother_id=mother_id,
    )
    if was_with_her:
        await worklist.add(
            repo.session,
            audiences=[worklist.DOCTOR],
            kind=DETACHED_KIND,
            priority=priority,
            title=(
                "A report her butler had already brought her was detached (it was not hers): "
                f"contact her about what she was told ({identifiers(report)})"
            ),
            now=now,
            report_id=report.id,
            mother_id=mother_id,
        )
    # Not hers: what was raised for her is void (her butler's call, the doctors' pages, a
    # closure for the wrong mother), and the real patient's value has reached nobody yet.
    await void_alerts(
        repo,
        report,
        why=f"detached from the mother by {actor.name}: {reason}",
        by=f"{actor.role}:{actor.name}",
        now=now,
        today=today,
        mother_id=mother_id,
    )
    butler_told = await _withdraw_from_her(
        repo,
        report,
        mother_id=mother_id,
        why=f"detached from the mother by {actor.name}: {reason}",
        by=f"{actor.role}:{actor.name}",
        now=now,
        today=today,
    )
    if was_with_her and told is not None and not butler_told:
        # She was handed another woman's results: her butler must not act on them either.
        task = Task(
            mother_id=mother_id,
            butler_id=told,
            title=NOT_HERS_TASK,
            due_at=now,
            created_by_name=actor.name[:100],
            created_at=now,
        )
        repo.session.add(task)
        await repo.session.flush()
        await notify_butler(
            repo.session,
            topic="task.created",
            now=now,
            butler_id=told,
            mother_id=mother_id,
            payload={"task_id": str(task.id)},
        )
    if report.critical and report.status not in domain.WITHDRAWN:
        criticals = [o.critical_reason for o in await repo.observations(report.id)]
        reasons = [r for r in criticals if r] or ["critical value"]
        await _raise_alert(repo, report, reasons, now=now, today=today, ack_within=ack_within)
    await repo.session.flush()
    return report


# Critical-value alerts ---------------------------------------------------------------------


class ClosureNeedsDoctor(Forbidden):
    slug = "critical-value-closed-by-doctor"
    title = "Only a doctor closes a critical value"


class AlertVoided(Conflict):
    slug = "alert-voided"
    title = "The alert was voided"


class NoMotherToContact(Conflict):
    slug = "alert-without-mother"
    title = "The alert is not attached to a mother yet"


CLOSING_ROLES = frozenset({Role.DOCTOR})


def escalation_plan(settings: Settings) -> EscalationPlan:
    return EscalationPlan(
        doctor_on_duty=timedelta(minutes=settings.critical_ack_minutes),
        obstetric_lead=timedelta(minutes=settings.critical_lead_minutes),
    )


async def acknowledge(
    repo: ReportRepository,
    *,
    alert_id: uuid.UUID,
    actor: Principal,
    read_back: str,
    action_taken: str,
    now: datetime,
    today: date,
) -> CriticalAlert:
    """A doctor closes the critical value: what she read back and what was done. Every
    tier's page leaves the lists and her butler's call is no longer asked for."""
    if actor.role not in CLOSING_ROLES:
        raise ClosureNeedsDoctor(
            "A critical value is closed by a doctor, who reads the value back and says what "
            "was done. A butler records that she reached the mother: "
            f"POST /v1/alerts/{alert_id}/mother-contacted."
        )
    alert = await repo.alert(alert_id, for_update=True)
    if alert is None:
        raise NotFound("No alert with that id.")
    if alert.voided_at is not None:
        raise AlertVoided(f"This alert was voided: {alert.void_reason}.")
    if alert.acknowledged_at is not None:
        # A retry (the same doctor, the same words) gets the closure as it stands. Another
        # read-back or action is not dropped in silence: what was recorded stays, and she is
        # told, so that what she did is written where it belongs (a review or note).
        same = (
            alert.acknowledged_by == f"{actor.role}:{actor.name}"
            and alert.read_back == read_back
            and alert.action_taken == action_taken
        )
        if not same:
            raise Conflict(
                f"This critical value was closed already, at {alert.acknowledged_at.isoformat()}"
                " with its own read-back and action; yours was not recorded here. Write what "
                "you did in a review of the report."
            )
        return alert
    alert.acknowledged_at, alert.acknowledged_by = now, f"{actor.role}:{actor.name}"
    alert.read_back, alert.action_taken = read_back, action_taken
    await worklist.close_about(
        repo.session,
        alert_id=alert.id,
        kinds=ALERT_KINDS,
        by=alert.acknowledged_by,
        note=f"critical value closed; read back: {read_back}"[:1000],
        now=now,
    )
    await touch_mother(
        repo.session,
        alert.mother_id,
        kind="alert.acknowledged",
        now=now,
        today=today,
        ref_type="alert",
        ref_id=alert.id,
    )
    report = await repo.report(alert.report_id) if alert.report_id else None
    if report is not None:
        repo.session.add(
            _event(
                report,
                "alert_acknowledged",
                actor=actor.name,
                at=now,
                note=f"read back: {read_back}; action: {action_taken}"[:2000],
            )
        )
    await repo.session.flush()
    return alert


async def record_mother_contacted(
    repo: ReportRepository,
    *,
    alert_id: uuid.UUID,
    actor: Principal,
    note: str,
    now: datetime,
    today: date,
) -> CriticalAlert:
    """Her butler (or anyone who phoned her) reached the mother. On the register with who
    and when; it does not close the critical value nor stop its escalation. The first
    contact is kept: a second tap changes nothing."""
    alert = await repo.alert(alert_id, for_update=True)
    if alert is None:
        raise NotFound("No alert with that id.")
    if alert.voided_at is not None:
        raise AlertVoided(f"This alert was voided: {alert.void_reason}.")
    if alert.mother_id is None:
        raise NoMotherToContact(
            "No mother is matched to this result yet: the front desk must reconcile it first."
        )
    if alert.mother_contacted_at is not None:
        return alert
    alert.mother_contacted_at, alert.mother_contact_note = now, note
    alert.mother_contacted_by = f"{actor.role}:{actor.name}"
    await touch_mother(
        repo.session,
        alert.mother_id,
        kind="alert.mother_contacted",
        now=now,
        today=today,
        ref_type="alert",
        ref_id=alert.id,
    )
    report = await repo.report(alert.report_id) if alert.report_id else None
    if report is not None:
        repo.session.add(
            _event(report, "alert_mother_contacted", actor=actor.name, at=now, note=note)
        )
    await repo.session.flush()
    return alert


async def _withdraw_from_her(
    repo: ReportRepository,
    report: LabReport,
    *,
    mother_id: uuid.UUID,
    why: str,
    by: str,
    now: datetime,
    today: date,
) -> bool:
    """The report was withdrawn or was not hers: what it brought her beyond its alerts no
    longer stands either: the clinical rules' firings (a GDM flag, an anaemia grade, their
    tasks) and a doctor's review of it (its advice and follow-up tasks). True when her
    butler was given a task about it."""
    await clinical.on_report_withdrawn(
        repo.session, report, mother_id=mother_id, why=why, now=now, today=today
    )
    return await reviews.on_report_withdrawn(
        repo.session, report, mother_id=mother_id, why=why, by=by, now=now, today=today
    )


async def void_alerts(
    repo: ReportRepository,
    report: LabReport,
    *,
    why: str,
    by: str,
    now: datetime,
    today: date,
    mother_id: uuid.UUID | None = None,
) -> list[CriticalAlert]:
    """The report was withdrawn or was not hers: its alerts no longer stand. Their pages
    leave every list, her butler's call is withdrawn, and a doctor who had already closed
    one (and acted on it) is told, to review what was done."""
    voided = await repo.unvoided_alerts(report.id, mother_id=mother_id)
    for alert in voided:
        alert.voided_at, alert.voided_by, alert.void_reason = now, by[:100], why[:300]
        await worklist.close_about(
            repo.session,
            alert_id=alert.id,
            kinds=ALERT_KINDS,
            by=by[:100],
            note=f"alert voided: {why}"[:1000],
            now=now,
        )
        if alert.mother_id is not None:
            await touch_mother(
                repo.session,
                alert.mother_id,
                kind="alert.voided",
                now=now,
                today=today,
                ref_type="alert",
                ref_id=alert.id,
                also=[alert.butler_id],
            )
            await notify_butler(
                repo.session,
                topic="alert.voided",
                now=now,
                butler_id=alert.butler_id,
                mother_id=alert.mother_id,
                payload={"alert_id": alert.id, "report_id": report.id, "channel": "butler_app"},
            )
        if alert.acknowledged_at is not None:
            await worklist.add(
                repo.session,
                audiences=[worklist.DOCTOR],
                kind="alert.voided",
                priority=worklist.CRITICAL,
                title=(
                    f"A critical value closed by {alert.acknowledged_by} was voided "
                    + ("(the lab withdrew the report)" if by == "lab" else "(not this mother's)")
                    + ": review the action taken"
                ),
                now=now,
                report_id=report.id,
                alert_id=alert.id,
                mother_id=alert.mother_id,
            )
        repo.session.add(_event(report, "alert_voided", actor=by[:100], at=now, note=why))
    await repo.session.flush()
    return voided


async def escalate_overdue(
    repo: ReportRepository, *, now: datetime, plan: EscalationPlan | None = None
) -> list[CriticalAlert]:
    """One tier up for each open alert whose tier's time ran out: the obstetric lead after
    the doctor on duty, then the duty office. Each step is listed to its tier and recorded
    on the report's trail; a tier is never skipped, however late the run."""
    plan = plan or EscalationPlan()
    escalated = []
    for alert in await repo.overdue_alerts(now, below_tier=LAST_TIER):
        step = next_step(tier=alert.level, due_at=alert.due_at, now=now, plan=plan)
        if step is None:
            continue
        alert.level, alert.due_at, alert.escalated_at = int(step.tier), step.due_at, now
        report = await repo.report(alert.report_id) if alert.report_id else None
        who = (
            ""
            if alert.mother_id
            else f" (no mother matched: {identifiers(report)})"
            if report
            else ""
        )
        minutes = int((step.overdue_since - alert.raised_at).total_seconds() // 60)
        await worklist.add(
            repo.session,
            audiences=[TIER_AUDIENCE[step.tier]],
            kind="alert.escalated",
            priority=worklist.CRITICAL,
            title=(
                f"Critical value not closed by a doctor in {minutes} min, now for "
                f"{step.tier.words}{who}: {alert.reason}"
            )[:300],
            now=now,
            report_id=alert.report_id,
            alert_id=alert.id,
            mother_id=alert.mother_id,
        )
        if report is not None:
            repo.session.add(
                _event(
                    report,
                    "alert_escalated",
                    actor="system",
                    at=now,
                    note=(
                        f"tier {int(step.tier)} ({step.tier.words}): not closed by "
                        f"{step.overdue_since.isoformat()}"
                        + (
                            f"; next tier at {step.due_at.isoformat()}"
                            if step.tier is not LAST_TIER
                            else "; the last tier, until a doctor closes it"
                        )
                    ),
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
        if to_desk:
            await worklist.add(
                repo.session,
                audiences=[worklist.FRONT_DESK],
                kind="report.pickup_overdue",
                title="A final report has not been picked up by her butler",
                now=now,
                report_id=report.id,
                mother_id=report.mother_id,
            )
        else:
            await notify_butler(
                repo.session,
                topic="report.pickup_overdue",
                now=now,
                butler_id=await _butler_for(repo, report, today=today),
                mother_id=report.mother_id,
                payload={"report_id": report.id, "channel": "butler_app"},
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
