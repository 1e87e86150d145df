"""Running the clinical rules on what arrives: a measurement, a final lab report.

Each evaluation runs in a SAVEPOINT: a failure in the rules never loses the reading, the report
or its critical alert; it is logged (ids only) and the doctors get a worklist item saying the
rules could not be evaluated. A finding that still stands after a re-evaluation (an amendment
with the same values, a second reading in the same episode) is kept, not fired again: no
duplicate flags, tasks or alerts. What a correction or an amendment took away is withdrawn
with its effects (flags cleared, worklist items closed, tasks completed as withdrawn, the
alert voided); a suggestion a doctor already confirmed is not withdrawn by the machine: the
doctor is asked to review it instead (the safer way for her).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.careplan.repository import CarePlanRepository
from app.clinical import gwg
from app.clinical import rules as clinical_rules
from app.clinical.models import PregnancyFlag, RuleFiring
from app.clinical.repository import ClinicalRepository
from app.clinical.rules import Finding, FiringState, Rules
from app.core.errors import Conflict, NotFound
from app.core.principal import Principal
from app.core.settings import Settings, get_settings
from app.feed.changes import touch_mother
from app.feed.models import Task
from app.measurements.domain import (
    LabKind,
    MeasurementKind,
    bmi,
    lab_kind,
    lab_value,
    normalise_unit,
)
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from app.mothers import risk
from app.mothers.domain import Risk, RiskDecision, RiskGrade, gestational_age_days
from app.mothers.grading import risk_rules
from app.mothers.models import Mother, Pregnancy
from app.mothers.repository import MotherRepository
from app.notifications.outbox import notify_butler
from app.reports.models import CriticalAlert, LabReport
from app.reports.repository import ReportRepository
from app.visits.repository import VisitRepository
from app.worklist import service as worklist
from app.worklist.models import WorklistItem
from app.worklist.repository import WorklistRepository

logger = logging.getLogger("app.clinical")

SYSTEM = "system"
ALERT_KINDS = ("alert.critical", "critical.unmatched", "alert.escalated")
TASK_DUE = timedelta(days=3)  # a consultation to book: within three days
# Where each effect goes on the worklists: (audience, kind, priority).
FAILED_KIND = "clinical.rules_failed"
RISK_KIND = "clinical.risk_suggestion"
# The readings whose value alone may be an emergency: a failed evaluation of one is critical.
SEVERE_READINGS = {
    MeasurementKind.BLOOD_PRESSURE: "blood pressure",
    MeasurementKind.FETAL_HEART_RATE: "fetal heart rate",
    MeasurementKind.NST: "NST",
}


class FiringDecided(Conflict):
    slug = "firing-already-decided"
    title = "The firing is not awaiting a decision"


def rules_in_force(settings: Settings | None = None) -> Rules:
    """CLINICAL_RULES_FILE, or the built-in rules (checked when loaded: a bad file fails)."""
    return clinical_rules.rules((settings or get_settings()).clinical_rules_file)


def gwg_table_in_force(settings: Settings | None = None) -> gwg.GwgTable:
    settings = settings or get_settings()
    return gwg.table(settings.gwg_table, path=settings.gwg_tables_file)


def check_rules(settings: Settings) -> None:
    """Load and check every table at start: a file that does not hold together stops it."""
    rules_in_force(settings)
    gwg_table_in_force(settings)


def _today(now: datetime) -> date:
    return now.astimezone(get_settings().tz).date()


# Weight gain, read ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GainPoint:
    measurement_id: uuid.UUID
    measured_at: datetime
    ga_days: int
    weight_kg: float
    gain_kg: float
    low_kg: float
    high_kg: float
    status: gwg.GwgStatus


@dataclass(frozen=True, slots=True)
class WeightPoint:
    """A weight reading with no band to read it against (twins, no BMI)."""

    measurement_id: uuid.UUID
    measured_at: datetime
    ga_days: int
    weight_kg: float
    gain_kg: float | None  # None without her pre-pregnancy weight


@dataclass(frozen=True, slots=True)
class WeightGain:
    """Her weight gain against the table in force, or why it cannot be given."""

    table_code: str
    table_name: str
    height_cm: float | None
    pre_pregnancy_weight_kg: float | None
    bmi: float | None
    group_code: str | None
    group_label: str | None
    targets: gwg.Targets | None
    readings: list[GainPoint] = field(default_factory=list)
    not_covered: str | None = None
    # Not covered (twins, no BMI): her readings all the same, weight and gain, no band.
    unbanded: list[WeightPoint] = field(default_factory=list)

    @property
    def gain_kg(self) -> float | None:
        return self.readings[-1].gain_kg if self.readings else None

    @property
    def status(self) -> str | None:
        return self.readings[-1].status.value if self.readings else None


async def weight_gain(
    session: AsyncSession, pregnancy: Pregnancy, settings: Settings | None = None
) -> WeightGain:
    """Each current weight reading with its GA, gain, the band for that day and its status;
    when no band applies (twins, no BMI) her readings all the same, in ``unbanded``."""
    table = gwg_table_in_force(settings)
    repo = MeasurementRepository(session)
    base = await repo.baseline(pregnancy.id)
    empty = WeightGain(
        table_code=table.code,
        table_name=f"{table.name_zh} ({table.code})",
        height_cm=base.height_cm,
        pre_pregnancy_weight_kg=base.pre_pregnancy_weight_kg,
        bmi=None,
        group_code=None,
        group_label=None,
        targets=None,
    )
    weights = await repo.current(pregnancy.id, [MeasurementKind.WEIGHT])
    pre = base.pre_pregnancy_weight_kg
    unbanded = [
        WeightPoint(
            measurement_id=m.id,
            measured_at=m.measured_at,
            ga_days=m.ga_days,
            weight_kg=m.value,
            gain_kg=None if pre is None else round(m.value - pre, 2),
        )
        for m in weights
        if m.ga_days is not None
    ]
    if base.height_cm is None or base.pre_pregnancy_weight_kg is None:
        return _replace(
            empty,
            not_covered="height and pre-pregnancy weight are needed for BMI",
            unbanded=unbanded,
        )
    her_bmi = bmi(base.height_cm, base.pre_pregnancy_weight_kg)
    twins = await CarePlanRepository(session).twins(pregnancy.id)
    try:
        group = gwg.group(table, her_bmi, fetuses=2 if twins else 1)
    except gwg.NotCovered as exc:
        return _replace(empty, bmi=her_bmi, not_covered=exc.reason, unbanded=unbanded)
    points = []
    for m in weights:
        if m.ga_days is None:
            continue
        gain = m.value - base.pre_pregnancy_weight_kg
        band = gwg.band(table, group, m.ga_days)
        points.append(
            GainPoint(
                measurement_id=m.id,
                measured_at=m.measured_at,
                ga_days=m.ga_days,
                weight_kg=m.value,
                gain_kg=round(gain, 2),
                low_kg=round(band.low_kg, 2),
                high_kg=round(band.high_kg, 2),
                status=gwg.status(gain, band),
            )
        )
    return WeightGain(
        table_code=table.code,
        table_name=empty.table_name,
        height_cm=base.height_cm,
        pre_pregnancy_weight_kg=base.pre_pregnancy_weight_kg,
        bmi=her_bmi,
        group_code=group.code,
        group_label=f"{group.label_zh} {group.label_en} ({group.bmi_range})",
        targets=gwg.targets(table, group),
        readings=points,
    )


def _replace(wg: WeightGain, **changes: Any) -> WeightGain:
    return replace(wg, **changes)


async def open_flags(session: AsyncSession, pregnancy_id: uuid.UUID) -> list[PregnancyFlag]:
    """The flags that stand on her pregnancy (gdm, glucose_monitoring, anaemia with grade …)."""
    return await ClinicalRepository(session).open_flags(pregnancy_id)


# The hooks ----------------------------------------------------------------------------------


async def _contained(
    session: AsyncSession,
    *,
    what: str,
    ref: uuid.UUID,
    mother_id: uuid.UUID | None,
    now: datetime,
    run: Any,
    reading: str | None = None,
) -> None:
    """Run ``run`` in a savepoint; a failure is logged (ids only) and put on the doctors' list.
    ``reading``: a reading whose value may be severe (blood pressure, fetal heart rate, NST):
    a failure then hides what could be a critical value, so the item is CRITICAL and says to
    check the reading now (the safer reading: a failed evaluation is treated as a possible
    severe value, not as a routine review)."""
    try:
        async with session.begin_nested():
            await run()
    except Exception as exc:  # the reading or the report must not be lost with the rules
        logger.error(
            "clinical rules could not be evaluated",
            extra={"event": "clinical_rules_failed", what: str(ref), "error": type(exc).__name__},
        )
        await worklist.add(
            session,
            audiences=[worklist.DOCTOR],
            kind=FAILED_KIND,
            priority=worklist.CRITICAL if reading else worklist.TODAY,
            title=(
                f"Clinical rules could not be evaluated for a new {reading} reading: "
                "check the reading now (it may be severe)"
                if reading
                else f"Clinical rules could not be evaluated for a new {what}: review it yourself"
            ),
            now=now,
            mother_id=mother_id,
            report_id=ref if what == "report" else None,
        )


async def on_measurement(
    session: AsyncSession, *, measurement_id: uuid.UUID, now: datetime
) -> None:
    """A measurement was recorded or corrected: run the rules that read it."""
    m = await MeasurementRepository(session).get(measurement_id)
    if m is None or m.superseded_at is not None:
        return
    mother_id = m.mother_id
    reading = SEVERE_READINGS.get(m.kind)

    async def run() -> None:
        await _evaluate_measurement(session, m, now=now)

    await _contained(
        session,
        what="measurement",
        ref=measurement_id,
        mother_id=mother_id,
        now=now,
        run=run,
        reading=reading,
    )


async def on_report_ready(
    session: AsyncSession, report: LabReport, *, now: datetime, today: date
) -> None:
    """A matched report became final (or was corrected): run the rules that read lab results."""
    if report.mother_id is None:
        return
    report_id, mother_id = report.id, report.mother_id

    async def run() -> None:
        await _evaluate_report(session, report, now=now, today=today)

    await _contained(session, what="report", ref=report_id, mother_id=mother_id, now=now, run=run)


async def on_report_withdrawn(
    session: AsyncSession,
    report: LabReport,
    *,
    mother_id: uuid.UUID,
    why: str,
    now: datetime,
    today: date,
) -> None:
    """The lab cancelled the report, or the desk detached it from her: what it fired for her
    (flags, tasks, items, an alert) is withdrawn, as an amendment to normal values would. Not
    contained: a withdrawn result must not keep a diagnosis on the wrong mother."""
    ctx = await _her_context(session, mother_id, now=now, today=today)
    if ctx is None:
        return
    await _reconcile(ctx, [], kinds=("glucose", "haemoglobin"), report=report, why=why)


# Evaluation ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    session: AsyncSession
    rules: Rules
    mother: Mother
    pregnancy: Pregnancy
    now: datetime
    today: date
    live: list[RuleFiring]


def _bp(m: Measurement) -> clinical_rules.BpReading:
    return clinical_rules.BpReading(
        id=str(m.id),
        systolic=m.value,
        diastolic=float(m.value2 or 0),
        measured_at=m.measured_at,
        ga_days=m.ga_days,
    )


async def _her_context(
    session: AsyncSession, mother_id: uuid.UUID, *, now: datetime, today: date
) -> _Context | None:
    """The rules in force and her live firings, for her active pregnancy (None: none)."""
    mother = await session.get(Mother, mother_id)
    pregnancy = await MotherRepository(session).active_pregnancy(mother_id)
    if mother is None or pregnancy is None:
        return None
    return _Context(
        session=session,
        rules=rules_in_force(),
        mother=mother,
        pregnancy=pregnancy,
        now=now,
        today=today,
        live=await ClinicalRepository(session).live_firings(pregnancy.id),
    )


async def _evaluate_measurement(session: AsyncSession, m: Measurement, *, now: datetime) -> None:
    pregnancy = await session.get(Pregnancy, m.pregnancy_id)
    mother = await session.get(Mother, m.mother_id)
    if pregnancy is None or mother is None:
        return
    ctx = _Context(
        session=session,
        rules=rules_in_force(),
        mother=mother,
        pregnancy=pregnancy,
        now=now,
        today=_today(now),
        live=await ClinicalRepository(session).live_firings(pregnancy.id),
    )
    replaced = {str(m.corrects_id)} if m.corrects_id else set()
    mine = {str(m.id)} | replaced
    repo = MeasurementRepository(session)
    if m.kind is MeasurementKind.BLOOD_PRESSURE:
        await _reconcile(
            ctx,
            _at_home(clinical_rules.evaluate_bp_single(ctx.rules, _bp(m)), [m]),
            kinds=("bp_single",),
            scope=mine,
            replaced=replaced,
            measurement=m,
        )
        readings = await repo.current(pregnancy.id, [MeasurementKind.BLOOD_PRESSURE])
        readings = await _not_dismissed(ctx, readings)
        await _reconcile(
            ctx,
            _at_home(
                clinical_rules.evaluate_bp_repeat(ctx.rules, [_bp(r) for r in readings]), readings
            ),
            kinds=("bp_repeat",),
            scope=None,
            replaced=replaced,
            measurement=m,
        )
    elif m.kind is MeasurementKind.FETAL_HEART_RATE:
        found = _at_home(
            clinical_rules.evaluate_fhr(
                ctx.rules, m.value, measurement_id=str(m.id), ga_days=m.ga_days
            ),
            [m],
        )
        await _reconcile(
            ctx,
            found,
            kinds=("fetal_heart_rate",),
            scope=mine,
            replaced=replaced,
            measurement=m,
        )
    elif m.kind is MeasurementKind.NST and m.result:
        found = _at_home(
            clinical_rules.evaluate_nst(
                ctx.rules, m.result, measurement_id=str(m.id), ga_days=m.ga_days
            ),
            [m],
        )
        await _reconcile(ctx, found, kinds=("nst",), scope=mine, replaced=replaced, measurement=m)
    elif m.kind in (
        MeasurementKind.WEIGHT,
        MeasurementKind.HEIGHT,
        MeasurementKind.PRE_PREGNANCY_WEIGHT,
    ):
        await _evaluate_weight_gain(ctx, replaced=replaced, measurement=m)


AT_HOME = "reported by the mother at home (a butler entered it), not a clinic measurement"


def _at_home(found: list[Finding], readings: Sequence[Measurement]) -> list[Finding]:
    """A finding that read a reading she reported at home says so, in its explanation and its
    inputs, so the doctor knows it was not measured at the clinic."""
    home = {str(r.id) for r in readings if r.reported_by_mother}
    out = []
    for f in found:
        ids = [i for i in f.measurement_ids if i in home]
        if not ids:
            out.append(f)
            continue
        inputs = {**f.inputs, "reported_by_mother": True, "reported_by_mother_ids": ids}
        out.append(replace(f, explanation=f"{f.explanation} [{AT_HOME}]", inputs=inputs))
    return out


async def _not_dismissed(ctx: _Context, readings: Sequence[Measurement]) -> list[Measurement]:
    """The readings a dismissed suggestion did not read. A doctor who dismissed gestational
    hypertension judged the readings up to the latest one it read: those (and any before
    them) never suggest it again; a new suggestion needs new qualifying readings after them.
    A severe reading still fires its own alert whatever was dismissed (bp.severe)."""
    rule_ids = [r.id for r in ctx.rules.of_kind("bp_repeat")]
    cutoff: datetime | None = None
    for firing in await ClinicalRepository(ctx.session).dismissed_firings(
        ctx.pregnancy.id, rule_ids
    ):
        for read in firing.inputs.get("readings", []):
            at = datetime.fromisoformat(str(read["measured_at"]))
            if at.tzinfo is None:
                at = at.replace(tzinfo=ctx.now.tzinfo)
            cutoff = at if cutoff is None or at > cutoff else cutoff
    if cutoff is None:
        return list(readings)
    return [r for r in readings if _aware(r.measured_at, ctx.now) > cutoff]


def _aware(at: datetime, like: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=like.tzinfo)


async def _evaluate_weight_gain(
    ctx: _Context, *, replaced: set[str], measurement: Measurement
) -> None:
    wg = await weight_gain(ctx.session, ctx.pregnancy)
    readings = [
        clinical_rules.GainReading(
            id=str(p.measurement_id),
            ga_days=p.ga_days,
            gain_kg=p.gain_kg,
            low_kg=p.low_kg,
            high_kg=p.high_kg,
            status=p.status,
        )
        for p in wg.readings
    ]
    weights = await MeasurementRepository(ctx.session).current(
        ctx.pregnancy.id, [MeasurementKind.WEIGHT]
    )
    found = _at_home(
        clinical_rules.evaluate_weight_gain(ctx.rules, readings, table_code=wg.table_code),
        weights,
    )
    baseline_changed = measurement.kind is not MeasurementKind.WEIGHT and bool(replaced)
    await _reconcile(
        ctx,
        found,
        kinds=("weight_gain",),
        scope=None,
        replaced=replaced,
        measurement=measurement,
        withdraw_all=baseline_changed,
    )
    if readings and readings[-1].status is gwg.GwgStatus.WITHIN:
        await _end_gain_episode(ctx, readings[-1])


async def _end_gain_episode(ctx: _Context, within: clinical_rules.GainReading) -> None:
    """Back within her band: the episode ends, its flag and its firing with it, so two more
    readings outside refer her again (a live firing would match the new finding and keep it
    silent). The firing is ended as ``withdrawn`` with the reason (the states a firing has
    need no migration): its referral is not undone, the nutritionist's item and the butler's
    task stand (she was referred; the safer reading is to let the nutritionist see her)."""
    at = clinical_rules.ga_text(within.ga_days)
    why = f"episode ended: weight gain back within the band at {at}"
    flag = await ClinicalRepository(ctx.session).open_flag(ctx.pregnancy.id, "gwg_outside")
    if flag is not None:
        _clear(flag, by=SYSTEM, why="weight gain back within the band", now=ctx.now)
    rule_ids = {r.id for r in ctx.rules.of_kind("weight_gain")}
    for firing in [f for f in ctx.live if f.rule_id in rule_ids]:
        if firing.state is not FiringState.RECORDED:
            continue
        firing.state = FiringState.WITHDRAWN
        firing.decided_at, firing.decided_by_name, firing.decided_by_role = ctx.now, SYSTEM, SYSTEM
        firing.decision_note = why[:1000]
    ctx.live[:] = [f for f in ctx.live if f.state in clinical_rules.LIVE_STATES]
    await ctx.session.flush()


MG_DL = frozenset({"mg/dl", "mg/100ml"})  # normalised spellings of a glucose sent in mg/dL


def _report_values(
    observations: Sequence[Any],
) -> tuple[dict[str, float], list[float], dict[str, float]]:
    """Her glucose (fasting / 1 h / 2 h, mmol/L) and haemoglobin (g/L) values, by the
    timeline's code map (measurements.domain.lab_kind), converted and never rounded (5.09 is
    not 5.1); and the glucose values sent in mg/dL as sent, which the rules compare with their
    mg/dL thresholds. A value with a comparator ('<', '>') or a unit the map does not list is
    not guessed at."""
    glucose: dict[str, float] = {}
    haemoglobin: list[float] = []
    mg_dl: dict[str, float] = {}
    for o in observations:
        if o.numeric is None or o.comparator:
            continue
        kind = lab_kind(o.code, o.display)
        if kind is None:
            continue
        value = lab_value(kind, o.numeric, o.unit, rounded=False)
        if value is None:
            continue
        if kind is LabKind.HAEMOGLOBIN:
            haemoglobin.append(value)
        elif kind in (LabKind.GLUCOSE_FASTING, LabKind.OGTT_1H, LabKind.OGTT_2H):
            glucose[kind.value] = value
            if normalise_unit(o.unit or "") in MG_DL:
                mg_dl[kind.value] = float(o.numeric)
            else:
                mg_dl.pop(kind.value, None)
    return glucose, haemoglobin, mg_dl


async def _evaluate_report(
    session: AsyncSession, report: LabReport, *, now: datetime, today: date
) -> None:
    assert report.mother_id is not None
    ctx = await _her_context(session, report.mother_id, now=now, today=today)
    if ctx is None:
        return
    pregnancy = ctx.pregnancy
    taken = report.effective_at or report.issued_at or report.received_at
    ga_days = gestational_age_days(pregnancy.edd_date, taken.astimezone(get_settings().tz).date())
    observations = await ReportRepository(session).observations(report.id)
    glucose, haemoglobin, mg_dl = _report_values(observations)
    found: list[Finding] = []
    if glucose:
        found += clinical_rules.evaluate_glucose(ctx.rules, glucose, ga_days=ga_days, mg_dl=mg_dl)
    if haemoglobin:
        found += clinical_rules.evaluate_haemoglobin(ctx.rules, min(haemoglobin), ga_days=ga_days)
    await _reconcile(ctx, found, kinds=("glucose", "haemoglobin"), report=report)


# Firing, keeping, withdrawing ---------------------------------------------------------------


def _ids_of(firing: RuleFiring) -> set[str]:
    ids = set(firing.inputs.get("measurement_ids", []))
    if firing.measurement_id is not None:
        ids.add(str(firing.measurement_id))
    return ids


async def _reconcile(
    ctx: _Context,
    found: Sequence[Finding],
    *,
    kinds: Sequence[str],
    scope: set[str] | None = None,
    replaced: set[str] | None = None,
    measurement: Measurement | None = None,
    report: LabReport | None = None,
    withdraw_all: bool = False,
    why: str | None = None,
) -> None:
    """Fire what is new, keep what still stands, withdraw what its source no longer shows.

    ``scope``: the measurement ids whose single-reading firings this evaluation speaks for
    (None: every live firing of the rules of these kinds, which read all her readings).
    """
    replaced = replaced or set()
    rule_ids = {r.id for k in kinds for r in ctx.rules.of_kind(k)}
    candidates = [
        f
        for f in ctx.live
        if f.rule_id in rule_ids
        and not f.outcome.startswith("risk:")
        and (report is None or f.report_id == report.id)
        and (report is not None or f.report_id is None)
        and (scope is None or _ids_of(f) & scope)
    ]
    matched: set[uuid.UUID] = set()
    for finding in found:
        same = next(
            (
                f
                for f in candidates
                if (f.rule_id, f.outcome) == finding.key
                and f.id not in matched
                and (finding.grade is None or f.grade == finding.grade)
            ),
            None,
        )
        if same is not None:
            matched.add(same.id)
            if _ids_of(same) & replaced:  # re-point to what replaced it
                _refresh(same, finding, measurement)
            continue
        await _fire(ctx, finding, measurement=measurement, report=report)
    for firing in candidates:
        if firing.id in matched:
            continue
        touched = report is not None or bool(_ids_of(firing) & replaced) or withdraw_all
        if touched:
            reason = why or (
                f"report {report.status.value}, version {report.version}: the rule no longer fires"
                if report is not None
                else "a reading behind it was corrected: the rule no longer fires"
            )
            await _withdraw(ctx, firing, why=reason)
    await ctx.session.flush()


def _refresh(firing: RuleFiring, finding: Finding, measurement: Measurement | None) -> None:
    firing.inputs = {**finding.inputs, "measurement_ids": list(finding.measurement_ids)}
    firing.explanation = finding.explanation[:1000]
    if measurement is not None and firing.measurement_id is not None:
        firing.measurement_id = uuid.UUID(finding.measurement_ids[-1])


async def _fire(
    ctx: _Context,
    finding: Finding,
    *,
    measurement: Measurement | None,
    report: LabReport | None,
) -> RuleFiring:
    rule = finding.rule
    subject_id = (
        uuid.UUID(finding.measurement_ids[-1])
        if finding.measurement_ids
        else (measurement.id if measurement is not None and report is None else None)
    )
    firing = RuleFiring(
        pregnancy_id=ctx.pregnancy.id,
        mother_id=ctx.mother.id,
        rule_id=rule.id,
        rules_version=ctx.rules.version,
        inputs={**finding.inputs, "measurement_ids": list(finding.measurement_ids)},
        outcome=finding.outcome,
        grade=finding.grade,
        explanation=finding.explanation[:1000],
        measurement_id=subject_id if report is None else None,
        report_id=report.id if report is not None else None,
        fired_at=ctx.now,
        state=rule.state,
    )
    ctx.session.add(firing)
    await ctx.session.flush()
    ctx.live.append(firing)
    effects: dict[str, Any] = {}
    new_flags = []
    worse = False  # a later result grades her worse (anaemia mild → moderate): the doctor is told
    for code in rule.flags:
        flag = await ClinicalRepository(ctx.session).open_flag(ctx.pregnancy.id, code)
        if flag is None:
            ctx.session.add(
                PregnancyFlag(
                    pregnancy_id=ctx.pregnancy.id,
                    code=code,
                    grade=finding.grade,
                    suggested=rule.state is FiringState.SUGGESTED,
                    firing_id=firing.id,
                    raised_at=ctx.now,
                )
            )
            new_flags.append(code)
        elif finding.grade is not None and flag.grade != finding.grade:
            if clinical_rules.worse_grade(rule, finding.grade, flag.grade):
                worse = True
            flag.grade, flag.firing_id = finding.grade, firing.id  # her latest result grades it
    first_time = bool(new_flags) or not rule.flags
    title = rule.title
    if "nutritionist_consultation" in rule.effects and first_time:
        effects |= await _nutritionist(
            ctx, kind="clinical.nutrition_consult", title=f"Nutritionist consultation: {title}"
        )
    if "nutritionist_referral" in rule.effects and first_time:
        effects |= await _nutritionist(
            ctx, kind="clinical.gwg_referral", title=f"Nutritionist referral: {title}"
        )
    if finding.doctor_alert or ("doctor_alert" in rule.effects and (first_time or worse)):
        items = await worklist.add(
            ctx.session,
            audiences=[worklist.DOCTOR],
            kind=f"clinical.{rule.id}"[:40],
            priority=(
                finding.priority
                if finding.priority is not None
                else int(rule.params.get("doctor_priority", worklist.TODAY))
            ),
            title=(
                ("Confirm or dismiss: " if rule.state is FiringState.SUGGESTED else "")
                + finding.explanation
            )[:300],
            now=ctx.now,
            mother_id=ctx.mother.id,
            report_id=report.id if report is not None else None,
        )
        effects["worklist_ids"] = effects.get("worklist_ids", []) + [str(i.id) for i in items]
    if "critical_alert" in rule.effects and measurement is not None:
        alert_id = await _critical_alert(ctx, finding, measurement)
        if alert_id is not None:
            effects["alert_id"] = str(alert_id)
    firing.inputs = {**firing.inputs, "effects": effects}
    if clinical_rules.suggests_higher(finding, ctx.pregnancy.risk_grade.value) and (
        first_time or _worse_than_suggested(ctx, finding)
    ):
        await _suggest_risk(ctx, firing, finding)
    await touch_mother(
        ctx.session,
        ctx.mother.id,
        kind="clinical.rule_fired",
        now=ctx.now,
        today=ctx.today,
        ref_type="mother",
        ref_id=ctx.mother.id,
    )
    return firing


BUTLER_BOOKING_TITLE = "Book her nutritionist appointment"


async def _nutritionist(ctx: _Context, *, kind: str, title: str) -> dict[str, Any]:
    """A nutritionist worklist item and a butler task to book it (once while it stands).

    The butler's task names no condition (her phone shows tasks; SPEC): the diagnosis stays
    in ``title``, on the nutritionist's worklist item."""
    task = Task(
        mother_id=ctx.mother.id,
        butler_id=ctx.mother.primary_butler_id,
        title=BUTLER_BOOKING_TITLE,
        due_at=ctx.now + TASK_DUE,
        created_by_name=SYSTEM,
        created_at=ctx.now,
    )
    ctx.session.add(task)
    await ctx.session.flush()
    items = await worklist.add(
        ctx.session,
        audiences=[worklist.NUTRITIONIST],
        kind=kind,
        title=title,
        now=ctx.now,
        mother_id=ctx.mother.id,
        task_id=task.id,
    )
    await notify_butler(
        ctx.session,
        topic="task.created",
        now=ctx.now,
        butler_id=task.butler_id,
        mother_id=ctx.mother.id,
        payload={"task_id": str(task.id)},
    )
    return {"task_id": str(task.id), "worklist_ids": [str(i.id) for i in items]}


