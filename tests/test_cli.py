"""The operator commands: migrate, seed the demo clinic, create the first admin."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.core.settings import Settings, get_settings
from app.main import create_app


@pytest.fixture
def fresh_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'demo.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DEMO_PASSWORD", "a-demo-password-for-tests")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


async def test_migrate_seed_and_log_in_as_a_demo_user(
    fresh_sqlite: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The commands run their own event loop, as they do from a shell.
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await asyncio.to_thread(main, ["seed-demo", "--if-empty"]) == 0
    out = capsys.readouterr().out
    assert "[5/5]" in out
    assert "a-demo-password-for-tests" in out
    assert "pb_demo_lab_key_0001" in out
    assert await asyncio.to_thread(main, ["seed-demo", "--if-empty"]) == 0
    assert "skipped" in capsys.readouterr().out

    app = create_app(Settings(database_url=fresh_sqlite))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        login = await client.post(
            "/v1/auth/login",
            json={"username": "frontdesk", "password": "a-demo-password-for-tests"},
        )
        token = login.json()["access_token"]
        mothers = await client.get("/v1/mothers", headers={"Authorization": f"Bearer {token}"})
        grades = {m["risk_grade"] for m in mothers.json()["items"]}
        assert grades == {"green", "yellow", "orange", "red"}  # purple stands beside a colour
        assert any(m["purple"] for m in mothers.json()["items"])
        lab = await client.get("/v1/auth/me", headers={"X-API-Key": "pb_demo_lab_key_0001"})
        assert lab.json()["role"] == "lab_system"
    await app.state.engine.dispose()


def test_seeding_is_refused_in_production(
    fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    get_settings.cache_clear()
    assert main(["migrate"]) == 0
    assert main(["seed-demo", "--if-empty"]) == 2
    assert "production" in capsys.readouterr().err


def test_create_admin(fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["migrate"]) == 0
    monkeypatch.setenv("ADMIN_PASSWORD", "short")
    assert main(["create-admin", "--username", "root.admin"]) == 2
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-admin-password")
    assert main(["create-admin", "--username", "root.admin"]) == 0


def test_the_demo_lab_secret_is_sealed_once_keys_are_set(
    fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert main(["seed-demo", "--if-empty"]) == 0
    assert main(["seal-secrets"]) == 2  # no key: nothing to seal with, and it says so
    assert "SECRETS_KEYS is not set" in capsys.readouterr().err
    assert main(["new-secrets-key"]) == 0
    key = capsys.readouterr().out.strip()
    monkeypatch.setenv("SECRETS_KEYS", key)
    get_settings.cache_clear()
    assert main(["seal-secrets"]) == 0
    assert "sealed or dropped 1 signing secret" in capsys.readouterr().out
    assert main(["seal-secrets"]) == 0  # once is enough
    assert "sealed or dropped 0 signing secret" in capsys.readouterr().out
    database = Path(fresh_sqlite.removeprefix("sqlite+aiosqlite:///")).read_bytes()
    assert Settings().demo_lab_secret.encode() not in database
