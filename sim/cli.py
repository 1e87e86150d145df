"""``python -m sim simulate``: replay clinic days on a simulated clock and compare routing."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sim import booking, simulator
from sim.results import write_section

DEFAULT_OUT = "var/simulate"  # ignored by git: a run never changes tracked files unless asked


def _simulate(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.scenarios]
    try:
        scenarios = [simulator.load_scenario(p) for p in paths]
    except simulator.ScenarioError as exc:
        print(f"scenario error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    comparisons = []
    timings: list[float] = []
    scratch = Path(tempfile.mkdtemp(prefix="clinic-sim-"))
    template = simulator.prepare_template(scratch)  # migrated once, copied for every run
    for scenario in scenarios:
        # A day of booking requests: as requested, and as booked by the service's rules.
        days: list[booking.BookedDay | None] = [None]
        if scenario.booking_requests is not None:
            days = list(booking.days_of(scenario, template))
        # Each OGTT day under each OGTT_BETWEEN_DRAWS setting it names (rest and any by default).
        for between, label in simulator.settings_to_compare(scenario, template):
            for day in days:
                started = time.monotonic()
                try:
                    comparisons.append(
                        simulator.run_scenario(
                            scenario,
                            template=template,
                            progress=not args.quiet,
                            between=between,
                            label=label,
                            optimum_seconds=args.optimum_seconds,
                            optimum_workers=args.optimum_workers,
                            day=day,
                        )
                    )
                except simulator.ScenarioError as exc:
                    print(f"scenario error: {exc}", file=sys.stderr)
                    return 2
                best = comparisons[-1].optimum
                solving = best.seconds if best is not None else 0.0
                timings.append(time.monotonic() - started - solving)
                print(
                    f"{comparisons[-1].name}: both strategies in {timings[-1]:.1f} s"
                    + (
                        f", the optimum {best.status} in {solving:.1f} s"
                        if best is not None
                        else ""
                    ),
                    file=sys.stderr,
                )
    shutil.rmtree(scratch, ignore_errors=True)
    print(simulator.table(comparisons))
    simulator.write_json(comparisons, out / "simulation.json")
    if args.results:
        write_section(
            Path(args.results),
            "simulation",
            simulator.report(
                comparisons, timings, paths, {s.name: s.overloaded for s in scenarios}
            ),
        )
    if not args.no_chart:
        simulator.chart(comparisons, out / "simulation.png")
    print(
        f"\nwrote {out / 'simulation.json'}"
        + ("" if args.no_chart else f" and {out / 'simulation.png'}")
    )
    # The project's routing must hold every rule; the baseline's slips are shown in the table.
    broken = [
        v for c in comparisons for r in c.results if r.strategy == "parallel" for v in r.violations
    ]
    for line in broken[:20]:
        print(f"rule broken: {line}", file=sys.stderr)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    simulate = sub.add_parser(
        "simulate", help="replay clinic days on a simulated clock and compare routing strategies"
    )
    simulate.add_argument("scenarios", nargs="+", help="scenario JSON files (bench/scenarios/)")
    simulate.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"where the JSON and PNG go (default {DEFAULT_OUT}, untracked; the tracked "
        "results are bench/out, written only when named)",
    )
    simulate.add_argument("--no-chart", action="store_true")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.add_argument(
        "--results", help="also record the table in this file's simulation section"
    )
    simulate.add_argument(
        "--optimum-seconds",
        type=float,
        default=20.0,
        help="the CP-SAT time limit for each day's best possible schedule (0: not computed; "
        "default 20)",
    )
    simulate.add_argument(
        "--optimum-workers",
        type=int,
        default=8,
        help="CP-SAT search workers (default 8: its portfolio finds better days, even on 2 cores)",
    )
    simulate.set_defaults(func=_simulate)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
