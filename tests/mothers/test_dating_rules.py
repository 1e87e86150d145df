"""ACOG Committee Opinion 700 (2017) as pure rules: thresholds at their edges, locks, IVF."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import pytest

from app.mothers import dating
from app.mothers.dating import (
    DatingOutcome,
    DatingState,
    Ivf,
    RedatingRefused,
    Scan,
    ScanMeasurement,
    judge_scan,
)
from app.mothers.domain import DatingMethod, edd_from_lmp

RULES = dating.dating_rules()
TODAY = date(2026, 11, 28)
LMP = date(2026, 6, 1)  # 25+5 on TODAY
LMP_EDD = edd_from_lmp(LMP)


def scan_at(lmp_ga: int, difference: int, measurement: ScanMeasurement | None = None) -> Scan:
    """A scan on the day her LMP gives ``lmp_ga`` days, measuring ``difference`` days more."""
    ga = lmp_ga + difference
    kind = measurement or (ScanMeasurement.CRL if ga <= 97 else ScanMeasurement.HC)
    return Scan(LMP + timedelta(days=lmp_ga), kind, ga, 40.0)


def judged(
    scan: Scan, established: str | None = None, override: str | None = None
) -> DatingOutcome:
    return judge_scan(
        RULES, scan, current_edd=LMP_EDD, established=established, override_reason=override
    ).outcome


# (LMP GA of the row's first and last day, threshold): ACOG 700 Table 1.
ROWS = [
    (6 * 7, 8 * 7 + 6, 5),
    (9 * 7, 13 * 7 + 6, 7),
    (14 * 7, 15 * 7 + 6, 7),
    (16 * 7, 21 * 7 + 6, 10),
    (22 * 7, 27 * 7 + 6, 14),
]


@pytest.mark.parametrize(("first", "last", "threshold"), ROWS)
@pytest.mark.parametrize("sign", [1, -1])
def test_each_row_redates_only_past_its_threshold(
    first: int, last: int, threshold: int, sign: int
) -> None:
    for day in (first, last):
        assert judged(scan_at(day, sign * threshold)) is DatingOutcome.CONFIRMED
        assert judged(scan_at(day, sign * (threshold + 1))) is DatingOutcome.REDATED


def test_the_row_is_chosen_by_the_dating_in_force_on_the_scan_date() -> None:
    # LMP 15+6 (threshold 7), scan 16+3: 8 days more -> re-dated although the scan's own
    # gestational age lies in the 16+0 row (threshold 10): ACOG 700 Table 1 is by LMP.
    assert judged(scan_at(15 * 7 + 6, 8)) is DatingOutcome.REDATED
    assert judged(scan_at(16 * 7, 10)) is DatingOutcome.CONFIRMED


def test_a_redating_gives_the_scans_edd() -> None:
    scan = scan_at(10 * 7, 8)
    verdict = judge_scan(RULES, scan, current_edd=LMP_EDD, established=None, override_reason=None)
    assert verdict.edd == LMP_EDD - timedelta(days=8)
    assert (verdict.difference_days, verdict.threshold_days) == (8, 7)
    assert "ACOG Committee Opinion No. 700" in verdict.reason
    assert "more than 7 days" in verdict.reason


class TestThirdTrimester:
    def test_from_28_weeks_a_redating_needs_a_doctor(self) -> None:
        with pytest.raises(RedatingRefused) as refused:
            judged(scan_at(28 * 7, -22))
        assert refused.value.rule == "third-trimester-redating"
        assert "growth restricted" in refused.value.detail
        assert judged(scan_at(28 * 7, -21)) is DatingOutcome.CONFIRMED
        assert judged(scan_at(27 * 7 + 6, -15)) is DatingOutcome.REDATED  # the row before

    def test_the_37_week_growth_scan_does_not_redate(self) -> None:
        # 37+3 by LMP, the growth scan says 33+0: 31 days smaller.
        with pytest.raises(RedatingRefused):
            judged(scan_at(37 * 7 + 3, -(37 * 7 + 3 - 33 * 7)))

    def test_a_doctor_may_override_with_a_reason(self) -> None:
        scan = scan_at(37 * 7 + 3, -31)
        verdict = judge_scan(
            RULES, scan, current_edd=LMP_EDD, established=None, override_reason="LMP unsure"
        )
        assert verdict.outcome is DatingOutcome.OVERRIDDEN
        assert verdict.edd == scan.edd
        assert "LMP unsure" in verdict.reason


class TestEstablishedDating:
    CRL = Scan(LMP + timedelta(days=70), ScanMeasurement.CRL, 70, 35.0)

    def state(self) -> DatingState:
        return DatingState(LMP, LMP_EDD, DatingMethod.LMP, self.CRL)

    def test_after_a_first_trimester_crl_a_later_scan_needs_an_override(self) -> None:
        established = dating.established_by(RULES, self.state())
        assert established is not None
        assert "first-trimester CRL" in established
        with pytest.raises(RedatingRefused) as refused:
            judged(scan_at(24 * 7, 16), established=established)
        assert refused.value.rule == "dating-established"
        overridden = judged(scan_at(24 * 7, 16), established=established, override="twin demise")
        assert overridden is DatingOutcome.OVERRIDDEN

    def test_a_later_scan_within_its_threshold_is_recorded_as_confirming(self) -> None:
        established = dating.established_by(RULES, self.state())
        assert judged(scan_at(24 * 7, 14), established=established) is DatingOutcome.CONFIRMED

    def test_ivf_dating_is_established_too(self) -> None:
        state = DatingState(None, LMP_EDD, DatingMethod.IVF, None, Ivf(LMP, 5))
        assert "IVF transfer" in (dating.established_by(RULES, state) or "")

    def test_lmp_dating_alone_is_not_established(self) -> None:
        assert dating.established_by(RULES, DatingState(LMP, LMP_EDD, DatingMethod.LMP)) is None


class TestScanChecks:
    def test_crl_dates_only_to_13_6(self) -> None:
        dating.check_scan(RULES, Scan(TODAY, ScanMeasurement.CRL, 97, 84.0), today=TODAY)
        with pytest.raises(ValueError, match="not crl"):
            dating.check_scan(RULES, Scan(TODAY, ScanMeasurement.CRL, 98, 85.0), today=TODAY)
        with pytest.raises(ValueError, match="not hc"):
            dating.check_scan(RULES, Scan(TODAY, ScanMeasurement.HC, 97, 80.0), today=TODAY)

    def test_a_scan_needs_its_value_and_a_past_date(self) -> None:
        with pytest.raises(ValueError, match="value in mm"):
            dating.check_scan(RULES, Scan(TODAY, ScanMeasurement.CRL, 70), today=TODAY)
        with pytest.raises(ValueError, match="future"):
            dating.check_scan(
                RULES, Scan(TODAY + timedelta(days=1), ScanMeasurement.CRL, 70, 30.0), today=TODAY
            )


class TestIvf:
    @pytest.mark.parametrize(("age", "days"), [(5, 261), (3, 263)])
    def test_edd_from_the_transfer(self, age: int, days: int) -> None:
        transfer = date(2026, 6, 20)
        assert dating.ivf_edd(RULES, Ivf(transfer, age)) == transfer + timedelta(days=days)

    def test_an_unknown_embryo_age_is_refused(self) -> None:
        with pytest.raises(ValueError, match="embryo"):
            dating.check_ivf(RULES, Ivf(date(2026, 6, 20), 8), today=TODAY)


class TestSuboptimal:
    def state(self, scan: Scan | None = None) -> DatingState:
        return DatingState(LMP, LMP_EDD, DatingMethod.LMP, scan)

    def test_flagged_from_22_weeks_without_a_scan(self) -> None:
        at_21_6 = LMP + timedelta(days=21 * 7 + 6)
        assert dating.suboptimal_reason(RULES, self.state(), today=at_21_6) is None
        reason = dating.suboptimal_reason(RULES, self.state(), today=at_21_6 + timedelta(days=1))
        assert reason is not None
        assert "before 22+0" in reason

    def test_a_scan_before_22_weeks_dates_her_well(self) -> None:
        scan = scan_at(21 * 7 + 6, 0)
        assert dating.suboptimal_reason(RULES, self.state(scan), today=TODAY) is None
        late = scan_at(22 * 7, 0)
        assert "rests on a scan at 22+0" in (
            dating.suboptimal_reason(RULES, self.state(late), today=TODAY) or ""
        )

    def test_ivf_dating_is_not_suboptimal(self) -> None:
        state = DatingState(None, LMP_EDD, DatingMethod.IVF, None, Ivf(LMP, 5))
        assert dating.suboptimal_reason(RULES, state, today=TODAY) is None


class TestEnrolmentAndRecords:
    def test_lmp_alone_is_naegele(self) -> None:
        result = dating.initial_dating(
            RULES, lmp=LMP, edd=None, method=None, scan=None, ivf=None, today=TODAY
        )
        assert (result.state.edd_date, result.state.method) == (LMP_EDD, DatingMethod.LMP)

    def test_an_edd_sent_with_the_lmp_is_judged_as_a_scan_today(self) -> None:
        # 25+5 today; an EDD 7 days earlier is within the 22+0-27+6 threshold (14 days).
        result = dating.initial_dating(
            RULES,
            lmp=LMP,
            edd=LMP_EDD - timedelta(days=7),
            method=None,
            scan=None,
            ivf=None,
            today=TODAY,
        )
        assert result.state.edd_date == LMP_EDD
        assert result.state.method is DatingMethod.LMP
        assert result.outcome is DatingOutcome.DATED

    def test_enrolment_is_never_refused_over_the_dating(self) -> None:
        day = LMP + timedelta(days=37 * 7 + 3)
        result = dating.initial_dating(
            RULES,
            lmp=LMP,
            edd=day + timedelta(days=280 - 33 * 7),
            method=None,
            scan=None,
            ivf=None,
            today=day,
        )
        assert result.outcome is DatingOutcome.REFERRED
        assert result.state.edd_date == LMP_EDD
        assert result.referral is not None

    def test_an_edd_alone_is_reported(self) -> None:
        result = dating.initial_dating(
            RULES, lmp=None, edd=date(2027, 3, 1), method=None, scan=None, ivf=None, today=TODAY
        )
        assert result.state.method is DatingMethod.REPORTED

    def test_an_lmp_dated_edd_must_agree_with_the_lmp(self) -> None:
        with pytest.raises(ValueError, match="LMP \\+ 280"):
            dating.initial_dating(
                RULES,
                lmp=LMP,
                edd=date(2027, 3, 1),
                method=DatingMethod.LMP,
                scan=None,
                ivf=None,
                today=TODAY,
            )

    def test_nothing_to_date_by_is_refused(self) -> None:
        with pytest.raises(ValueError, match="give the LMP"):
            dating.initial_dating(
                RULES, lmp=None, edd=None, method=None, scan=None, ivf=None, today=TODAY
            )

    def test_a_corrected_lmp_judges_its_dating_scan_again(self) -> None:
        crl = scan_at(10 * 7, 5)  # confirmed the old LMP (5 <= 7)
        state = DatingState(LMP, LMP_EDD, DatingMethod.LMP, crl)
        result = dating.redate(
            RULES,
            state,
            lmp=LMP + timedelta(days=3),
            lmp_sent=True,
            edd=None,
            method=None,
            scan=None,
            ivf=None,
            override_reason=None,
            today=TODAY,
        )
        assert result is not None
        # Against the new LMP the CRL is 8 days off: past 7, so the scan dates her now.
        assert result.state.method is DatingMethod.ULTRASOUND
        assert result.state.edd_date == crl.edd

    def test_an_ultrasound_edd_survives_an_lmp_correction(self) -> None:
        crl = scan_at(10 * 7, 8)
        state = DatingState(LMP, crl.edd, DatingMethod.ULTRASOUND, crl)
        result = dating.redate(
            RULES,
            state,
            lmp=LMP + timedelta(days=2),
            lmp_sent=True,
            edd=None,
            method=None,
            scan=None,
            ivf=None,
            override_reason=None,
            today=TODAY,
        )
        assert result is not None
        assert result.state.edd_date == crl.edd
        assert result.state.lmp_date == LMP + timedelta(days=2)


class TestTable:
    def raw(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(dating.BUILT_IN.read_text(encoding="utf-8"))
        return data

    def test_the_built_in_table_is_acog_700(self) -> None:
        assert [(r.label, r.more_than_days) for r in RULES.rows] == [
            ("0+0 to 8+6", 5),
            ("9+0 to 13+6", 7),
            ("14+0 to 15+6", 7),
            ("16+0 to 21+6", 10),
            ("22+0 to 27+6", 14),
            ("28+0 and beyond", 21),
        ]

    def test_a_table_with_a_gap_is_refused(self) -> None:
        raw = copy.deepcopy(self.raw())
        raw["redating"]["rows"][2]["from"] = "14+1"
        with pytest.raises(ValueError, match="do not meet"):
            dating.load_dating_rules(raw)

    def test_a_hospital_may_change_a_threshold(self) -> None:
        raw = copy.deepcopy(self.raw())
        raw["redating"]["rows"][1]["more_than_days"] = 6
        rules = dating.load_dating_rules(raw)
        verdict = judge_scan(
            rules, scan_at(10 * 7, 7), current_edd=LMP_EDD, established=None, override_reason=None
        )
        assert verdict.outcome is DatingOutcome.REDATED


def test_an_earlier_scan_entered_later_is_judged_against_the_lmp() -> None:
    late = scan_at(25 * 7, 3, ScanMeasurement.UNSPECIFIED)  # an EDD recorded at 25 weeks
    state = DatingState(LMP, LMP_EDD, DatingMethod.LMP, late)
    crl = scan_at(10 * 7, 8)  # the first-trimester report, entered afterwards
    result = dating.redate(
        RULES,
        state,
        lmp=None,
        lmp_sent=False,
        edd=None,
        method=None,
        scan=crl,
        ivf=None,
        override_reason=None,
        today=TODAY,
    )
    assert result is not None
    assert result.outcome is DatingOutcome.REDATED
    assert result.state.scan == crl
    assert result.state.edd_date == crl.edd
