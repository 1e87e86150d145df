"""The queue tests run under the clinic's default between-draws setting (rest), unless a test
parametrizes ``between_draws`` (``"any"``, ``"listed:us_obstetric"``)."""

from __future__ import annotations

import pytest

from app.core.settings import Settings
from tests.queues.ogtt import with_between_draws


@pytest.fixture
def between_draws() -> str:
    return ""


@pytest.fixture
def settings(settings: Settings, between_draws: str) -> Settings:
    return with_between_draws(settings, between_draws)
