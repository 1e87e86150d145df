"""Drawing the charts with matplotlib: one figure, saved as SVG or PNG.

Pure: chart data in, bytes out. matplotlib is imported on the first drawing (the service
starts without it), with the Agg canvas only (no pyplot, no GUI backend, no global figure
list). Its settings (rcParams) and font cache are process-wide, so one drawing runs at a time
(a lock); the router calls `draw` in a worker thread, off the event loop.

Sized for a phone: 4.8 x 4.4 in with 10-11 pt text, so that at 360 CSS px wide (the SVG
scales to its container) the smallest text is about 11 px. Chinese first with English. The
SVG keeps text as text (a screen reader and a search find it) and starts with <title> and
<desc>; the PNG is drawn at 200 dpi (960 x 880 px).

Fonts: Noto Sans CJK (Debian fonts-noto-cjk) or another CJK font when one is installed. With
none, the PNG is drawn in English only (boxes in place of Chinese would be worse); the SVG
keeps both languages, since the viewer's browser draws its text with its own fonts.
"""

from __future__ import annotations

import re
import textwrap
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import escape

from app.charts.domain import (
    NO_PRESSURE,
    NO_WEIGHT,
    PRESSURE_TITLE,
    STATUS_LABELS,
    WEIGHT_TITLE,
    ChartFormat,
    GainStatus,
    Label,
    PressureChart,
    PressureLine,
    WeightChart,
    describe_pressure,
    describe_weight,
    latin,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Tried in order; the first installed is used. Debian's fonts-noto-cjk registers its .ttc under
# the name of its first face (JP); the others are what a hospital's machine may have instead.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
)
# Where Debian puts them, for a font cache made before the fonts were installed.
CJK_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
LATIN = "DejaVu Sans"
# What the SVG asks the viewer's browser for (its own fonts draw the text).
SVG_FONTS = (
    "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', "
    "'Hiragino Sans GB', 'Microsoft YaHei', 'DejaVu Sans', Arial, sans-serif"
)

FIGSIZE = (4.8, 4.4)
# The blood-pressure chart is taller: its legend, one entry a line (bilingual labels are long),
# names the series, both lines, the rings and both series' home markers.
PRESSURE_FIGSIZE = (4.8, 5.6)
PNG_DPI = 200

INK = "#222222"
MUTED = "#666666"
GRID = "#e3e3e3"
BAND_FILL = "#d9f0d3"
BAND_EDGE = "#5aae61"
# Status colours and shapes (colour-blind safe: the shape says it too).
STATUS_STYLE = {
    GainStatus.WITHIN: ("#1b7837", "o"),
    GainStatus.BELOW: ("#2166ac", "v"),
    GainStatus.ABOVE: ("#b2182b", "^"),
}
NO_STATUS = ("#333333", "o")
SYSTOLIC = "#23395d"
DIASTOLIC = "#2a9d8f"
HIGH = "#d95f02"
SEVERE_COLOUR = "#b2182b"

_lock = threading.Lock()


