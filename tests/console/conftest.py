"""The browser tests' fixtures: one server of the app per pytest session (per xdist worker), one
Chromium per test module, a fresh browser context per device a test opens, each watched.

Every browser test is in the xdist group "browser" (tests.helpers.browser.BROWSER_TEST): one
worker runs them one after another, so the two cores are not shared by two Chromiums."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.helpers.browser import (
    DESK,
    Console,
    Server,
    launch_chromium,
    missing_browser,
    open_console,
    run_console_server,
)


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = missing_browser()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture(scope="session")
def console_server(
    browser_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A demo-seeded server of the app (SQLite; BROWSER_DATABASE=postgresql for PostgreSQL)."""
    database = os.environ.get("BROWSER_DATABASE", "sqlite")
    with run_console_server(tmp_path_factory.mktemp("console"), database=database) as server:
        yield server


@pytest.fixture(scope="module")
def chromium(browser_ready: None) -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def devices(chromium: Any, console_server: Server) -> Iterator[Callable[..., Console]]:
    """devices(viewport) opens a new browser context (a device of its own: its own session and
    storage) on the server. After the test, every one of them must have made no request off the
    origin, logged no console error, thrown no page error and met no unexpected HTTP error."""
    with ExitStack() as stack:
        opened: list[Console] = []

        def open_device(viewport: dict[str, int] = DESK, **context_args: Any) -> Console:
            console = stack.enter_context(
                open_console(chromium, console_server, viewport, **context_args)
            )
            opened.append(console)
            return console

        yield open_device
        problems = [p for console in opened for p in console.watch.problems()]
    if problems:
        pytest.fail("the browser saw:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def console(devices: Callable[..., Console]) -> Console:
    """One desk-sized (1366×768) browser context."""
    return devices(DESK)