async def _butler_at_her_side(ctx: _Context, measurement: Measurement) -> uuid.UUID | None:
    """Who is paged about her reading: the butler accompanying her today (a cover when her
    primary butler is off), as a lab value's alert (reports.service._butler_for): the
    reading's visit if it is today's, else her visit today; otherwise her primary butler."""
    visits = VisitRepository(ctx.session)
    visit = await visits.visit(measurement.visit_id) if measurement.visit_id else None
    if visit is None or visit.visit_date != ctx.today:
        visit = await visits.active_visit_on(ctx.mother.id, ctx.today)
    if visit is not None and visit.visit_date == ctx.today and visit.accompanying_butler_id:
        return visit.accompanying_butler_id
    return ctx.mother.primary_butler_id


async def _critical_alert(
    ctx: _Context, finding: Finding, measurement: Measurement
) -> uuid.UUID | None:
    """The same alert as a critical lab value: the same tiers, closure, register and pages."""
    reports = ReportRepository(ctx.session)
    if await reports.open_measurement_alert(measurement.id) is not None:
        return None
    alert = CriticalAlert(
        measurement_id=measurement.id,
        mother_id=ctx.mother.id,
        butler_id=await _butler_at_her_side(ctx, measurement),
        reason=(finding.alert_reason or finding.explanation)[:500],
        raised_at=ctx.now,
        due_at=ctx.now + timedelta(minutes=get_settings().critical_ack_minutes),
        level=0,
    )
    ctx.session.add(alert)
    await ctx.session.flush()
    await notify_butler(
        ctx.session,
        topic="alert.critical",
        now=ctx.now,
        butler_id=alert.butler_id,
        mother_id=ctx.mother.id,
        payload={"alert_id": alert.id, "measurement_id": measurement.id, "channel": "butler_app"},
    )
    await worklist.add(
        ctx.session,
        audiences=[worklist.DOCTOR],
        kind="alert.critical",
        priority=worklist.CRITICAL,
        title=f"Critical value: {finding.explanation}"[:300],
        now=ctx.now,
        alert_id=alert.id,
        mother_id=ctx.mother.id,
        visit_id=measurement.visit_id,
    )
    return alert.id