@cache
def cjk_family() -> str | None:
    """The CJK font family matplotlib will draw with, or None when none is installed."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if not any(name in names for name in CJK_FAMILIES):
        for path in CJK_FILES:
            if Path(path).is_file():
                font_manager.fontManager.addfont(path)
        names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in names), None)


def draw(chart: WeightChart | PressureChart, fmt: ChartFormat) -> bytes:
    """The chart as an SVG document or a PNG image (blocking: call it in a thread)."""
    with _lock, _style(fmt) as cjk, warnings.catch_warnings():
        # An SVG drawn where no CJK font is installed measures its Chinese with boxes: the
        # viewer's fonts draw it, so matplotlib's warning for each glyph says nothing useful.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        if isinstance(chart, WeightChart):
            fig = _weight_figure(chart, cjk=cjk)
            title, desc = WEIGHT_TITLE, describe_weight(chart)
        else:
            fig = _pressure_figure(chart, cjk=cjk)
            title, desc = PRESSURE_TITLE, describe_pressure(chart)
        out = BytesIO()
        if fmt is ChartFormat.PNG:
            fig.savefig(out, format="png", dpi=PNG_DPI, metadata={"Title": title.en})
            return out.getvalue()
        # No Title here: matplotlib would write a second <title> (ours has an id).
        fig.savefig(out, format="svg", metadata={"Date": None})
        return _accessible_svg(out.getvalue().decode(), title.text(), desc).encode()


@contextmanager
def _style(fmt: ChartFormat) -> Iterator[bool]:
    import matplotlib

    family = cjk_family()
    # The SVG's text is drawn by the viewer: it is bilingual whatever this machine has.
    cjk = family is not None or fmt is ChartFormat.SVG
    fonts = [family, LATIN] if family else [LATIN]
    with matplotlib.rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": fonts,
            "font.size": 10,
            "axes.titlesize": 9,
            "axes.labelsize": 10,
            "axes.edgecolor": MUTED,
            "axes.labelcolor": INK,
            "xtick.color": MUTED,
            "ytick.color": MUTED,
            "xtick.labelcolor": INK,
            "ytick.labelcolor": INK,
            "legend.fontsize": 9,
            "svg.fonttype": "none",
            "svg.hashsalt": "pregnancy-butler-charts",
            "figure.facecolor": "white",
        }
    ):
        yield cjk


def _figure(size: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _weeks(days: Sequence[int]) -> list[float]:
    return [d / 7 for d in days]


def _ga_axis(ax: Axes, last_days: int, *, cjk: bool) -> None:
    right = max(41.0, last_days / 7 + 1)
    ax.set_xlim(0, right)
    ax.set_xticks(range(0, int(right) + 1, 4))
    ax.set_xlabel(Label("孕周", "Gestational age (weeks)").text(cjk=cjk))


def _empty(ax: Axes, label: Label, *, cjk: bool) -> None:
    text = f"{label.zh}\n{label.en}" if cjk else latin(label.en)
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=MUTED,
        gid="no-data",
    )


def _note(ax: Axes, label: Label, *, cjk: bool) -> None:
    # Wrapped to the phone's width: about 30 Chinese or 48 Latin characters at 9 pt.
    en = textwrap.fill(label.en if cjk else latin(label.en), 48)
    text = f"{textwrap.fill(label.zh, 30)}\n{en}" if cjk and label.zh else en
    ax.text(
        0.02,
        0.98,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9,
        color=SEVERE_COLOUR,
        gid="note",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": SEVERE_COLOUR, "alpha": 0.85},
    )


def _weight_figure(chart: WeightChart, *, cjk: bool) -> Figure:
    fig, ax = _figure()
    fig.suptitle(WEIGHT_TITLE.text(cjk=cjk), fontsize=13, fontweight="bold", color=INK)
    subtitle = []
    if chart.table and chart.group:
        group = chart.group.text(cjk=cjk)
        if chart.bmi is not None:
            group += f" (BMI {chart.bmi:.1f})"
        subtitle.append(f"{chart.table.text(cjk=cjk)} · {group}")
    if chart.pre_pregnancy_weight_kg is not None:
        pre = Label("孕前", "Pre-pregnancy").text(cjk=cjk)
        subtitle.append(f"{pre} {chart.pre_pregnancy_weight_kg:.1f} kg")
    if subtitle:
        ax.set_title("\n".join(subtitle), loc="left", color=MUTED)

    handles: list[Any] = []
    values: list[float] = []
    if chart.band:
        x = _weeks([b.ga_days for b in chart.band])
        low = [b.low_kg for b in chart.band]
        high = [b.high_kg for b in chart.band]
        band = ax.fill_between(
            x,
            low,
            high,
            facecolor=BAND_FILL,
            edgecolor=BAND_EDGE,
            linewidth=0,
            label=Label("预期范围", "Expected range").text(cjk=cjk),
            gid="weight-band",
        )
        ax.plot(x, low, color=BAND_EDGE, linewidth=0.8, linestyle="--", gid="weight-band-low")
        ax.plot(x, high, color=BAND_EDGE, linewidth=0.8, linestyle="--", gid="weight-band-high")
        handles.append(band)
        values += low + high
    if chart.readings:
        ordered = sorted(chart.readings, key=lambda r: r.ga_days)
        clinic = [r for r in ordered if not r.reported_by_mother]  # hers at home: unjoined
        ax.plot(
            _weeks([r.ga_days for r in clinic]),
            [r.weight_kg for r in clinic],
            color=MUTED,
            linewidth=0.8,
            gid="weight-trend",
        )
        groups: dict[tuple[GainStatus | None, bool], list[Any]] = {}
        for r in ordered:
            groups.setdefault((r.status, r.reported_by_mother), []).append(r)
        for (status, reported), rows in groups.items():
            colour, marker = STATUS_STYLE[status] if status else NO_STATUS
            (line,) = ax.plot(
                _weeks([r.ga_days for r in rows]),
                [r.weight_kg for r in rows],
                linestyle="none",
                marker=marker,
                markersize=7,
                color=colour,
                markerfacecolor="white" if reported else colour,
                markeredgewidth=1.4,
                gid=f"readings-{status or 'none'}{'-reported' if reported else ''}",
            )
            if not reported:
                line.set_label(
                    STATUS_LABELS[status].text(cjk=cjk)
                    if status
                    else Label("体重", "Weight").text(cjk=cjk)
                )
                handles.append(line)
        if any(r.reported_by_mother for r in ordered):
            handles.append(_reported_handle(ax, cjk=cjk))
        values += [r.weight_kg for r in ordered]
    else:
        _empty(ax, NO_WEIGHT, cjk=cjk)
    if chart.note:
        _note(ax, chart.note, cjk=cjk)
    last = max([r.ga_days for r in chart.readings] + [b.ga_days for b in chart.band] + [0])
    _ga_axis(ax, last, cjk=cjk)
    if values:
        # Room above for the note, so that it hides no reading.
        ax.set_ylim(min(values) - 3, max(values) + (6 if chart.note else 3))
    ax.set_ylabel(Label("体重", "Weight (kg)").text(cjk=cjk))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    return fig


REPORTED = Label("空心: 在家自报", "Open: taken at home")
CORRECTED_NOTE = Label(
    "更正的读数按更正值显示", "Corrected readings are drawn at their corrected value"
)


def _reported_handle(ax: Axes, *, cjk: bool, marker: str = "o") -> Any:
    """The legend's open marker, in the readings' own shape (on the blood-pressure chart a
    triangle: its circles are the rings of a reading at a line, which the legend names)."""
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        linestyle="none",
        marker=marker,
        markersize=7,
        color=MUTED,
        markerfacecolor="white",
        markeredgewidth=1.4,
        label=REPORTED.text(cjk=cjk),
        gid="legend-reported",
    )


def _home_handle(label: Label, colour: str, marker: str, gid: str, *, cjk: bool) -> Any:
    """The legend's open marker of one series' home readings, in its colour and shape."""
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        linestyle="none",
        marker=marker,
        markersize=7,
        color=colour,
        markerfacecolor="white",
        markeredgewidth=1.4,
        label=Label(
            f"空心: {label.zh} 在家自报", f"Open: {label.en.lower()} she took at home"
        ).text(cjk=cjk),
        gid=gid,
    )


def _ring_handle(line: PressureLine, *, cjk: bool) -> Any:
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        linestyle="none",
        marker="o",
        markersize=11,
        markerfacecolor="none",
        markeredgecolor=SEVERE_COLOUR if line.severe else HIGH,
        markeredgewidth=1.4,
        label=Label(
            f"圈: 该值达到其 {line.systolic:g}/{line.diastolic:g} 线",
            f"Ring: that value reached its {line.systolic:g}/{line.diastolic:g} line",
        ).text(cjk=cjk),
        gid=f"legend-ring-{line.systolic:g}-{line.diastolic:g}",
    )


def _pressure_figure(chart: PressureChart, *, cjk: bool) -> Figure:
    from matplotlib.lines import Line2D

    fig, ax = _figure(PRESSURE_FIGSIZE)
    fig.suptitle(PRESSURE_TITLE.text(cjk=cjk), fontsize=13, fontweight="bold", color=INK)
    ax.set_title("mmHg", loc="left", color=MUTED)
    top = max([180.0] + [r.systolic + 10 for r in chart.readings])
    bottom = min([40.0] + [r.diastolic - 10 for r in chart.readings])
    handles: list[Any] = []
    series: list[Any] = []
    for line in sorted(chart.lines, key=lambda li: li.systolic):
        colour = SEVERE_COLOUR if line.severe else HIGH
        style: Literal["-", "--"] = "-" if line.severe else "--"
        tag = f"line-{line.systolic:g}-{line.diastolic:g}"
        for mmhg, gid in ((line.systolic, f"{tag}-systolic"), (line.diastolic, f"{tag}-dia")):
            ax.axhline(mmhg, color=colour, linestyle=style, linewidth=1.1, gid=gid)
            ax.text(
                0.4,
                mmhg + 1.5,
                f"{mmhg:g}",
                color=colour,
                fontsize=9,
                va="bottom",
                gid=f"{gid}-label",
            )
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linestyle=style,
                label=f"≥ {line.systolic:g}/{line.diastolic:g} {line.label.text(cjk=cjk)}",
            )
        )
    if chart.rules_from_ga_days is not None:
        week = chart.rules_from_ga_days / 7
        ax.axvline(week, color=GRID, linewidth=1.5, zorder=0, gid="rules-from")
        ax.text(
            week + 0.3,
            bottom + 2,
            f"{week:g}" + (" 周" if cjk else " wk"),
            color=MUTED,
            fontsize=8,
            va="bottom",
        )
    if chart.readings:
        ordered = sorted(chart.readings, key=lambda r: r.ga_days)
        x = _weeks([r.ga_days for r in ordered])
        home: list[Any] = []
        for name, values, colour, marker, label in (
            ("systolic", [r.systolic for r in ordered], SYSTOLIC, "v", Label("收缩压", "Systolic")),
            (
                "diastolic",
                [r.diastolic for r in ordered],
                DIASTOLIC,
                "^",
                Label("舒张压", "Diastolic"),
            ),
        ):
            # The trend joins her clinic readings only: a line from a clinic reading to one
            # she took at home the same day read as one reading with a range, or a fall.
            clinic = [
                (w, v)
                for w, v, r in zip(x, values, ordered, strict=True)
                if not r.reported_by_mother
            ]
            if len(clinic) > 1:
                ax.plot(
                    [w for w, _ in clinic],
                    [v for _, v in clinic],
                    color=colour,
                    linewidth=1.2,
                    gid=f"{name}-trend",
                )
            for reported in (False, True):
                rows = [
                    (w, v)
                    for w, v, r in zip(x, values, ordered, strict=True)
                    if r.reported_by_mother is reported
                ]
                if not rows:
                    continue
                ax.plot(
                    [w for w, _ in rows],
                    [v for _, v in rows],
                    linestyle="none",
                    marker=marker,
                    markersize=7,
                    color=colour,
                    markerfacecolor="white" if reported else colour,
                    markeredgewidth=1.4,
                    gid=f"{name}{'-reported' if reported else ''}",
                )
                if reported:
                    home.append(
                        _home_handle(label, colour, marker, f"legend-{name}-reported", cjk=cjk)
                    )
            series.append(Line2D([], [], color=colour, marker=marker, label=label.text(cjk=cjk)))
        # A ring around each value at or above its own line (the systolic at the systolic
        # line, the diastolic at the diastolic line: 160/100 rings the 160, not the 100), in
        # the colour of the highest line it reaches.
        reached: dict[tuple[float, float], PressureLine] = {}
        for name, values, level_of in (
            ("systolic", [r.systolic for r in ordered], chart.systolic_level),
            ("diastolic", [r.diastolic for r in ordered], chart.diastolic_level),
        ):
            rings: dict[tuple[float, float], list[tuple[float, float]]] = {}
            for r, week, value in zip(ordered, x, values, strict=True):
                level = level_of(r)
                if level is None:
                    continue
                reached[(level.systolic, level.diastolic)] = level
                rings.setdefault((level.systolic, level.diastolic), []).append((week, value))
            for key, points in sorted(rings.items()):
                level = reached[key]
                ax.plot(
                    [w for w, _ in points],
                    [v for _, v in points],
                    linestyle="none",
                    marker="o",
                    markersize=13,
                    markerfacecolor="none",
                    markeredgecolor=SEVERE_COLOUR if level.severe else HIGH,
                    markeredgewidth=1.4,
                    gid=f"reached-{level.systolic:g}-{level.diastolic:g}-{name}",
                )
        handles += [_ring_handle(reached[k], cjk=cjk) for k in sorted(reached)]
        handles += home
        note = ax.set_title(
            textwrap.fill(CORRECTED_NOTE.text(cjk=cjk), 44), loc="right", fontsize=7, color=MUTED
        )
        note.set_gid("corrected-note")
    else:
        _empty(ax, NO_PRESSURE, cjk=cjk)
    last = max([r.ga_days for r in chart.readings] + [0])
    _ga_axis(ax, last, cjk=cjk)
    ax.set_ylim(bottom, top)
    ax.set_ylabel(Label("血压", "Blood pressure (mmHg)").text(cjk=cjk))
    fig.legend(handles=series + handles, loc="outside lower center", ncol=1, frameon=False)
    return fig


_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_FONT_FAMILY = re.compile(r"font-family: [^;\"]*")


def _accessible_svg(svg: str, title: str, desc: str) -> str:
    """Scale to the container (width 100%, the viewBox keeps the shape), say what it is
    (role img, <title> and <desc> first, as screen readers expect), and ask the viewer's
    browser for the CJK fonts phones and desktops have (it draws the text)."""
    match = _SVG_OPEN.search(svg)
    if match is None:  # pragma: no cover - matplotlib always writes one
        return svg
    tag = match.group(0)
    tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    tag = tag.replace(
        "<svg",
        '<svg width="100%" role="img" aria-labelledby="chart-title chart-desc"',
        1,
    )
    head = (
        f'{tag}\n <title id="chart-title">{escape(title)}</title>\n'
        f' <desc id="chart-desc">{escape(desc)}</desc>'
    )
    body = _FONT_FAMILY.sub(f"font-family: {SVG_FONTS}", svg[match.end() :])
    return svg[: match.start()] + head + body
