"""Chart data the chart tests draw: a weight series across the band (one reading taken at
home, readings within, above and below) and a pressure series up to a severe diastolic."""

from __future__ import annotations

from app.charts.domain import (
    BandPoint,
    GainStatus,
    Label,
    PressureChart,
    PressureReading,
    WeightChart,
    WeightReading,
)

BAND = tuple(
    BandPoint(
        d,
        58 + (0 if d <= 97 else 0.26 * (d - 97) / 7),
        58 + min(d, 97) / 97 * 2 + (0.48 * (d - 97) / 7 if d > 97 else 0),
    )
    for d in [*range(0, 98, 7), 97, *range(98, 281, 7)]
)
WEIGHTS = WeightChart(
    readings=(
        WeightReading(70, 58.5, GainStatus.WITHIN),
        WeightReading(98, 59.6, GainStatus.WITHIN),
        WeightReading(126, 61.0, GainStatus.WITHIN, reported_by_mother=True),
        WeightReading(154, 65.5, GainStatus.ABOVE),
        WeightReading(182, 68.4, GainStatus.ABOVE),
        WeightReading(196, 61.2, GainStatus.BELOW),
    ),
    band=BAND,
    table=Label("", "WS/T 801—2022"),
    group=Label("正常", "Normal 18.5–23.9"),
    pre_pregnancy_weight_kg=58.0,
    bmi=21.3,
)
PRESSURES = PressureChart(
    readings=(
        PressureReading(84, 112, 72),
        PressureReading(168, 139, 89),
        PressureReading(172, 140, 80, reported_by_mother=True),
        PressureReading(190, 159, 110),
    )
)