def _worse_than_suggested(ctx: _Context, finding: Finding) -> bool:
    """A later result whose grade carries a higher colour (Hb 55 after Hb 105: orange, not
    yellow) suggests it, once while that suggestion stands or was confirmed."""
    grade = finding.suggested_grade
    if finding.risk_grade is None or grade is None:
        return False
    return not any(
        f.rule_id == finding.rule.id
        and f.suggested_grade is not None
        and clinical_rules.rank(f.suggested_grade) >= clinical_rules.rank(grade)
        for f in ctx.live
    )


async def _suggest_risk(ctx: _Context, firing: RuleFiring, finding: Finding) -> None:
    grade = finding.suggested_grade
    assert grade is not None
    suggestion = RuleFiring(
        pregnancy_id=ctx.pregnancy.id,
        mother_id=ctx.mother.id,
        rule_id=finding.rule.id,
        rules_version=ctx.rules.version,
        inputs={
            "for_firing": str(firing.id),
            "current_grade": ctx.pregnancy.risk_grade.value,
            "measurement_ids": list(finding.measurement_ids),
        },
        outcome=f"risk:{grade}",
        explanation=(
            f"Suggests risk grade {grade} (now {ctx.pregnancy.risk_grade.value}): "
            f"{finding.explanation}; {finding.suggested_source or ''}"
        )[:1000],
        measurement_id=firing.measurement_id,
        report_id=firing.report_id,
        suggested_grade=grade,
        fired_at=ctx.now,
        state=FiringState.SUGGESTED,
    )
    ctx.session.add(suggestion)
    await ctx.session.flush()
    ctx.live.append(suggestion)
    await worklist.add(
        ctx.session,
        audiences=[worklist.DOCTOR],
        kind=RISK_KIND,
        title=(
            f"Risk grade {grade} suggested by rule {finding.rule.id}: confirm at "
            f"POST /v1/rule-firings/{suggestion.id}/decision"
        ),
        now=ctx.now,
        mother_id=ctx.mother.id,
    )


