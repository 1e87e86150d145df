"""The clinic-day simulator on a short day: both strategies, and the rules held."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.core.settings import Routing
from sim.cli import main
from sim.simulator import (
    Clinic,
    Scenario,
    ScenarioError,
    _minutes,
    _test_windows,
    _union,
    check_rules,
    load_scenario,
    run_scenario,
)
from tests.helpers.scenarios import SHORT


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
        # Waiting leaves out the OGTT's own hours; idle time keeps them, above their floor.
        assert result.wait_mean <= result.idle_mean
        assert 0 < result.idle_floor_mean <= result.idle_mean
        assert 0 < result.wait_p50 <= result.wait_p90 or result.wait_p90 == 0
        # Two OGTT draws an hour apart: her visit lasts more than two hours.
        assert result.visit_mean > 60
        assert all(0 <= u <= 1 for u in result.utilisation.values())


def test_both_strategies_draw_the_same_minutes_for_the_same_service(tmp_path: Path) -> None:
    """Common random numbers: a mother's ultrasound takes as long under either routing,
    whatever else was served before it, so that the comparison is of the routing alone."""
    scenario = Scenario.model_validate(SHORT)
    a, b = uuid.uuid4(), uuid.uuid4()

    def services(routing: Routing, order: list[tuple[uuid.UUID, str]]) -> dict[str, float]:
        clinic = Clinic(scenario, routing, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
        clinic.number_of = {a: 1, b: 2}
        return {
            f"{visit}:{code}": clinic.duration(
                [SimpleNamespace(exam_code=code, visit_id=visit)],  # type: ignore[list-item]
                "ultrasound" if code.startswith("us") else "blood_draw",
            )
            for visit, code in order
        }

    one_order = [(a, "us_obstetric"), (b, "us_obstetric"), (a, "cbc"), (b, "cbc")]
    fixed = services(Routing.FIXED, one_order)
    parallel = services(Routing.PARALLEL, list(reversed(one_order)))
    assert fixed == parallel
    assert fixed[f"{a}:us_obstetric"] != fixed[f"{b}:us_obstetric"]  # still drawn, per mother


def test_the_cli_writes_a_table_json_and_a_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "short.json"
    scenario.write_text(json.dumps(SHORT), encoding="utf-8")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- other -->\nkept\n<!-- /other -->\n")
    args = ["simulate", str(scenario), "--out", str(tmp_path / "out"), "--quiet"]
    args += ["--optimum-seconds", "1", "--optimum-workers", "2"]  # the best day, briefly
    assert main([*args, "--results", str(results)]) == 0
    recorded = results.read_text()
    assert "<!-- other -->\nkept\n<!-- /other -->" in recorded  # other sections are kept
    assert "<!-- simulation -->" in recorded
    assert "| short-morning | parallel |" in recorded
    # A day with OGTTs is reported under both between-draws settings (issue 20).
    assert "| short-morning | parallel | rest |" in recorded
    assert "| short-morning | parallel | any |" in recorded
    assert "< 30 s | yes |" in recorded
    # The best possible day beside them (issue 19), with the routing's ratio to it.
    assert "| short-morning | optimum (" in recorded
    assert "| routing / optimum | routing / bound |" in recorded
    assert "routing's mean waiting over the optimum found" in recorded
    assert main([*args, "--results", str(results)]) == 0
    assert results.read_text().count("<!-- simulation -->") == 1  # rewritten, not appended
    printed = capsys.readouterr().out
    assert "| short-morning | parallel |" in printed
    data = json.loads((tmp_path / "out" / "simulation.json").read_text(encoding="utf-8"))
    assert {r["strategy"] for r in data[0]["results"]} == {"fixed", "parallel"}
    assert [c["between_draws"] for c in data] == ["rest", "any"]
    best = data[0]["optimum"]
    assert best["status"] in ("OPTIMAL", "FEASIBLE")
    assert best["wait_bound"] <= best["wait_mean"]
    assert "schedule" not in data[0]["results"][0]
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


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-30T{hhmm}:00").replace(tzinfo=UTC)


def test_waiting_counts_each_minute_once_and_none_of_the_ogtt_s_own_time() -> None:
    visit, ogtt, scan, consult = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def entry(start: str, end: str) -> SimpleNamespace:
        return SimpleNamespace(
            id=uuid.uuid4(),
            visit_id=visit,
            started_at=at(start),
            finished_at=at(end),
            closed_at=at(end),
        )

    draws = [entry("08:05", "08:09"), entry("09:09", "09:12"), entry("10:09", "10:12")]
    us, doc = entry("08:20", "08:32"), entry("10:20", "10:30")
    steps = [
        SimpleNamespace(order_id=ogtt, offset_minutes=m, entry_id=e.id)
        for m, e in zip((0, 60, 120), draws, strict=True)
    ] + [
        SimpleNamespace(order_id=scan, offset_minutes=0, entry_id=us.id),
        SimpleNamespace(order_id=consult, offset_minutes=0, entry_id=doc.id),
    ]
    windows = _test_windows(steps, [*draws, us, doc])
    assert windows == {visit: [(at("08:05"), at("10:12"))]}  # first draw begun to last done
    serving = [(e.started_at, e.finished_at) for e in [*draws, us, doc]]
    stay = 150  # 08:00 to 10:30
    # The ultrasound inside the OGTT costs her nothing; the 5 minutes before the first draw
    # and the 8 before the doctor are what the queues took.
    assert stay - _minutes(_union(serving + windows[visit])) == 13
    assert stay - _minutes(_union(serving)) == 150 - 4 - 3 - 3 - 12 - 10  # idle: 118


def test_the_rules_check_times_the_draws_from_the_drink_and_the_exams_between_them() -> None:
    """What the simulator holds every run to: each draw on time counted from the drink, no
    exam before the drink, and between the draws only what the clinic's setting allows."""
    from app.core.settings import OgttBetweenDraws
    from app.queues.domain import REST, BetweenDraws
    from tests.helpers.catalogues import DRINK

    visit, ogtt = uuid.uuid4(), uuid.uuid4()

    def served(start: str, end: str) -> SimpleNamespace:
        return SimpleNamespace(
            id=uuid.uuid4(),
            ticket="T",
            state="done",
            entered_at=at("07:50"),
            available_at=at("07:50"),
            called_at=at(start),
            started_at=at(start),
            finished_at=at(end),
        )

    def step(code: str, entry: SimpleNamespace, offset: int = 0, **kw: Any) -> SimpleNamespace:
        return SimpleNamespace(
            id=uuid.uuid4(),
            visit_id=visit,
            order_id=ogtt if code == "ogtt" else uuid.uuid4(),
            exam_code=code,
            offset_minutes=offset,
            tolerance_minutes=5 if offset else None,
            timed_from="glucose_drink" if offset else None,
            timing_started_at=kw.get("drink"),
            state="done",
            entry_id=entry.id,
            done_at=entry.finished_at,
        )

    def check(scan_at: str, one_hour_at: str, between: BetweenDraws = REST) -> list[str]:
        draws = [served("08:00", "08:04"), served(one_hour_at, "09:10"), served("10:07", "10:10")]
        scan = served(scan_at, "08:45" if scan_at < "08:45" else "10:40")
        steps = [
            step("ogtt", draws[0], drink=at("08:07")),
            step("ogtt", draws[1], 60),
            step("ogtt", draws[2], 120),
            step("us_obstetric", scan),
        ]
        return check_rules(steps, [*draws, scan], {visit: 180}, DRINK, between)

    # Fasting draw 08:00-08:04, drink begun 08:07: the 1-hour draw is due 09:07 ±5.
    assert check("10:20", "09:05") == []
    assert check("10:20", "09:00") == [f"visit {visit}: ogtt +60 off by -7 min"]
    assert check("08:30", "09:05") == [f"visit {visit}: us_obstetric between the OGTT's draws"]
    scan_allowed = BetweenDraws(OgttBetweenDraws.LISTED, frozenset({"us_obstetric"}))
    assert check("08:30", "09:05", scan_allowed) == []
    assert check("08:05", "09:05", scan_allowed) == [
        f"visit {visit}: us_obstetric before the glucose drink"
    ]


def test_a_day_without_booking_requests_has_none() -> None:
    assert (
        Scenario.model_validate(SHORT).booking_requests is None
    )  # tests/queues/test_booked_day.py
