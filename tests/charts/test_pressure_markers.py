"""The blood-pressure chart's markers say one thing each (the probe's F7): a ring marks the
value that reached its own line (160/100 rings the 160 at the severe line, the 100 at the
hypertension line, never the 100 as severe); the legend names both series' home markers;
a home reading is never joined to a clinic reading; the labels are bilingual with the CJK
font, in English alone without it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from app.charts import render
from app.charts.domain import ChartFormat, PressureChart, PressureReading
from tests.helpers.charts import WEIGHTS

SVG = "{http://www.w3.org/2000/svg}"

CHART = PressureChart(
    readings=(
        PressureReading(150, 118, 76),
        PressureReading(170, 142, 88),
        PressureReading(180, 160, 100),  # the station's
        PressureReading(180, 128, 82, reported_by_mother=True),  # hers at home, the same day
        PressureReading(186, 126, 80),
    )
)


def parse(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the service's own output


def uses(root: ET.Element, gid: str) -> list[tuple[float, float]]:
    found = root.find(f".//{SVG}g[@id='{gid}']")
    if found is None:
        return []
    return [(float(u.get("x", "0")), float(u.get("y", "0"))) for u in found.iter(f"{SVG}use")]


def vertices(root: ET.Element, gid: str) -> int:
    found = root.find(f".//{SVG}g[@id='{gid}']")
    assert found is not None, gid
    path = found.find(f".//{SVG}path")
    assert path is not None
    return len(re.findall(r"[ML]", path.get("d", "")))


def legend(root: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_each_value_is_ringed_only_at_its_own_line() -> None:
    root = parse(render.draw(CHART, ChartFormat.SVG))
    assert len(uses(root, "reached-160-110-systolic")) == 1  # the 160
    assert uses(root, "reached-160-110-diastolic") == []  # 100 is not severe
    assert len(uses(root, "reached-140-90-systolic")) == 1  # the 142
    assert len(uses(root, "reached-140-90-diastolic")) == 1  # the 100 reached 90
    # The 100's ring is at the diastolic marker, not at the systolic one.
    (ring,) = uses(root, "reached-140-90-diastolic")
    assert ring in uses(root, "diastolic")


def test_a_home_reading_is_not_joined_to_the_clinic_readings() -> None:
    root = parse(render.draw(CHART, ChartFormat.SVG))
    assert vertices(root, "systolic-trend") == 4  # the four clinic readings
    assert vertices(root, "diastolic-trend") == 4
    assert len(uses(root, "systolic-reported")) == 1  # drawn, unjoined


def test_the_legend_names_both_home_markers_and_what_a_ring_means() -> None:
    words = legend(parse(render.draw(CHART, ChartFormat.SVG)))
    assert "空心: 收缩压 在家自报 Open: systolic she took at home" in words
    assert "空心: 舒张压 在家自报 Open: diastolic she took at home" in words
    assert "Ring: that value reached its 160/110 line" in words
    assert "圈: 该值达到其 140/90 线" in words
    assert "reached 160/110" not in words.replace("its 160/110", "")


def test_the_png_is_bilingual_with_the_cjk_font_and_english_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if render.cjk_family() is None:
        pytest.skip("no CJK font installed (fonts-noto-cjk)")
    png = render.draw(CHART, ChartFormat.PNG)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert render.PRESSURE_FIGSIZE[1] > render.FIGSIZE[1]  # room for the legend, one a line
    monkeypatch.setattr(render, "cjk_family", lambda: None)
    english = render.draw(CHART, ChartFormat.PNG)
    assert english[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_weight_trend_joins_her_clinic_weights_only() -> None:
    root = parse(render.draw(WEIGHTS, ChartFormat.SVG))
    assert vertices(root, "weight-trend") == 5  # six readings, one hers at home
    assert "Open: taken at home" in legend(root)