def _clear(flag: PregnancyFlag, *, by: str, why: str, now: datetime) -> None:
    flag.cleared_at, flag.cleared_by, flag.clear_reason = now, by[:100], why[:300]


async def _close_items(
    session: AsyncSession, ids: Sequence[str], *, by: str, note: str, now: datetime
) -> None:
    for item_id in ids:
        item = await session.get(WorklistItem, uuid.UUID(item_id))
        if item is not None:
            await worklist.acknowledge(session, item, by=by, note=note[:1000], now=now)


async def _withdraw(ctx: _Context, firing: RuleFiring, *, why: str) -> None:
    """Undo what the firing did; a doctor's confirmed decision goes back to the doctor."""
    session = ctx.session
    if firing.state is FiringState.CONFIRMED:
        await worklist.add(
            session,
            audiences=[worklist.DOCTOR],
            kind="clinical.review_confirmed",
            title=f"You confirmed rule {firing.rule_id}, but {why}: review your decision",
            now=ctx.now,
            mother_id=firing.mother_id,
        )
        return
    firing.state = FiringState.WITHDRAWN
    firing.decided_at, firing.decided_by_name, firing.decided_by_role = ctx.now, SYSTEM, SYSTEM
    firing.decision_note = why[:1000]
    repo = ClinicalRepository(session)
    for flag in await repo.flags_of_firing(firing.id):
        other = next(
            (
                f
                for f in ctx.live
                if f.id != firing.id
                and f.rule_id == firing.rule_id
                and f.outcome == firing.outcome
                and f.state in clinical_rules.LIVE_STATES
            ),
            None,
        )
        if other is not None:
            flag.firing_id, flag.grade = other.id, other.grade  # another result still shows it
        else:
            _clear(flag, by=SYSTEM, why=f"withdrawn: {why}", now=ctx.now)
    effects = firing.inputs.get("effects", {})
    # An item a firing that still stands also points to (the same report regraded) stays open.
    shared = {
        i
        for f in ctx.live
        if f.id != firing.id and f.state in clinical_rules.LIVE_STATES
        for i in f.inputs.get("effects", {}).get("worklist_ids", [])
    }
    await _close_items(
        session,
        [i for i in effects.get("worklist_ids", []) if i not in shared],
        by=SYSTEM,
        note=f"withdrawn: {why}",
        now=ctx.now,
    )
    if effects.get("task_id"):
        task = await session.get(Task, uuid.UUID(effects["task_id"]))
        if task is not None and task.completed_at is None:
            task.completed_at, task.completion_note = ctx.now, f"withdrawn: {why}"[:1000]
            await notify_butler(
                session,
                topic="task.withdrawn",
                now=ctx.now,
                butler_id=task.butler_id,
                mother_id=task.mother_id,
                payload={"task_id": str(task.id)},
            )
    if effects.get("alert_id"):
        await _void_alert(ctx, uuid.UUID(effects["alert_id"]), why=why)
    # Its risk suggestion, if still undecided, goes with it.
    for other in list(ctx.live):
        if (
            other.inputs.get("for_firing") == str(firing.id)
            and other.state is FiringState.SUGGESTED
        ):
            await _withdraw(ctx, other, why=why)
    if firing.suggested_grade:
        await session.flush()
        await _close_risk_item(
            session, firing.mother_id, by=SYSTEM, note=f"withdrawn: {why}", now=ctx.now
        )
    ctx.live[:] = [f for f in ctx.live if f.state in clinical_rules.LIVE_STATES]


