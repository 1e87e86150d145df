"""Simulator scenarios the simulator tests share."""

from __future__ import annotations

from typing import Any

# A short morning: five stations of one room each, a fasting and an OGTT mix, a walk-in.
SHORT: dict[str, Any] = {
    "name": "short-morning",
    "seed": 5,
    "opens_at": "08:00",
    "closes_at": "09:30",
    "stations": [
        {"code": "VIT", "type": "vitals", "servers": 1},
        {"code": "LAB", "type": "blood_draw", "servers": 1},
        {"code": "URI", "type": "urine", "servers": 1},
        {"code": "US", "type": "ultrasound", "servers": 1},
        {"code": "DOC", "type": "doctor", "servers": 1},
    ],
    "service_minutes": {
        "vitals": {"mean": 3, "sd": 1},
        "blood_draw": {"mean": 4, "sd": 1},
        "urine": {"mean": 3, "sd": 1},
        "ultrasound": {"mean": 12, "sd": 3},
        "doctor": {"mean": 8, "sd": 2},
    },
    "arrivals": {"booked_per_hour": 6, "punctuality_sd_minutes": 8, "walk_ins": 1},
    "visit_mix": [
        {
            "weight": 1,
            "gestational_week": 12,
            "exams": ["fasting_glucose", "cbc", "us_early", "urine", "vitals", "consultation"],
        },
        {
            "weight": 1,
            "gestational_week": 26,
            "exams": ["ogtt", "urine", "us_obstetric", "vitals", "consultation"],
        },
    ],
}
