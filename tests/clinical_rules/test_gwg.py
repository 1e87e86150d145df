"""The weight-gain engine against WS/T 801—2022 and IOM 2009, pure (no database).

Cases (case → expected → source):
- BMI 18.49 / 18.5, 23.99 / 24.0, 27.99 / 28.0 → low / normal, normal / overweight, overweight /
  obese → WS/T 801—2022 table 1; IOM's 24.99 / 25.0 and 29.99 / 30.0 → IOM 2009 (WHO groups)
- totals and weekly ranges of every group → WS/T 801—2022 table 2; IOM 2009 table S-1
- 13+6 / 14+0 → the first-trimester range, then a seventh of the weekly range more (derivation)
- 40+0 and after → the band stops at 40+0
- twins → not covered (WS/T 801 is for singletons)
- two readings in a row outside → referral; one outside, or outside then within → none
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.clinical import gwg
from app.clinical.gwg import Band, GwgStatus, NotCovered, Range

WST = gwg.table("wst-801-2022")
IOM = gwg.table("iom-2009")


def test_the_default_table_is_wst_801() -> None:
    assert gwg.table().code == "wst-801-2022"
    assert gwg.table().year == 2022
    assert "WS/T 801" in gwg.table().source


@pytest.mark.parametrize(
    ("bmi", "code"),
    [
        (12.0, "low"),
        (18.49, "low"),
        (18.5, "normal"),
        (23.99, "normal"),
        (24.0, "overweight"),
        (27.99, "overweight"),
        (28.0, "obese"),
        (45.0, "obese"),
    ],
)
def test_wst_801_bmi_groups_at_their_boundaries(bmi: float, code: str) -> None:
    assert gwg.group(WST, bmi).code == code


@pytest.mark.parametrize(
    ("bmi", "code"),
    [
        (18.49, "low"),
        (18.5, "normal"),
        (24.0, "normal"),
        (24.99, "normal"),
        (25.0, "overweight"),
        (29.99, "overweight"),
        (30.0, "obese"),
    ],
)
def test_iom_2009_bmi_groups_at_their_boundaries(bmi: float, code: str) -> None:
    assert gwg.group(IOM, bmi).code == code


@pytest.mark.parametrize(
    ("table_code", "group_code", "total", "weekly", "mean"),
    [
        ("wst-801-2022", "low", (11.0, 16.0), (0.37, 0.56), 0.46),
        ("wst-801-2022", "normal", (8.0, 14.0), (0.26, 0.48), 0.37),
        ("wst-801-2022", "overweight", (7.0, 11.0), (0.22, 0.37), 0.30),
        ("wst-801-2022", "obese", (5.0, 9.0), (0.15, 0.30), 0.22),
        ("iom-2009", "low", (12.5, 18.0), (0.44, 0.58), 0.51),
        ("iom-2009", "normal", (11.5, 16.0), (0.35, 0.50), 0.42),
        ("iom-2009", "overweight", (7.0, 11.5), (0.23, 0.33), 0.28),
        ("iom-2009", "obese", (5.0, 9.0), (0.17, 0.27), 0.22),
    ],
)
def test_targets_reproduce_the_printed_tables(
    table_code: str,
    group_code: str,
    total: tuple[float, float],
    weekly: tuple[float, float],
    mean: float,
) -> None:
    table = gwg.table(table_code)
    (group,) = [g for g in table.groups if g.code == group_code]
    targets = gwg.targets(table, group)
    assert targets.total == Range(*total)
    assert targets.weekly == Range(*weekly)
    assert targets.weekly_mean_kg == mean
    first = (0.0, 2.0) if table_code == "wst-801-2022" else (0.5, 2.0)
    assert targets.first_trimester == Range(*first)


@pytest.mark.parametrize(
    ("bmi", "weekly_low", "weekly_high"),
    [(18.0, 0.37, 0.56), (22.0, 0.26, 0.48), (26.0, 0.22, 0.37), (30.0, 0.15, 0.30)],
)
def test_wst_801_band_at_13_6_and_14_0(bmi: float, weekly_low: float, weekly_high: float) -> None:
    group = gwg.group(WST, bmi)
    assert gwg.band(WST, group, 0) == Band(0.0, 2.0)
    assert gwg.band(WST, group, 13 * 7 + 6) == Band(0.0, 2.0)  # 13+6: the trimester's range
    at_14 = gwg.band(WST, group, 14 * 7)  # 14+0: a seventh of the weekly range added
    assert at_14.low_kg == pytest.approx(weekly_low / 7)
    assert at_14.high_kg == pytest.approx(2.0 + weekly_high / 7)
    at_20_6 = gwg.band(WST, group, 20 * 7 + 6)  # one full week after every week to 20+6
    assert at_20_6.low_kg == pytest.approx(weekly_low * 7)
    assert at_20_6.high_kg == pytest.approx(2.0 + weekly_high * 7)


def test_the_band_grows_by_exactly_the_weekly_range_each_week() -> None:
    for table in (WST, IOM):
        for group in table.groups:
            for day in range(98, 274):
                now, week_on = gwg.band(table, group, day), gwg.band(table, group, day + 7)
                assert week_on.low_kg - now.low_kg == pytest.approx(group.weekly.low_kg)
                assert week_on.high_kg - now.high_kg == pytest.approx(group.weekly.high_kg)


def test_iom_first_trimester_low_end_rises_to_half_a_kilo_by_13_6() -> None:
    normal = gwg.group(IOM, 22.0)
    assert gwg.band(IOM, normal, 0) == Band(0.0, 2.0)
    assert gwg.band(IOM, normal, 97).low_kg == pytest.approx(0.5)
    assert gwg.band(IOM, normal, 98).low_kg == pytest.approx(0.5 + 0.35 / 7)


def test_the_band_stops_at_term() -> None:
    normal = gwg.group(WST, 22.0)
    at_term = gwg.band(WST, normal, 280)
    assert at_term.low_kg == pytest.approx(0.26 * 183 / 7)  # 6.8 kg, derived
    assert at_term.high_kg == pytest.approx(2.0 + 0.48 * 183 / 7)  # 14.5 kg
    assert gwg.band(WST, normal, 290) == at_term


def test_a_negative_day_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        gwg.band(WST, gwg.group(WST, 22.0), -1)


def test_status_includes_the_band_ends() -> None:
    b = Band(1.0, 3.0)
    assert gwg.status(0.99, b) is GwgStatus.BELOW
    assert gwg.status(1.0, b) is GwgStatus.WITHIN
    assert gwg.status(3.0, b) is GwgStatus.WITHIN
    assert gwg.status(3.01, b) is GwgStatus.ABOVE


def test_twins_are_not_covered_by_wst_801_nor_banded_by_iom() -> None:
    with pytest.raises(NotCovered, match="singleton"):
        gwg.group(WST, 22.0, fetuses=2)
    with pytest.raises(NotCovered, match="provisional"):
        gwg.group(IOM, 22.0, fetuses=2)


@pytest.mark.parametrize(
    ("statuses", "refer"),
    [
        ([], False),
        (["above"], False),
        (["above", "within"], False),
        (["within", "above"], False),
        (["above", "above"], True),
        (["below", "above"], True),
        (["above", "above", "within"], False),
    ],
)
def test_two_readings_in_a_row_outside_refer(statuses: list[str], refer: bool) -> None:
    assert gwg.outside_twice([GwgStatus(s) for s in statuses]) is refer


def test_a_file_whose_groups_do_not_meet_is_refused(tmp_path: Path) -> None:
    raw = json.loads(gwg.BUILT_IN.read_text(encoding="utf-8"))
    raw["tables"][0]["groups"][1]["bmi_from"] = 18.6
    bad = tmp_path / "gwg.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="do not meet"):
        gwg.tables(str(bad))


def test_an_unknown_table_is_refused() -> None:
    with pytest.raises(ValueError, match="GWG_TABLE"):
        gwg.table("who-2099")
