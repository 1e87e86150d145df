"""Dependency aliases for the app-wide objects kept on ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.clock import Clock
from app.core.settings import Settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