async def _void_alert(ctx: _Context, alert_id: uuid.UUID, *, why: str) -> None:
    """As a withdrawn lab report voids its alert: off every list, the butler told, and a
    doctor who had already closed it asked to review what was done."""
    session = ctx.session
    alert = await ReportRepository(session).alert(alert_id, for_update=True)
    if alert is None or alert.voided_at is not None:
        return
    alert.voided_at, alert.voided_by, alert.void_reason = ctx.now, SYSTEM, why[:300]
    await worklist.close_about(
        session,
        alert_id=alert.id,
        kinds=ALERT_KINDS,
        by=SYSTEM,
        note=f"alert voided: {why}"[:1000],
        now=ctx.now,
    )
    await notify_butler(
        session,
        topic="alert.voided",
        now=ctx.now,
        butler_id=alert.butler_id,
        mother_id=alert.mother_id,
        payload={"alert_id": alert.id, "channel": "butler_app"},
    )
    if alert.acknowledged_at is not None:
        await worklist.add(
            session,
            audiences=[worklist.DOCTOR],
            kind="alert.voided",
            priority=worklist.CRITICAL,
            title=(
                f"A critical reading closed by {alert.acknowledged_by} was corrected away: "
                "review the action taken"
            ),
            now=ctx.now,
            alert_id=alert.id,
            mother_id=alert.mother_id,
        )


