"""Dating and re-dating a pregnancy within limits: pure rules over a data table. No ORM, no I/O.

The table (``dating_rules.json``) is ACOG Committee Opinion 700 (2017): a scan re-dates only
when it differs from the dating in force by more than its row's threshold; once a scan (or an
IVF transfer) has confirmed or revised the dating, and for any scan from 28+0, only a doctor's
override with a reason changes it; an IVF pregnancy is dated from the transfer; a pregnancy
without a scan before 22+0 that confirmed or revised the EDD is suboptimally dated.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.mothers.domain import (
    PREGNANCY_DAYS,
    DatingMethod,
    check_edd,
    check_lmp,
    edd_from_lmp,
    format_gestational_age,
    gestational_age_days,
)

BUILT_IN = Path(__file__).parent / "dating_rules.json"
_GA = re.compile(r"^(\d{1,2})\+([0-6])$")
MIN_SCAN_DAYS = 5 * 7  # an embryo is measurable from about 5-6 weeks
MAX_SCAN_DAYS = 44 * 7


def parse_ga(text: str) -> int:
    """'13+6' -> 97 days."""
    match = _GA.fullmatch(text.strip())
    if not match:
        raise ValueError(f"gestational age {text!r} is not weeks+days like 13+6")
    return int(match.group(1)) * 7 + int(match.group(2))


class ScanMeasurement(StrEnum):
    CRL = "crl"  # crown-rump length (first trimester)
    HC = "hc"  # head circumference
    BIOMETRY = "biometry"  # BPD, HC, AC and FL together (second and third trimester)
    UNSPECIFIED = "unspecified"  # an EDD sent without its scan (the API before issue 20)


class DatingOutcome(StrEnum):
    DATED = "dated"  # the first dating of the pregnancy
    CONFIRMED = "confirmed"  # a scan within the threshold: the dating in force stands
    REDATED = "redated"  # a scan past the threshold (or an IVF transfer) re-dated her
    OVERRIDDEN = "overridden"  # a doctor re-dated where the rules would not, with a reason
    CORRECTED = "corrected"  # the LMP or a reported EDD was corrected
    REFERRED = "referred"  # not re-dated: a doctor must decide (at enrolment)


@dataclass(frozen=True, slots=True)
class Scan:
    scan_date: date
    measurement: ScanMeasurement
    ga_days: int  # the gestational age the scan gives on its date
    value_mm: float | None = None

    @property
    def edd(self) -> date:
        return self.scan_date + timedelta(days=PREGNANCY_DAYS - self.ga_days)

    def describe(self, crl_up_to_day: int) -> str:
        ga = format_gestational_age(self.ga_days)
        if self.measurement is ScanMeasurement.CRL and self.ga_days <= crl_up_to_day:
            return f"a first-trimester CRL scan on {self.scan_date} at {ga}"
        if self.measurement is ScanMeasurement.UNSPECIFIED:
            return f"an ultrasound EDD recorded on {self.scan_date} (at {ga})"
        return f"an ultrasound ({self.measurement.value}) on {self.scan_date} at {ga}"


@dataclass(frozen=True, slots=True)
class Ivf:
    transfer_date: date
    embryo_age_days: int


@dataclass(frozen=True, slots=True)
class RedatingRow:
    from_day: int
    to_day: int | None  # None: and beyond
    more_than_days: int
    measurements: frozenset[ScanMeasurement]

    @property
    def label(self) -> str:
        start = format_gestational_age(self.from_day)
        if self.to_day is None:
            return f"{start} and beyond"
        return f"{start} to {format_gestational_age(self.to_day)}"

    def holds(self, day: int) -> bool:
        return self.from_day <= day and (self.to_day is None or day <= self.to_day)


@dataclass(frozen=True, slots=True)
class DatingRules:
    code: str
    rows: tuple[RedatingRow, ...]
    redating_source: str
    crl_up_to_day: int
    crl_source: str
    established_source: str
    third_trimester_from_day: int
    third_trimester_source: str
    suboptimal_before_day: int
    suboptimal_source: str
    ivf_days: int
    embryo_ages: frozenset[int]
    ivf_source: str

    def row_for(self, day: int) -> RedatingRow:
        for row in self.rows:
            if row.holds(day):
                return row
        raise ValueError(f"no re-dating row covers {format_gestational_age(day)}")


def load_dating_rules(raw: Mapping[str, Any]) -> DatingRules:
    """A dating table from its JSON form; a table with gaps or overlaps is refused."""
    rows = tuple(
        RedatingRow(
            from_day=parse_ga(r["from"]),
            to_day=parse_ga(r["to"]) if r["to"] is not None else None,
            more_than_days=int(r["more_than_days"]),
            measurements=frozenset(ScanMeasurement(m) for m in r["measurements"]),
        )
        for r in raw["redating"]["rows"]
    )
    if not rows or rows[0].from_day != 0 or rows[-1].to_day is not None:
        raise ValueError("re-dating rows must start at 0+0 and end open ('to': null)")
    for before, after in itertools.pairwise(rows):
        if before.to_day is None or after.from_day != before.to_day + 1:
            raise ValueError(f"re-dating rows {before.label} and {after.label} do not meet")
    if any(r.more_than_days < 0 for r in rows):
        raise ValueError("a re-dating threshold cannot be negative")
    ivf = raw["ivf"]
    return DatingRules(
        code=str(raw["code"]),
        rows=rows,
        redating_source=str(raw["redating"]["source"]),
        crl_up_to_day=parse_ga(raw["crl_up_to"]),
        crl_source=str(raw["crl_source"]),
        established_source=str(raw["established"]["source"]),
        third_trimester_from_day=parse_ga(raw["third_trimester"]["from"]),
        third_trimester_source=str(raw["third_trimester"]["source"]),
        suboptimal_before_day=parse_ga(raw["suboptimal"]["before"]),
        suboptimal_source=str(raw["suboptimal"]["source"]),
        ivf_days=int(ivf["days_from_conception"]),
        embryo_ages=frozenset(int(a) for a in ivf["embryo_ages"]),
        ivf_source=str(ivf["source"]),
    )


@lru_cache(maxsize=4)
def dating_rules(path: str | None = None) -> DatingRules:
    """The built-in ACOG 700 table, or the hospital's own file (DATING_RULES_FILE)."""
    source = Path(path) if path else BUILT_IN
    try:
        return load_dating_rules(json.loads(source.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"dating rules {source.name} are invalid: {exc}") from exc


# Checks ----------------------------------------------------------------------------------


def check_scan(rules: DatingRules, scan: Scan, *, today: date) -> None:
    """A scan is plausible and measured the way its gestational age calls for."""
    if scan.scan_date > today:
        raise ValueError("the scan date is in the future")
    if not MIN_SCAN_DAYS <= scan.ga_days <= MAX_SCAN_DAYS:
        raise ValueError("the scan's gestational age must be between 5+0 and 44+0")
    if scan.measurement is ScanMeasurement.UNSPECIFIED:
        return
    if scan.measurement in (ScanMeasurement.CRL, ScanMeasurement.HC) and scan.value_mm is None:
        raise ValueError(f"a {scan.measurement.value.upper()} scan needs its value in mm")
    if scan.value_mm is not None and not 0 < scan.value_mm <= 500:
        raise ValueError("the measurement must be between 0 and 500 mm")
    row = rules.row_for(scan.ga_days)
    if scan.measurement not in row.measurements:
        ga = format_gestational_age(scan.ga_days)
        wanted = " or ".join(sorted(m.value for m in row.measurements))
        raise ValueError(
            f"at {ga} the dating measurement is {wanted}, not {scan.measurement.value} "
            f"({rules.redating_source}; {rules.crl_source})"
        )


def check_ivf(rules: DatingRules, ivf: Ivf, *, today: date) -> None:
    if ivf.embryo_age_days not in rules.embryo_ages:
        ages = ", ".join(str(a) for a in sorted(rules.embryo_ages))
        raise ValueError(f"the embryo's age at transfer must be one of {ages} days")
    if ivf.transfer_date > today:
        raise ValueError("the transfer date is in the future")
    check_edd(ivf_edd(rules, ivf), today=today)


def ivf_edd(rules: DatingRules, ivf: Ivf) -> date:
    """EDD = transfer date + 266 days - the embryo's age (ACOG 700: day 5 -> +261 days)."""
    return ivf.transfer_date + timedelta(days=rules.ivf_days - ivf.embryo_age_days)


# Judging a scan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judgement:
    outcome: DatingOutcome
    edd: date  # the EDD after this scan
    scan: Scan
    dated_ga_days: int  # GA by the dating in force, on the scan date
    difference_days: int  # scan GA minus that (negative: the fetus measures smaller)
    threshold_days: int
    row_label: str
    reason: str


class RedatingRefused(Exception):
    """The rules do not re-date from this scan by themselves: a doctor's override is needed."""

    def __init__(self, rule: str, detail: str, judgement: Judgement | None) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.judgement = judgement


def _comparison(scan: Scan, dated_ga: int, row: RedatingRow) -> str:
    difference = scan.ga_days - dated_ga
    return (
        f"scan {format_gestational_age(scan.ga_days)} against {format_gestational_age(dated_ga)} "
        f"by the dating in force on {scan.scan_date}: {abs(difference)} days "
        f"{'smaller' if difference < 0 else 'larger'}; the threshold at {row.label} is more "
        f"than {row.more_than_days} days"
    )


def judge_scan(
    rules: DatingRules,
    scan: Scan,
    *,
    current_edd: date,
    established: str | None,
    override_reason: str | None,
) -> Judgement:
    """What this scan does to the dating; RedatingRefused when only a doctor may re-date."""
    dated_ga = gestational_age_days(current_edd, scan.scan_date)
    row = rules.row_for(max(dated_ga, 0))
    difference = scan.ga_days - dated_ga
    compared = _comparison(scan, dated_ga, row)

    def judged(outcome: DatingOutcome, edd: date, reason: str) -> Judgement:
        return Judgement(
            outcome=outcome,
            edd=edd,
            scan=scan,
            dated_ga_days=dated_ga,
            difference_days=difference,
            threshold_days=row.more_than_days,
            row_label=row.label,
            reason=reason,
        )

    refusal: RedatingRefused
    if abs(difference) <= row.more_than_days:
        verdict = judged(
            DatingOutcome.CONFIRMED,
            current_edd,
            f"Not re-dated: {compared} ({rules.redating_source}); the dating in force stands.",
        )
        if override_reason is None or scan.edd == current_edd:
            return verdict
        refusal = RedatingRefused("within-threshold", verdict.reason, verdict)
    elif established is not None:
        refusal = RedatingRefused(
            "dating-established",
            f"Not re-dated: the dating rests on {established}; a later scan does not change it "
            f"without a doctor's override and a written reason ({rules.established_source}). "
            f"{compared}.",
            judged(DatingOutcome.CONFIRMED, current_edd, ""),
        )
    elif dated_ga >= rules.third_trimester_from_day:
        start = format_gestational_age(rules.third_trimester_from_day)
        refusal = RedatingRefused(
            "third-trimester-redating",
            f"Not re-dated from a scan from {start}: {compared}; a small fetus may be growth "
            f"restricted, so only a doctor's override with a written reason re-dates her "
            f"({rules.third_trimester_source}).",
            judged(DatingOutcome.CONFIRMED, current_edd, ""),
        )
    else:
        note = f" Doctor's note: {override_reason}" if override_reason else ""
        return judged(
            DatingOutcome.REDATED,
            scan.edd,
            f"Re-dated: {compared} ({rules.redating_source}).{note}",
        )
    if override_reason is None:
        raise refusal
    return judged(
        DatingOutcome.OVERRIDDEN,
        scan.edd,
        f"Re-dated by a doctor's override of the rule '{refusal.rule}': {override_reason}. "
        f"{refusal.detail}",
    )


# The dating of a pregnancy ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatingState:
    lmp_date: date | None
    edd_date: date
    method: DatingMethod
    scan: Scan | None = None  # the scan the dating rests on (confirmed or revised it)
    ivf: Ivf | None = None


@dataclass(frozen=True, slots=True)
class DatingResult:
    state: DatingState
    outcome: DatingOutcome
    reason: str
    judgement: Judgement | None = None
    referral: RedatingRefused | None = None  # at enrolment: not re-dated, a doctor decides


def established_by(rules: DatingRules, state: DatingState) -> str | None:
    """What fixed the dating, so that a later scan needs a doctor's override (ACOG 700)."""
    if state.method is DatingMethod.IVF and state.ivf is not None:
        return (
            f"an IVF transfer on {state.ivf.transfer_date} (day-{state.ivf.embryo_age_days} embryo)"
        )
    if state.scan is not None:
        return state.scan.describe(rules.crl_up_to_day)
    return None


def suboptimal_reason(rules: DatingRules, state: DatingState, *, today: date) -> str | None:
    """Why the dating is suboptimal (ACOG 700), or None; only said once she is past 22+0."""
    if state.method is DatingMethod.IVF:
        return None
    limit = rules.suboptimal_before_day
    if gestational_age_days(state.edd_date, today) < limit:
        return None
    if state.scan is None:
        return (
            f"Suboptimally dated: no ultrasound before {format_gestational_age(limit)} "
            f"confirmed or revised the EDD ({rules.suboptimal_source})."
        )
    scan_ga = gestational_age_days(state.edd_date, state.scan.scan_date)
    if scan_ga < limit:
        return None
    return (
        f"Suboptimally dated: the dating rests on a scan at {format_gestational_age(scan_ga)}, "
        f"after {format_gestational_age(limit)} ({rules.suboptimal_source})."
    )


def _legacy_scan(edd: date, today: date) -> Scan:
    """An EDD sent without its scan is judged as a scan made today: the later the scan, the
    wider the threshold, so this errs towards keeping the dating in force."""
    return Scan(today, ScanMeasurement.UNSPECIFIED, gestational_age_days(edd, today))


def _with_scan(state: DatingState, judgement: Judgement) -> DatingState:
    if judgement.outcome is DatingOutcome.CONFIRMED:
        # The earliest scan that confirmed the dating is the one it rests on.
        return state if state.scan is not None else replace(state, scan=judgement.scan)
    return replace(
        state, edd_date=judgement.edd, method=DatingMethod.ULTRASOUND, scan=judgement.scan
    )


def initial_dating(
    rules: DatingRules,
    *,
    lmp: date | None,
    edd: date | None,
    method: DatingMethod | None,
    scan: Scan | None,
    ivf: Ivf | None,
    today: date,
) -> DatingResult:
    """The dating at enrolment. A scan past a threshold that only a doctor may act on leaves
    the LMP dating in force and says so (enrolment is never refused over the dating)."""
    if lmp is None and edd is None and scan is None and ivf is None:
        raise ValueError("give the LMP, the EDD, a dating scan or the IVF transfer")
    if lmp is not None:
        check_lmp(lmp, today=today)
    if edd is not None:
        check_edd(edd, today=today)
    if ivf is not None:
        return _ivf_dating(rules, DatingState(lmp, edd or today, DatingMethod.LMP), ivf, edd, today)
    if scan is not None:
        check_scan(rules, scan, today=today)
        if edd is not None and edd != scan.edd:
            raise ValueError(f"the EDD does not agree with the scan's gestational age ({scan.edd})")
        if lmp is None:
            state = DatingState(None, scan.edd, DatingMethod.ULTRASOUND, scan)
            check_edd(scan.edd, today=today)
            return DatingResult(state, DatingOutcome.DATED, "dated by the scan (no LMP given)")
        return _enrolment_scan(rules, lmp, scan)
    if lmp is None:
        assert edd is not None
        chosen = method or DatingMethod.REPORTED
        if chosen is DatingMethod.LMP or chosen is DatingMethod.IVF:
            raise ValueError(f"{chosen.value} dating needs the LMP or the IVF transfer")
        return DatingResult(
            DatingState(None, edd, chosen), DatingOutcome.DATED, "EDD as reported at enrolment"
        )
    if edd is None or edd == edd_from_lmp(lmp):
        if method not in (None, DatingMethod.LMP):
            raise ValueError(f"{method} dating needs the EDD or the scan")
        state = DatingState(lmp, edd_from_lmp(lmp), DatingMethod.LMP)
        return DatingResult(state, DatingOutcome.DATED, "dated by the LMP (Naegele: LMP + 280)")
    if method is DatingMethod.LMP:
        raise ValueError("an LMP-dated EDD must be LMP + 280 days; say dating_method=ultrasound")
    if method is DatingMethod.IVF:
        raise ValueError("IVF dating needs the transfer date and the embryo's age")
    return _enrolment_scan(rules, lmp, _legacy_scan(edd, today))


def _enrolment_scan(rules: DatingRules, lmp: date, scan: Scan) -> DatingResult:
    by_lmp = DatingState(lmp, edd_from_lmp(lmp), DatingMethod.LMP)
    try:
        judgement = judge_scan(
            rules, scan, current_edd=by_lmp.edd_date, established=None, override_reason=None
        )
    except RedatingRefused as refused:
        return DatingResult(
            by_lmp,
            DatingOutcome.REFERRED,
            f"Dated by the LMP; a doctor decides on the scan. {refused.detail}",
            refused.judgement,
            referral=refused,
        )
    outcome = (
        DatingOutcome.REDATED if judgement.outcome is DatingOutcome.REDATED else DatingOutcome.DATED
    )
    return DatingResult(_with_scan(by_lmp, judgement), outcome, judgement.reason, judgement)


def _ivf_dating(
    rules: DatingRules, state: DatingState, ivf: Ivf, edd: date | None, today: date
) -> DatingResult:
    check_ivf(rules, ivf, today=today)
    new_edd = ivf_edd(rules, ivf)
    if edd is not None and edd != new_edd:
        raise ValueError(f"the EDD does not agree with the IVF transfer ({new_edd})")
    reason = (
        f"dated from the IVF transfer: {ivf.transfer_date} + {rules.ivf_days} - "
        f"{ivf.embryo_age_days} days ({rules.ivf_source})"
    )
    changed = state.edd_date != new_edd or state.method is not DatingMethod.IVF
    return DatingResult(
        DatingState(state.lmp_date, new_edd, DatingMethod.IVF, None, ivf),
        DatingOutcome.REDATED if changed else DatingOutcome.CONFIRMED,
        reason,
    )


def redate(
    rules: DatingRules,
    current: DatingState,
    *,
    lmp: date | None,
    lmp_sent: bool,
    edd: date | None,
    method: DatingMethod | None,
    scan: Scan | None,
    ivf: Ivf | None,
    override_reason: str | None,
    today: date,
) -> DatingResult | None:
    """A change of dating on a record; None when nothing changes. RedatingRefused when the
    rules keep the dating in force and no doctor has overridden them."""
    state, note = current, None
    if lmp_sent and lmp != current.lmp_date:
        if lmp is not None:
            check_lmp(lmp, today=today)
        state, note = _correct_lmp(rules, current, lmp, override_reason)
    if ivf is not None:
        if scan is not None:
            raise ValueError("send the IVF transfer or a dating scan, not both")
        return _ivf_dating(rules, state, ivf, edd, today)
    if scan is None and edd is not None:
        check_edd(edd, today=today)
        if method is DatingMethod.IVF:
            raise ValueError("IVF dating needs the transfer date and the embryo's age")
        if method is DatingMethod.LMP:
            return _back_to_lmp(rules, state, edd, override_reason) or _noted(current, state, note)
        if edd == state.edd_date:
            return _noted(current, state, note)
        if state.lmp_date is None and state.scan is None and state.method is DatingMethod.REPORTED:
            return DatingResult(
                replace(state, edd_date=edd, method=method or DatingMethod.REPORTED),
                DatingOutcome.CORRECTED,
                "the reported EDD was corrected (no LMP or scan to judge it against)",
            )
        scan = _legacy_scan(edd, today)
    if scan is None:
        return _noted(current, state, note)
    check_scan(rules, scan, today=today)
    if edd is not None and edd != scan.edd:
        raise ValueError(f"the EDD does not agree with the scan's gestational age ({scan.edd})")
    base = state
    if (
        state.scan is not None
        and scan.scan_date < state.scan.scan_date
        and state.lmp_date is not None
        and state.method in (DatingMethod.LMP, DatingMethod.ULTRASOUND)
    ):
        # An earlier scan than the one the dating rests on is the more accurate (ACOG 700):
        # it is judged against the LMP, as if the later one had not been made.
        base = DatingState(state.lmp_date, edd_from_lmp(state.lmp_date), DatingMethod.LMP)
    judgement = judge_scan(
        rules,
        scan,
        current_edd=base.edd_date,
        established=established_by(rules, base),
        override_reason=override_reason,
    )
    return DatingResult(_with_scan(base, judgement), judgement.outcome, judgement.reason, judgement)


def _noted(current: DatingState, state: DatingState, note: str | None) -> DatingResult | None:
    if state == current or note is None:
        return None
    return DatingResult(state, DatingOutcome.CORRECTED, note)


def _back_to_lmp(
    rules: DatingRules, state: DatingState, edd: date, override_reason: str | None
) -> DatingResult | None:
    """dating_method=lmp with its EDD: return to LMP dating, which an established scan or IVF
    dating allows only by a doctor's override."""
    if state.lmp_date is None or edd != edd_from_lmp(state.lmp_date):
        raise ValueError("an LMP-dated EDD must be LMP + 280 days; say dating_method=ultrasound")
    if state.method is DatingMethod.LMP:
        return None
    by_lmp = DatingState(state.lmp_date, edd, DatingMethod.LMP, None, state.ivf)
    established = established_by(rules, state)
    if established is None:
        return DatingResult(by_lmp, DatingOutcome.REDATED, "dated by the LMP (Naegele: LMP + 280)")
    detail = (
        f"The dating rests on {established}; returning to the LMP dating needs a doctor's "
        f"override and a written reason ({rules.established_source})."
    )
    if override_reason is None:
        raise RedatingRefused("dating-established", detail, None)
    return DatingResult(
        by_lmp,
        DatingOutcome.OVERRIDDEN,
        f"Dated by the LMP by a doctor's override: {override_reason}. {detail}",
    )


def _correct_lmp(
    rules: DatingRules,
    current: DatingState,
    lmp: date | None,
    override_reason: str | None,
) -> tuple[DatingState, str]:
    """A corrected LMP moves an LMP dating; a scan or IVF dating keeps its EDD. Where a scan
    confirmed the old LMP, it is judged again against the new one."""
    if current.method is not DatingMethod.LMP:
        return replace(current, lmp_date=lmp), (
            f"LMP corrected; the {current.method.value} EDD stays in force"
        )
    if lmp is None:
        raise ValueError("an LMP-dated pregnancy needs its LMP")
    by_lmp = replace(current, lmp_date=lmp, edd_date=edd_from_lmp(lmp), scan=None)
    if current.scan is None:
        return by_lmp, "LMP corrected: dated by the new LMP (Naegele: LMP + 280)"
    judgement = judge_scan(
        rules,
        current.scan,
        current_edd=by_lmp.edd_date,
        established=None,
        override_reason=override_reason,
    )
    return _with_scan(by_lmp, judgement), (
        f"LMP corrected; its dating scan judged again: {judgement.reason}"
    )
