"""The clinic-day simulator on a short day: both strategies, and the rules held."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.queues.simulator import Scenario, ScenarioError, load_scenario, run_scenario

SHORT = {
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


def test_a_short_day_runs_both_strategies_with_every_rule_held(tmp_path: Path) -> None:
    comparison = run_scenario(Scenario.model_validate(SHORT), workdir=tmp_path, progress=False)
    assert [r.strategy for r in comparison.results] == ["fixed", "parallel"]
    for result in comparison.results:
        assert result.mothers == 10  # 6 an hour for 90 minutes, and a walk-in
        # Every exam step was done, once, by a finished service, in order and on time.
        assert result.steps_done == result.steps_total > 0
        assert result.finished == result.mothers
        assert result.violations == []
        assert all(w >= 0 for w in result.waits)
        assert 0 < result.wait_p50 <= result.wait_p90 or result.wait_p90 == 0
        # Two OGTT draws an hour apart: her visit lasts more than two hours.
        assert result.visit_mean > 60
        assert all(0 <= u <= 1 for u in result.utilisation.values())


def test_the_cli_writes_a_table_json_and_a_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "short.json"
    scenario.write_text(json.dumps(SHORT), encoding="utf-8")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- other -->\nkept\n<!-- /other -->\n")
    args = ["simulate", str(scenario), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    recorded = results.read_text()
    assert "<!-- other -->\nkept\n<!-- /other -->" in recorded  # other sections are kept
    assert "<!-- simulation -->" in recorded
    assert "| short-morning | parallel |" in recorded
    assert "< 30 s | yes |" in recorded
    assert main([*args, "--results", str(results)]) == 0
    assert results.read_text().count("<!-- simulation -->") == 1  # rewritten, not appended
    printed = capsys.readouterr().out
    assert "| short-morning | parallel |" in printed
    data = json.loads((tmp_path / "out" / "simulation.json").read_text(encoding="utf-8"))
    assert {r["strategy"] for r in data[0]["results"]} == {"fixed", "parallel"}
    png = (tmp_path / "out" / "simulation.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_bad_scenarios_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**SHORT, "closes_at": "07:00"}), encoding="utf-8")
    with pytest.raises(ScenarioError, match="closes_at must be after opens_at"):
        load_scenario(broken)
    broken.write_text(json.dumps({**SHORT, "stations": [{"code": "us", "type": "x"}]}))
    with pytest.raises(ScenarioError, match=r"stations\.0\.code"):
        load_scenario(broken)
    unknown = {**SHORT, "visit_mix": [{"weight": 1, "gestational_week": 20, "exams": ["xray"]}]}
    with pytest.raises(ScenarioError, match="not in the catalogue: \\['xray'\\]"):
        run_scenario(Scenario.model_validate(unknown), workdir=tmp_path, progress=False)
    assert main(["simulate", str(tmp_path / "missing.json"), "--quiet"]) == 2


def test_the_shipped_scenarios_are_valid() -> None:
    shipped = sorted((Path(__file__).parents[2] / "bench" / "scenarios").glob("*.json"))
    assert len(shipped) >= 3
    for path in shipped:
        load_scenario(path)