# A clinician's decision ---------------------------------------------------------------------


async def decide(
    session: AsyncSession,
    *,
    firing_id: uuid.UUID,
    confirm: bool,
    note: str,
    actor: Principal,
    now: datetime,
    today: date,
) -> RuleFiring:
    """A doctor confirms or dismisses what a rule suggested; a risk grade she confirms is
    applied through the risk assessment (the history's reason names the firing)."""
    repo = ClinicalRepository(session)
    firing = await repo.firing(firing_id, for_update=True)
    if firing is None:
        raise NotFound("No rule firing with that id.")
    wanted = FiringState.CONFIRMED if confirm else FiringState.DISMISSED
    if firing.state is wanted:
        return firing  # the same decision again changes nothing
    if firing.state is not FiringState.SUGGESTED:
        raise FiringDecided(f"This firing is {firing.state.value}: only a suggestion is decided.")
    firing.state = wanted
    firing.decided_at, firing.decided_by_id = now, actor.id
    firing.decided_by_name, firing.decided_by_role = actor.name, str(actor.role)
    firing.decision_note = note[:1000]
    who = f"{actor.role}:{actor.name}"
    for flag in await repo.flags_of_firing(firing.id):
        if confirm:
            flag.suggested = False
            flag.confirmed_at, flag.confirmed_by_id = now, actor.id
            flag.confirmed_by_name, flag.confirmed_by_role = actor.name, str(actor.role)
        else:
            _clear(flag, by=who, why=f"dismissed: {note}", now=now)
    await _close_items(
        session,
        firing.inputs.get("effects", {}).get("worklist_ids", []),
        by=who,
        note=f"{wanted.value}: {note}",
        now=now,
    )
    mother = await session.get(Mother, firing.mother_id)
    pregnancy = await session.get(Pregnancy, firing.pregnancy_id)
    if firing.suggested_grade and mother is not None and pregnancy is not None:
        if confirm:
            await _apply_grade(
                session, firing, mother, pregnancy, actor=actor, now=now, today=today
            )
        await _close_risk_item(session, mother.id, by=who, note=f"{wanted.value}: {note}", now=now)
    await session.flush()
    return firing


