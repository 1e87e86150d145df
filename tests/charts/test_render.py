"""The renderer, without a database: the SVG is XML holding the readings and the band it was
given, with its title and description first; the PNG is a PNG of the size drawn; no data says
so; a PNG is drawn in English alone where no Chinese font is installed."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest

from app.charts import render
from app.charts.domain import (
    ChartFormat,
    Label,
    PressureChart,
    PressureReading,
    WeightChart,
    latin,
)
from tests.helpers.charts import BAND, PRESSURES, WEIGHTS

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"


def parse(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the service's own output, not a stranger's


def group(root: ET.Element, gid: str) -> ET.Element:
    found = root.find(f".//{SVG}g[@id='{gid}']")
    assert found is not None, gid
    return found


def markers(root: ET.Element, gid: str) -> list[tuple[float, float]]:
    return [
        (float(u.get("x", "0")), float(u.get("y", "0"))) for u in group(root, gid).iter(f"{SVG}use")
    ]


def texts(root: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_weight_svg_holds_every_reading_by_status_and_the_band() -> None:
    root = parse(render.draw(WEIGHTS, ChartFormat.SVG))
    within, above, below = (markers(root, f"readings-{s}") for s in ("within", "above", "below"))
    reported = markers(root, "readings-within-reported")
    assert (len(within), len(above), len(below), len(reported)) == (2, 2, 1, 1)
    # Drawn where they belong: later to the right, heavier higher (SVG y grows downwards).
    by_x = sorted([*within, *reported, *above, *below])
    weights = [58.5, 59.6, 61.0, 65.5, 68.4, 61.2]
    ys = [y for _, y in by_x]
    assert sorted(range(6), key=lambda i: ys[i]) == sorted(range(6), key=lambda i: -weights[i])
    # The band's two edges have a vertex for each band point given.
    for edge in ("weight-band-low", "weight-band-high"):
        path = group(root, edge).find(f".//{SVG}path")
        assert path is not None
        assert path.get("d", "").count("L") + 1 == len(BAND)
    assert group(root, "weight-band").find(f".//{SVG}path") is not None


def test_weight_svg_is_accessible_bilingual_text_and_scales_to_the_screen() -> None:
    root = parse(render.draw(WEIGHTS, ChartFormat.SVG))
    assert root[0].tag == f"{SVG}title"
    assert root[0].text == "体重增长 Weight gain"
    assert root[1].tag == f"{SVG}desc"
    desc = root[1].text or ""
    assert "WS/T 801—2022" in desc
    assert "Normal 18.5–23.9" in desc
    assert "26+0 weeks 68.4 kg (above range)" in desc
    assert "18+0 weeks 61.0 kg (within range) reported by her" in desc
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("height") is None
    assert root.get("viewBox")
    words = texts(root)
    for label in (
        "体重增长 Weight gain",
        "孕周 Gestational age (weeks)",
        "正常 Normal",
        "高于范围 Above range",
    ):
        assert label in words
    assert "Noto Sans CJK SC" in (root.find(f".//{SVG}text").get("style") or "")  # type: ignore[union-attr]


def test_pressure_svg_draws_both_lines_and_rings_readings_at_them() -> None:
    svg = render.draw(PRESSURES, ChartFormat.SVG)
    root = parse(svg)
    assert len(markers(root, "systolic")) == 3
    assert len(markers(root, "systolic-reported")) == 1
    assert len(markers(root, "diastolic")) == 3
    for gid in (
        "line-140-90-systolic",
        "line-140-90-dia",
        "line-160-110-systolic",
        "line-160-110-dia",
    ):
        group(root, gid)
    # 139/89 reaches no line; 140/80: its systolic at 140 (the 80 reaches nothing); 159/110:
    # its diastolic at 110, the severe line (the 159 reaches 140): each ring marks one value.
    assert len(markers(root, "reached-140-90-systolic")) == 2
    assert len(markers(root, "reached-160-110-diastolic")) == 1
    assert "reached-140-90-diastolic" not in svg.decode()
    assert "reached-160-110-systolic" not in svg.decode()
    desc = root[1].text or ""
    assert "24+0 weeks 139/89 mmHg;" in desc
    assert "24+4 weeks 140/80 mmHg (at or above 140/90) reported by her" in desc
    assert "27+1 weeks 159/110 mmHg (at or above 160/110)" in desc
    assert "收缩压 Systolic" in texts(root)
    assert "高血压 Hypertension" in texts(root)


@pytest.mark.parametrize(
    ("chart", "zh", "en"),
    [
        (WeightChart(), "暂无体重记录", "No weight readings yet"),
        (PressureChart(), "暂无血压记录", "No blood pressure readings yet"),
    ],
)
def test_no_data_says_so(chart: WeightChart | PressureChart, zh: str, en: str) -> None:
    root = parse(render.draw(chart, ChartFormat.SVG))
    said = "".join(group(root, "no-data").itertext())
    assert zh in said
    assert en in said
    assert en in (root[1].text or "")
    assert render.draw(chart, ChartFormat.PNG).startswith(b"\x89PNG\r\n\x1a\n")


def test_twins_say_the_table_does_not_cover_them() -> None:
    note = Label("双胎妊娠：WS/T 801—2022 未涵盖", "Twin pregnancy: not covered by WS/T 801—2022")
    chart = WeightChart(readings=WEIGHTS.readings[:2], note=note, pre_pregnancy_weight_kg=58.0)
    root = parse(render.draw(chart, ChartFormat.SVG))
    assert "Twin pregnancy: not covered" in "".join(group(root, "note").itertext())
    assert root.find(f".//{SVG}g[@id='weight-band']") is None


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize("chart", [WEIGHTS, PRESSURES])
def test_png_is_a_png_of_the_size_drawn(chart: WeightChart | PressureChart) -> None:
    png = render.draw(chart, ChartFormat.PNG)
    w, h = png_size(png)
    size = render.FIGSIZE if isinstance(chart, WeightChart) else render.PRESSURE_FIGSIZE
    assert (w, h) == (round(size[0] * render.PNG_DPI), round(size[1] * render.PNG_DPI))
    assert 10_000 < len(png) < 1_000_000


def test_without_a_chinese_font_the_png_is_english_and_the_svg_stays_bilingual(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(render, "cjk_family", lambda: None)
    png = render.draw(WEIGHTS, ChartFormat.PNG)
    assert png_size(png) == (960, 880)
    # The PNG says what it is in its metadata; English alone: no boxes for missing glyphs.
    assert b"Weight gain" in png
    root = parse(render.draw(WEIGHTS, ChartFormat.SVG))
    assert "体重增长 Weight gain" in texts(root)
    from matplotlib.text import Text

    for figure in (
        render._weight_figure(WEIGHTS, cjk=False),
        render._pressure_figure(PRESSURES, cjk=False),
    ):
        drawn = " ".join(t.get_text() for t in figure.findobj(Text))
        assert "Weight" in drawn or "Systolic" in drawn
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in drawn), drawn


def test_the_same_data_gives_the_same_fingerprint_and_other_data_another() -> None:
    assert WEIGHTS.fingerprint() == WeightChart(**WEIGHTS.__dict__).fingerprint()
    moved = WeightChart(**{**WEIGHTS.__dict__, "readings": WEIGHTS.readings[:-1]})
    assert moved.fingerprint() != WEIGHTS.fingerprint()
    assert PRESSURES.fingerprint() != PressureChart().fingerprint()


def test_english_alone_drops_chinese_asides_and_words() -> None:
    assert latin("WS/T 801—2022 covers singletons only (适用于单胎妊娠): none.") == (
        "WS/T 801—2022 covers singletons only: none."
    )
    assert Label("体重", "Weight (kg)").text(cjk=False) == "Weight (kg)"


def test_the_pressure_legend_says_what_the_open_marker_and_the_ring_mean() -> None:
    root = parse(render.draw(PRESSURES, ChartFormat.SVG))
    legend = " ".join("".join(t.itertext()) for t in group(root, "legend_1").iter(f"{SVG}text"))
    assert "Open: systolic she took at home" in legend
    assert "Open: diastolic she took at home" in legend
    assert "Ring: that value reached its 140/90 line" in legend
    assert "Ring: that value reached its 160/110 line" in legend
    assert "Corrected readings are drawn at their corrected value" in texts(root)


def test_the_pressure_legend_names_only_what_is_drawn() -> None:
    calm = PressureChart(readings=(PressureReading(84, 112, 72),))
    legend = texts(parse(render.draw(calm, ChartFormat.SVG)))
    assert "Ring:" not in legend
    assert "Open:" not in legend
