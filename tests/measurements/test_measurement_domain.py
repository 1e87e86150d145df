"""The measurement ranges and units at their edges, BMI and the lab code map: pure, no database.

Each range is tested on both sides of both ends, after conversion (what is stored is what was
checked), with the factors the table names (斤 = 0.5 kg, 1 kPa = 7.50062 mmHg).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.measurements import domain
from app.measurements.domain import Entered, LabKind, MeasurementKind, ReadingError

LIMITS = domain.load_limits()
K = MeasurementKind


def ok(kind: MeasurementKind, value: float | None = None, unit: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return domain.normalise(Entered(kind, value, unit=unit, **kw), LIMITS)  # type: ignore[arg-type]


def refused(
    kind: MeasurementKind, value: float | None = None, unit: str | None = None, **kw: object
) -> ReadingError:
    with pytest.raises(ReadingError) as caught:
        ok(kind, value, unit, **kw)
    return caught.value


@pytest.mark.parametrize(
    ("kind", "low", "high", "unit"),
    [
        (K.WEIGHT, 30, 250, "kg"),
        (K.PRE_PREGNANCY_WEIGHT, 30, 250, "kg"),
        (K.HEIGHT, 120, 210, "cm"),
        (K.PULSE, 30, 220, "bpm"),
        (K.FUNDAL_HEIGHT, 5, 50, "cm"),
        (K.FETAL_HEART_RATE, 50, 240, "bpm"),
    ],
)
def test_each_range_includes_its_ends_and_refuses_just_beyond(
    kind: MeasurementKind, low: float, high: float, unit: str
) -> None:
    step = 10 ** -LIMITS.kinds[kind].decimals
    assert ok(kind, low).value == low
    assert ok(kind, high).value == high
    assert ok(kind, low, unit).unit == unit
    for beyond in (low - step, high + step):
        error = refused(kind, beyond)
        assert error.field == "value"
        assert f"{low:g}-{high:g} {unit}" in error.detail


def test_weight_in_jin_grams_and_pounds_is_stored_in_kg() -> None:
    assert ok(K.WEIGHT, 121, "斤").value == 60.5
    assert ok(K.WEIGHT, 121, "jin").value == 60.5
    assert ok(K.WEIGHT, 121, "市斤").value == 60.5
    assert ok(K.WEIGHT, 60500, "g").value == 60.5
    assert ok(K.WEIGHT, 133.4, "lb").value == 60.51  # 133.4 x 0.45359237 = 60.509...
    assert ok(K.WEIGHT, 60.5, " KG ").value == 60.5  # case and spaces do not matter
    # 60 斤 is 30 kg, the lowest plausible weight; 59 斤 (29.5 kg) is an entry error.
    assert ok(K.WEIGHT, 60, "斤").value == 30
    assert "29.5 kg (59 斤)" in refused(K.WEIGHT, 59, "斤").detail
    # The classic slip: a weight in 斤 entered as kg.
    assert refused(K.WEIGHT, 251).field == "value"


def test_an_unknown_unit_is_refused_naming_the_unit_and_what_is_accepted() -> None:
    error = refused(K.WEIGHT, 60, "stone")
    assert error.field == "unit"
    assert "斤" in error.detail
    assert "lb" in error.detail
    assert refused(K.FUNDAL_HEIGHT, 10, "in").field == "unit"  # centimetres only


def test_blood_pressure_in_kpa_is_converted_to_mmhg() -> None:
    bp = ok(K.BLOOD_PRESSURE, 18.7, "kPa", value2=12.0)
    assert (bp.value, bp.value2, bp.unit) == (140, 90, "mmHg")  # 18.7 x 7.50062 = 140.26
    assert ok(K.BLOOD_PRESSURE, 120, value2=80).value == 120  # mmHg by default


def test_blood_pressure_is_stored_in_whole_mmhg_rounded_half_up() -> None:
    """As clinical practice records it: 21.3 kPa (159.76 mmHg) is 160, a severe systolic, not
    159.8, which read below the 160/110 line and raised no alert (issue 16 review)."""
    bp = ok(K.BLOOD_PRESSURE, 21.3, "kpa", value2=13.3)  # 159.763 / 99.758
    assert (bp.value, bp.value2) == (160, 100)
    assert ok(K.BLOOD_PRESSURE, 21.2, "kPa", value2=14.7).value == 159  # 159.013
    assert ok(K.BLOOD_PRESSURE, 21.2, "kPa", value2=14.7).value2 == 110  # 110.259
    assert ok(K.BLOOD_PRESSURE, 18.6, "kPa", value2=11.9).value == 140  # 139.51: half up
    assert ok(K.BLOOD_PRESSURE, 18.6, "kPa", value2=11.9).value2 == 89  # 89.257
    assert ok(K.BLOOD_PRESSURE, 139.5, value2=89.5).value == 140  # mmHg halves go up too
    assert ok(K.BLOOD_PRESSURE, 139.5, value2=89.5).value2 == 90
    assert ok(K.BLOOD_PRESSURE, 139.4, value2=89.4).value == 139
    assert LIMITS.kinds[K.BLOOD_PRESSURE].decimals == 0


def test_blood_pressure_ranges_and_systolic_above_diastolic() -> None:
    assert ok(K.BLOOD_PRESSURE, 60, value2=30).value == 60
    assert ok(K.BLOOD_PRESSURE, 260, value2=160).value2 == 160
    # The range is checked on the whole mmHg stored: 59.5 is 60, 59.4 is 59.
    assert ok(K.BLOOD_PRESSURE, 59.5, value2=30).value == 60
    assert refused(K.BLOOD_PRESSURE, 59.4, value2=40).field == "value"
    assert refused(K.BLOOD_PRESSURE, 260.5, value2=100).field == "value"
    assert refused(K.BLOOD_PRESSURE, 120, value2=29.4).field == "value2"
    assert refused(K.BLOOD_PRESSURE, 200, value2=160.5).field == "value2"
    swapped = refused(K.BLOOD_PRESSURE, 80, value2=120)
    assert swapped.field == "value2"
    assert "swapped" in swapped.detail
    assert refused(K.BLOOD_PRESSURE, 90, value2=90).field == "value2"  # equal: not below
    assert refused(K.BLOOD_PRESSURE, 120).field == "value2"  # the diastolic is required
    assert refused(K.PULSE, 80, value2=60).field == "value2"  # only blood pressure has two
    # A kPa reading out of range says both units.
    assert "(35 kPa)" in refused(K.BLOOD_PRESSURE, 35, "kPa", value2=12).detail


def test_urine_protein_and_nst_are_results_with_their_spellings() -> None:
    for spelling, word, ordinal in [
        ("negative", "negative", 0),
        ("-", "negative", 0),
        ("阴性", "negative", 0),
        ("±", "trace", 0.5),
        ("trace", "trace", 0.5),
        ("+", "1+", 1),
        ("++", "2+", 2),
        ("3+", "3+", 3),
        ("++++", "4+", 4),
    ]:
        reading = ok(K.URINE_PROTEIN, result=spelling)
        assert (reading.result, reading.value) == (word, ordinal), spelling
    assert ok(K.NST, result="non-reactive").result == "non_reactive"
    assert ok(K.NST, result="反应型").result == "reactive"
    assert refused(K.URINE_PROTEIN, result="+++++").field == "result"
    assert refused(K.NST).field == "result"
    assert refused(K.NST, 1, result="reactive").field == "value"
    assert refused(K.WEIGHT, 60, result="heavy").field == "result"


@pytest.mark.parametrize(
    ("height", "weight", "expected"),
    [(160, 47.36, 18.5), (165, 65.34, 24.0), (170, 80.92, 28.0), (160, 47.33, 18.488)],
)
def test_bmi_is_exact_at_the_group_boundaries(
    height: float, weight: float, expected: float
) -> None:
    # 47.36 / 1.6² is 18.5 exactly: binary floats would make it 18.4999..., the wrong group.
    assert domain.bmi(height, weight) == pytest.approx(expected, abs=0.0005)
    if expected in (18.5, 24.0, 28.0):
        assert domain.bmi(height, weight) >= expected


def test_the_lab_codes_map_hb_glucose_and_the_ogtt() -> None:
    assert domain.lab_kind("718-7", "Hemoglobin") is LabKind.HAEMOGLOBIN
    assert domain.lab_kind(" 20509-6 ", None) is LabKind.HAEMOGLOBIN
    assert domain.lab_kind("1558-6", None) is LabKind.GLUCOSE_FASTING
    assert domain.lab_kind("14771-0", None) is LabKind.GLUCOSE_FASTING
    assert domain.lab_kind("1507-3", None) is LabKind.OGTT_1H
    assert domain.lab_kind("1518-0", None) is LabKind.OGTT_2H
    assert domain.lab_kind("14995-5", None) is LabKind.OGTT_2H
    assert domain.lab_kind("2345-7", None) is LabKind.GLUCOSE
    assert domain.lab_kind("777-3", "Platelets") is None
    # 1504-0 is the 50 g challenge; some senders use it for the 75 g OGTT's 1 h draw.
    display = "Glucose 1 hour post 75 g glucose PO"
    assert domain.lab_kind("1504-0", display) is LabKind.OGTT_1H
    assert domain.lab_kind("1504-0", "Glucose 1 hour post 50 g glucose PO") is LabKind.GLUCOSE
    assert domain.lab_kind("1504-0", None) is LabKind.GLUCOSE


def test_lab_values_are_converted_to_g_per_l_and_mmol_per_l() -> None:
    assert domain.lab_value(LabKind.HAEMOGLOBIN, 10.9, "g/dL") == 109.0
    assert domain.lab_value(LabKind.HAEMOGLOBIN, 109, "g/L") == 109.0
    assert domain.lab_value(LabKind.OGTT_1H, 180, "mg/dL") == 10.0  # IADPSG's 180 = 10.0
    assert domain.lab_value(LabKind.GLUCOSE_FASTING, 92, "mg/dl") == 5.1
    assert domain.lab_value(LabKind.OGTT_2H, 153, "mg/dL") == 8.5
    assert domain.lab_value(LabKind.GLUCOSE_FASTING, 5.09, "mmol/L") == 5.1  # half up
    assert domain.lab_value(LabKind.GLUCOSE_FASTING, 5.04, "mmol/L") == 5.0
    assert domain.lab_value(LabKind.GLUCOSE, 5.0, "mmol/mol") is None  # never guessed
    assert domain.lab_value(LabKind.GLUCOSE, 5.0, None) is None


def test_the_built_in_tables_name_their_sources() -> None:
    for limits in LIMITS.kinds.values():
        assert limits.source
    assert "1959" in LIMITS.kinds[K.WEIGHT].source  # 斤
    assert "133.322" in LIMITS.kinds[K.BLOOD_PRESSURE].source  # kPa
    codes = domain.load_lab_codes()
    assert all(u.source for u in codes.units.values())


def test_a_malformed_limits_table_fails_loudly(tmp_path: Path) -> None:
    data = json.loads(domain.LIMITS_FILE.read_text(encoding="utf-8"))
    data["kinds"]["weight"]["hihg"] = data["kinds"]["weight"].pop("high")
    bad = tmp_path / "limits.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown keys hihg"):
        domain.load_limits(bad)
    del data["kinds"]["weight"]
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="no limits for weight"):
        domain.load_limits(bad)