async def _close_risk_item(
    session: AsyncSession, mother_id: uuid.UUID, *, by: str, note: str, now: datetime
) -> None:
    """The doctor's risk-suggestion item leaves her list once no suggestion waits."""
    waiting = [
        f
        for f in await ClinicalRepository(session).firings_of_mother(mother_id)
        if f.suggested_grade and f.state is FiringState.SUGGESTED
    ]
    if waiting:
        return
    item = await WorklistRepository(session).open_item(
        audience=worklist.DOCTOR,
        kind=RISK_KIND,
        report_id=None,
        alert_id=None,
        visit_id=None,
        message_id=None,
        mother_id=mother_id,
    )
    if item is not None:
        await worklist.acknowledge(session, item, by=by, note=note[:1000], now=now)


async def _apply_grade(
    session: AsyncSession,
    firing: RuleFiring,
    mother: Mother,
    pregnancy: Pregnancy,
    *,
    actor: Principal,
    now: datetime,
    today: date,
) -> None:
    rules = risk_rules(get_settings().risk_rules_file)
    grade = RiskGrade(firing.suggested_grade or "")
    if clinical_rules.rank(grade.value) <= clinical_rules.rank(pregnancy.risk_grade.value):
        return  # she is already there or above: a suggestion never lowers her grade
    change = await risk.set_risk(
        session,
        mother=mother,
        pregnancy=pregnancy,
        risk=Risk(grade, pregnancy.purple),
        decision=RiskDecision.CHANGED,
        # Who confirmed it and their note first: the history keeps 500 characters.
        reason=(
            f"rule {firing.rule_id} (firing {firing.id}) confirmed by {actor.role}:{actor.name}"
            f": {firing.decision_note or ''} — {firing.explanation}"
        ),
        actor=risk.Actor(name=actor.name, role=str(actor.role), id=actor.id),
        today=today,
        now=now,
        rules=rules,
    )
    if change.changed:
        mother.version += 1
        mother.updated_at = now
        await touch_mother(
            session,
            mother.id,
            kind="mother.changed",
            now=now,
            today=today,
            ref_type="mother",
            ref_id=mother.id,
        )
