"""The demo clinic (issue 17): one account per station, each bound to it, and a day in progress
today, as the console's screenshots and browser tests need it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.core.settings import Settings, get_settings
from app.demo.seed import STATION_ACCOUNTS
from app.main import create_app

PASSWORD = "a-demo-password-for-tests"


@pytest.fixture
def fresh_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, (username, response.text)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_demo_day_has_bound_stations_queues_a_call_reports_and_an_alert(
    fresh_sqlite: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await asyncio.to_thread(main, ["seed-demo", "--if-empty"]) == 0
    out = capsys.readouterr().out
    assert "station-blood (LAB)" in out
    assert "health plan signed" in out

    app = create_app(Settings(database_url=fresh_sqlite))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # Every station has its account, bound to it; station-us stays the ultrasound room's.
        assert {code for _, _, code in STATION_ACCOUNTS} == {
            s["code"]
            for s in (
                await client.get("/v1/stations", headers=await _login(client, "admin"))
            ).json()["items"]
        }
        for username, _, code in STATION_ACCOUNTS:
            me = await client.get("/v1/auth/me", headers=await _login(client, username))
            assert me.json()["station_code"] == code
        us = await _login(client, "station-us")
        refused = await client.post("/v1/stations/LAB/call-next", headers=us, json={"room": 1})
        assert refused.status_code == 403

        blood = await _login(client, "station-blood")
        lab = (await client.get("/v1/stations/LAB/queue", headers=blood)).json()
        waiting: list[dict[str, Any]] = lab["waiting"]
        assert len(waiting) >= 3
        assert any(w["fasting"] for w in waiting)
        assert any(w["urgent"] for w in waiting)
        assert any(w["infection_control"] for w in waiting)
        assert waiting[0]["urgent"]  # first in the queue
        vitals = await _login(client, "station-vitals")
        vit = (await client.get("/v1/stations/VIT/queue", headers=vitals)).json()
        assert [e["state"] for e in vit["serving"]] == ["called"]
        stations_waited_at = set()
        for code in ("VIT", "LAB", "URI", "US"):
            admin = await _login(client, "admin")
            queue = (await client.get(f"/v1/stations/{code}/queue", headers=admin)).json()
            if queue["waiting"]:
                stations_waited_at.add(code)
        assert stations_waited_at == {"VIT", "LAB", "URI", "US"}

        doctor = await _login(client, "doctor")
        reviews = (await client.get("/v1/reports-to-review", headers=doctor)).json()["items"]
        assert {(r["critical"], r["pickup_state"]) for r in reviews} == {
            (True, "ready"),
            (False, "ready"),
        }
        alerts = (await client.get("/v1/alerts", headers=await _login(client, "admin"))).json()
        assert [a["state"] for a in alerts["items"]] == ["open"]
    await app.state.engine.dispose()


def test_the_walkthrough_clinic_has_no_day(
    fresh_sqlite: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert main(["seed-demo", "--no-day"]) == 0
    out = capsys.readouterr().out
    assert "station-us (US)" in out
    assert "checked in" not in out
