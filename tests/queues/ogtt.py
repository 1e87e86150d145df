"""Helpers for the OGTT's timing: the clinic's between-draws setting and the drink record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.settings import OgttBetweenDraws, Settings
from tests.conftest import Api


def with_between_draws(settings: Settings, value: str) -> Settings:
    """``"any"``, ``"rest"`` or ``"listed:us_obstetric,nst"``; empty: the default (rest)."""
    if not value:
        return settings
    mode, _, exams = value.partition(":")
    return settings.model_copy(
        update={"ogtt_between_draws": OgttBetweenDraws(mode), "ogtt_between_draws_exams": exams}
    )


def instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def record_drink(api: Api, entry_id: str, at: datetime, *, who: str = "station") -> Any:
    """The blood-draw station records when she began the glucose drink."""
    return await api.client.post(
        f"/v1/queue-entries/{entry_id}/glucose-drink",
        headers=api.auth(who),
        json={"started_at": instant(at)},
    )
