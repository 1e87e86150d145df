"""Exam-rule catalogues on plain values: the pure queue-rule tests and the simulator's checks."""

from __future__ import annotations

from app.queues.domain import Catalogue, ExamRule, parse_precedence, parse_sequence


def rule(code: str, station: str, position: int, **kw: object) -> ExamRule:
    return ExamRule(
        code=code,
        name=code,
        station_type=station,
        position=position,
        fasting=bool(kw.get("fasting", False)),
        after_meal=bool(kw.get("after_meal", False)),
        last=bool(kw.get("last", False)),
        precedence=parse_precedence(kw.get("precedence", [])),  # type: ignore[arg-type]
        sequence=parse_sequence(kw.get("sequence", [])),  # type: ignore[arg-type]
        service_minutes=float(kw.get("minutes", 5)),  # type: ignore[arg-type]
    )


CATALOGUE = Catalogue(
    {
        r.code: r
        for r in [
            rule("vitals", "vitals", 1, precedence=[{"before": "consultation"}]),
            rule("fasting_glucose", "blood_draw", 2, fasting=True),
            rule(
                "ogtt",
                "blood_draw",
                3,
                fasting=True,
                sequence=[
                    {"offset_minutes": 0},
                    {"offset_minutes": 60, "tolerance_minutes": 5},
                    {"offset_minutes": 120, "tolerance_minutes": 5},
                ],
            ),
            rule("us_early", "ultrasound", 4, precedence=[{"before": "urine", "ga_to": "11+6"}]),
            rule("urine", "urine", 5),
            rule("nst", "nst", 6, after_meal=True),
            rule("consultation", "doctor", 7, last=True),
        ]
    }
)

# The OGTT timed from the glucose drink (issue 20), and a scan to do between its draws.
OGTT_FROM_DRINK = [
    {"offset_minutes": 0, "label": "fasting draw, then the glucose drink"},
    {"offset_minutes": 60, "tolerance_minutes": 5, "label": "1-hour draw", "from": "glucose_drink"},
    {
        "offset_minutes": 120,
        "tolerance_minutes": 5,
        "label": "2-hour draw",
        "from": "glucose_drink",
    },
]
DRINK = Catalogue(
    {
        **CATALOGUE.rules,
        "ogtt": rule("ogtt", "blood_draw", 3, fasting=True, sequence=OGTT_FROM_DRINK),
        "us_obstetric": rule("us_obstetric", "ultrasound", 8),
    }
)
