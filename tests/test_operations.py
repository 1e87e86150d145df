"""Operations: the CLI's help lists every command; `make run` serves this machine unless told;
`make simulate` leaves tracked files alone unless asked; docker-compose runs every service
with a restart policy and a health check of its own, the MLLP listener among them; uvicorn's
own lines are JSON like the service's; the demo resets."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML, with schemathesis (dev)

from app.cli import build_parser, main
from app.core.settings import get_settings
from app.ops.serving import uvicorn_log_config
from sim.cli import DEFAULT_OUT
from tests.helpers.servers import ROOT, free_port


def commands() -> dict[str, str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {c.dest: c.help or "" for c in sub._choices_actions}


def test_the_cli_help_lists_every_command_on_a_line_of_its_own() -> None:
    listed = commands()
    assert len(listed) >= 12
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name, help_text in listed.items():
        assert help_text, f"{name} has no help"
        assert re.search(rf"^ +{re.escape(name)} +{re.escape(help_text)}$", out, re.M), name
    # The description names no subset of them (it used to list four).
    assert "{" not in out.split("positional arguments")[0]


def make(*args: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("HOST", "UPDATE_RESULTS")}
    return subprocess.run(
        ["make", "-n", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@needs_make
def test_make_run_serves_this_machine_unless_told() -> None:
    assert "app.cli serve --host 127.0.0.1 --port 8000" in make("run")
    assert "app.cli serve --host 0.0.0.0 --port 8000" in make("run", HOST="0.0.0.0")  # noqa: S104


@needs_make
def test_make_simulate_leaves_the_tracked_results_alone_unless_asked() -> None:
    plain = make("simulate")
    assert f"--out {DEFAULT_OUT}" in plain
    assert "bench/out" not in plain
    assert "--results" not in plain
    asked = make("simulate", UPDATE_RESULTS="1")
    assert "--out bench/out --results bench/RESULTS.md" in asked
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"{DEFAULT_OUT}/simulation.json"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "the default output is not ignored by git"


@needs_make
def test_make_reset_demo_resets_the_demo() -> None:
    assert "app.cli reset-demo --yes" in make("reset-demo")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def cli_args(command: list[str]) -> list[str]:
    assert command[:3] == ["python", "-m", "app.cli"], command
    return command[3:]


def test_compose_restarts_every_service_and_checks_each_of_its_own() -> None:
    services = compose()["services"]
    assert set(services) >= {"db", "api", "worker", "mllp"}
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "on-failure", "always"), name
        assert "healthcheck" in service, name
    tests = [tuple(s["healthcheck"]["test"]) for s in services.values()]
    assert len(set(tests)) == len(tests)  # each its own, not the image's HTTP check
    worker = services["worker"]
    parsed = build_parser().parse_args(cli_args(worker["command"]))
    assert parsed.command == "dispatch"
    check = worker["healthcheck"]["test"]
    assert check[0] == "CMD"
    health = build_parser().parse_args(cli_args(check[1:]))
    assert (health.command, health.heartbeat) == ("dispatch-health", parsed.heartbeat)
    listener = build_parser().parse_args(cli_args(services["mllp"]["command"]))
    assert listener.command == "mllp"
    # MLLP has no authentication: published on this host only unless MLLP_BIND says which.
    assert services["mllp"]["ports"] == ["${MLLP_BIND:-127.0.0.1}:2575:2575"]


def test_the_image_and_compose_serve_through_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "exec python -m app.cli serve --host 0.0.0.0 --port 8000 --proxy-headers" in dockerfile
    assert "uvicorn app.main:app" not in dockerfile
    assert "app.cli serve" in (ROOT / "Makefile").read_text()


def test_the_worker_health_check_reads_its_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "worker.alive"
    assert main(["dispatch-health", "--heartbeat", str(beat)]) == 1  # not started
    beat.touch()
    assert main(["dispatch-health", "--heartbeat", str(beat)]) == 0
    old = time.time() - 300
    os.utime(beat, (old, old))
    assert main(["dispatch-health", "--heartbeat", str(beat), "--max-age", "120"]) == 1


def test_the_uvicorn_log_config_uses_the_services_formatter() -> None:
    config = uvicorn_log_config(json_logs=True)
    assert config["formatters"]["service"]["()"] == "app.core.logging.JsonFormatter"
    assert config["loggers"]["uvicorn"]["handlers"] == ["service"]
    plain = uvicorn_log_config(json_logs=False)
    assert plain["formatters"]["service"]["()"] == "app.core.logging.PlainFormatter"


def test_uvicorns_own_lines_are_json(tmp_path: Path) -> None:
    """Start `python -m app.cli serve` for real; every line it writes parses as JSON, its
    start-up, a malformed request and its shutdown among them."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'var' / 'serve.db'}",
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as answer:
                    assert answer.status == 200
                    assert answer.headers.get("server") is None  # no software version
                    break
            except OSError:
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs this itself
            raw.recv(1024)
        time.sleep(0.3)
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not JSON: {line!r}")
    uvicorn = [r["msg"] for r in records if r["logger"].startswith("uvicorn")]
    assert not any("color_message" in r for r in records)  # no terminal colour codes
    assert any("Uvicorn running on" in m for m in uvicorn), uvicorn
    assert any("Application startup complete" in m for m in uvicorn), uvicorn
    assert any("Invalid HTTP request" in m for m in uvicorn), uvicorn
    assert any("Shutting down" in m for m in uvicorn), uvicorn


@pytest.fixture
def demo_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db = tmp_path / "var" / "demo.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("DEMO_PASSWORD", "a-demo-password-for-tests")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


async def test_reset_demo_gives_a_freshly_seeded_clinic(demo_file: Path) -> None:
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    with sqlite3.connect(demo_file) as db:
        db.execute("CREATE TABLE left_over (x INTEGER)")
    assert await asyncio.to_thread(main, ["reset-demo"]) == 2  # not without --yes
    with sqlite3.connect(demo_file) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='left_over'").fetchone()
    assert await asyncio.to_thread(main, ["reset-demo", "--yes", "--no-day"]) == 0
    with sqlite3.connect(demo_file) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        users = db.execute("SELECT count(*) FROM users").fetchone()[0]
    assert "left_over" not in tables
    assert users > 0


def test_reset_demo_refuses_another_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://x@127.0.0.1:1/nope")
    get_settings.cache_clear()
    try:
        assert main(["reset-demo", "--yes"]) == 2
    finally:
        get_settings.cache_clear()
