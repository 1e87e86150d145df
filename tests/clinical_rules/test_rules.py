"""The clinical rules of rules.json at their thresholds, pure (no database).

Cases (case → expected → source):
- fasting 5.09/5.1, 1 h 9.99/10.0, 2 h 8.49/8.5 mmol/L → no GDM / GDM → IADPSG 2010, CSOG/CMA 2022
- 91/92, 179/180, 152/153 mg/dL sent as such → no GDM / GDM (the mg/dL thresholds as written)
- fasting 6.99/7.0 → no overt / overt (the doctor is alerted) → CSOG/CMA 2022
- a fasting value alone before 24+0 → no GDM (early fasting 5.1-6.9 is not GDM) → CSOG/CMA 2022
- 139/140 systolic, 89/90 diastolic on two readings 3:59/4:00 apart, at 19+6/20+0 → none / GH
  suggested → CSOG 2020
- 159/160 systolic, 109/110 diastolic on one reading → none / severe → CSOG 2020
- Hb 110/109.9 → none / mild; 100/99 → mild / moderate; 70/69 → moderate / severe → CMA 2014
- FHR 109/110 and 160/161 → alerted / not / not / alerted; NST non_reactive → alerted
- weight gain: two in a row outside → referral; outside then within → none
- a rules file without a source, or with an unknown flag → refused
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.clinical import rules as r
from app.clinical.gwg import GwgStatus

RULES = r.rules()
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
GA_26 = 26 * 7


def _ids(findings: list[r.Finding]) -> set[str]:
    return {f.rule.id for f in findings}


@pytest.mark.parametrize(
    ("values", "gdm"),
    [
        ({"glucose_fasting": 5.09, "ogtt_1h": 9.99, "ogtt_2h": 8.49}, False),
        ({"glucose_fasting": 5.1, "ogtt_1h": 9.99, "ogtt_2h": 8.49}, True),
        ({"glucose_fasting": 5.09, "ogtt_1h": 10.0, "ogtt_2h": 8.49}, True),
        ({"glucose_fasting": 5.09, "ogtt_1h": 9.99, "ogtt_2h": 8.5}, True),
        ({"ogtt_2h": 8.5}, True),
        ({"ogtt_1h": 9.99}, False),
    ],
)
def test_gdm_at_each_ogtt_threshold(values: dict[str, float], gdm: bool) -> None:
    found = r.evaluate_glucose(RULES, values, ga_days=GA_26)
    assert ("ogtt.gdm" in _ids(found)) is gdm
    if gdm:
        (f,) = [f for f in found if f.rule.id == "ogtt.gdm"]
        assert f.rule.flags == ("gdm", "glucose_monitoring")
        assert ">=" in f.explanation
        assert "CSOG/CMA 2022" in f.explanation
        assert f.inputs["values_mmol_l"] == values


@pytest.mark.parametrize(("fasting", "overt"), [(6.99, False), (7.0, True)])
def test_overt_diabetes_at_7_0(fasting: float, overt: bool) -> None:
    found = r.evaluate_glucose(
        RULES, {"glucose_fasting": fasting, "ogtt_1h": 9.0, "ogtt_2h": 7.0}, ga_days=GA_26
    )
    assert ("ogtt.overt" in _ids(found)) is overt
    assert "ogtt.gdm" in _ids(found)  # 6.99 is GDM already
    if overt:
        (f,) = [f for f in found if f.rule.id == "ogtt.overt"]
        assert f.doctor_alert
        assert f.rule.state is r.FiringState.SUGGESTED


def test_overt_diabetes_at_any_gestational_age() -> None:
    found = r.evaluate_glucose(RULES, {"glucose_fasting": 7.0}, ga_days=10 * 7)
    assert _ids(found) == {"ogtt.overt"}


@pytest.mark.parametrize(("ga_days", "gdm"), [(23 * 7 + 6, False), (24 * 7, True), (None, False)])
def test_a_fasting_glucose_alone_counts_from_24_weeks(ga_days: int | None, gdm: bool) -> None:
    found = r.evaluate_glucose(RULES, {"glucose_fasting": 5.5}, ga_days=ga_days)
    assert ("ogtt.gdm" in _ids(found)) is gdm


def _bp(i: int, s: float, d: float, at: datetime, ga: int | None = 24 * 7) -> r.BpReading:
    return r.BpReading(id=f"m{i}", systolic=s, diastolic=d, measured_at=at, ga_days=ga)


@pytest.mark.parametrize(
    ("first", "second", "fires"),
    [
        ((139, 89), (139, 89), False),
        ((140, 80), (140, 80), True),
        ((130, 90), (130, 90), True),
        ((140, 80), (139, 89), False),
        ((130, 89), (150, 95), False),
    ],
)
def test_gestational_hypertension_at_140_90(
    first: tuple[int, int], second: tuple[int, int], fires: bool
) -> None:
    readings = [_bp(1, *first, T0), _bp(2, *second, T0 + timedelta(hours=4))]
    found = r.evaluate_bp_repeat(RULES, readings)
    assert ("bp.gestational_hypertension" in _ids(found)) is fires


@pytest.mark.parametrize(
    ("apart", "fires"),
    [(timedelta(hours=3, minutes=59), False), (timedelta(hours=4), True)],
)
def test_gestational_hypertension_needs_4_hours_between_readings(
    apart: timedelta, fires: bool
) -> None:
    readings = [_bp(1, 145, 92, T0), _bp(2, 146, 93, T0 + apart)]
    found = r.evaluate_bp_repeat(RULES, readings)
    assert bool(found) is fires
    if fires:
        assert found[0].measurement_ids == ("m1", "m2")
        assert found[0].rule.state is r.FiringState.SUGGESTED
        assert found[0].inputs["hours_apart"] == 4.0


@pytest.mark.parametrize(("ga", "fires"), [(19 * 7 + 6, False), (20 * 7, True)])
def test_gestational_hypertension_after_20_weeks(ga: int, fires: bool) -> None:
    readings = [_bp(1, 145, 92, T0, ga), _bp(2, 146, 93, T0 + timedelta(hours=5), ga)]
    assert bool(r.evaluate_bp_repeat(RULES, readings)) is fires


def test_one_raised_reading_before_20_weeks_does_not_pair_with_one_after() -> None:
    readings = [_bp(1, 145, 92, T0, 19 * 7 + 6), _bp(2, 146, 93, T0 + timedelta(days=1), 20 * 7)]
    assert r.evaluate_bp_repeat(RULES, readings) == []


@pytest.mark.parametrize(
    ("s", "d", "severe"),
    [(159, 109, False), (160, 100, True), (150, 110, True), (159, 110, True), (160, 109, True)],
)
def test_severe_blood_pressure_on_one_reading(s: int, d: int, severe: bool) -> None:
    found = r.evaluate_bp_single(RULES, _bp(1, s, d, T0, ga=12 * 7))
    assert bool(found) is severe
    if severe:
        assert found[0].rule.effects == ("critical_alert",)
        assert found[0].measurement_ids == ("m1",)


@pytest.mark.parametrize(
    ("hb", "grade"),
    [
        (110, None),
        (109.9, "mild"),
        (109, "mild"),
        (100, "mild"),
        (99, "moderate"),
        (99.9, "moderate"),
        (70, "moderate"),
        (69, "severe"),
        (40, "severe"),
    ],
)
def test_anaemia_graded_at_110_100_70(hb: float, grade: str | None) -> None:
    found = r.evaluate_haemoglobin(RULES, hb, ga_days=GA_26)
    assert (found[0].grade if found else None) == grade
    if found:
        assert found[0].doctor_alert is (grade == "severe")
        assert found[0].rule.flags == ("anaemia",)


@pytest.mark.parametrize(
    ("hb", "colour"),
    [
        (109, "yellow"),
        (61, "yellow"),
        (60.5, "yellow"),
        (60, "orange"),
        (41, "orange"),
        (40, "red"),
    ],
)
def test_anaemia_suggests_the_nhfpc_colour_of_her_hb(hb: float, colour: str) -> None:
    """NHFPC 2017: yellow Hb 60-110, orange 40-60, red <= 40; the shared boundary takes the
    higher colour."""
    (found,) = r.evaluate_haemoglobin(RULES, hb, ga_days=GA_26)
    assert found.suggested_grade == colour
    assert "NHFPC" in (found.suggested_source or "")
    assert r.suggests_higher(found, "yellow") is (colour != "yellow")


@pytest.mark.parametrize(("bpm", "alerted"), [(109, True), (110, False), (160, False), (161, True)])
def test_fetal_heart_rate_outside_110_160(bpm: int, alerted: bool) -> None:
    found = r.evaluate_fhr(RULES, bpm, measurement_id="m1", ga_days=GA_26)
    assert bool(found) is alerted
    if found:
        assert found[0].doctor_alert


@pytest.mark.parametrize(("result", "alerted"), [("reactive", False), ("non_reactive", True)])
def test_a_non_reactive_nst_alerts_the_doctor(result: str, alerted: bool) -> None:
    assert bool(r.evaluate_nst(RULES, result, measurement_id="m1", ga_days=34 * 7)) is alerted


def _gain(i: int, status: str) -> r.GainReading:
    return r.GainReading(
        id=f"w{i}",
        ga_days=20 * 7 + i,
        gain_kg=5.0,
        low_kg=1.0,
        high_kg=4.0,
        status=GwgStatus(status),
    )


@pytest.mark.parametrize(
    ("statuses", "refer"),
    [
        (["above"], False),
        (["above", "within"], False),
        (["within", "above"], False),
        (["above", "above"], True),
        (["below", "below"], True),
        (["above", "below"], True),
    ],
)
def test_weight_gain_referral_after_two_in_a_row(statuses: list[str], refer: bool) -> None:
    readings = [_gain(i, s) for i, s in enumerate(statuses)]
    found = r.evaluate_weight_gain(RULES, readings, table_code="wst-801-2022")
    assert bool(found) is refer
    if refer:
        assert found[0].rule.effects == ("nutritionist_referral",)
        assert "wst-801-2022" in found[0].explanation


def test_every_rule_names_its_source_and_year() -> None:
    for rule in RULES.rules.values():
        assert rule.source
        assert 2009 <= rule.year <= 2026


def test_risk_suggestions_only_raise() -> None:
    (gdm,) = r.evaluate_glucose(RULES, {"ogtt_2h": 9.0}, ga_days=GA_26)
    assert r.suggests_higher(gdm, "green")
    assert not r.suggests_higher(gdm, "yellow")
    assert not r.suggests_higher(gdm, "orange")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rule: rule.pop("source"), "source"),
        (lambda rule: rule.update(flags=["diabetes"]), "flags"),
        (lambda rule: rule.pop("at_or_above"), "missing"),
    ],
)
def test_a_broken_rules_file_is_refused(tmp_path: Path, change: object, message: str) -> None:
    raw = json.loads(r.BUILT_IN.read_text(encoding="utf-8"))
    change(raw["rules"][0])  # type: ignore[operator]
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        r.rules(str(bad))


@pytest.mark.parametrize(
    ("lab", "mg_dl", "gdm"),
    [
        ("glucose_fasting", 91, False),
        ("glucose_fasting", 92, True),
        ("ogtt_1h", 179, False),
        ("ogtt_1h", 180, True),
        ("ogtt_2h", 152, False),
        ("ogtt_2h", 153, True),
    ],
)
def test_a_value_sent_in_mg_dl_meets_the_mg_dl_threshold_as_written(
    lab: str, mg_dl: float, gdm: bool
) -> None:
    """180 mg/dL is 9.99 mmol/L converted, yet IADPSG 2010 writes 180 as the 1 h limit."""
    values = {"glucose_fasting": 4.5, "ogtt_1h": 7.0, "ogtt_2h": 6.0, lab: mg_dl * 0.055506}
    found = r.evaluate_glucose(RULES, values, ga_days=GA_26, mg_dl={lab: mg_dl})
    assert ("ogtt.gdm" in _ids(found)) is gdm
    if gdm:
        (f,) = [f for f in found if f.rule.id == "ogtt.gdm"]
        assert "mg/dL" in f.explanation
        assert f.inputs["values_mg_dl"] == {lab: mg_dl}


def test_a_mg_dl_threshold_without_its_mmol_l_one_is_refused(tmp_path: Path) -> None:
    raw = json.loads(r.BUILT_IN.read_text(encoding="utf-8"))
    raw["rules"][1]["at_or_above_mg_dl"] = {"ogtt_2h": 200}  # ogtt.overt: fasting only
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="mg/dL"):
        r.rules(str(bad))


@pytest.mark.parametrize(("mg_dl", "gdm"), [(91.0, False), (91.9, True)])
def test_a_mg_dl_value_whose_conversion_reaches_5_1_fires_too(mg_dl: float, gdm: bool) -> None:
    """91.9 mg/dL is 5.101 mmol/L: the same blood sent as 5.1 mmol/L fires, so it fires."""
    values = {"glucose_fasting": mg_dl * 0.055506, "ogtt_1h": 7.0, "ogtt_2h": 6.0}
    found = r.evaluate_glucose(RULES, values, ga_days=GA_26, mg_dl={"glucose_fasting": mg_dl})
    assert ("ogtt.gdm" in _ids(found)) is gdm
