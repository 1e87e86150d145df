"""The browser tests' fixtures: one server of the app per pytest session (per xdist worker), one
Chromium per test module, a fresh browser context per device a test opens, each watched.

Every browser test is in the xdist group "browser" (tests.helpers.browser.BROWSER_TEST): one
worker runs them one after another, so the two cores are not shared by two Chromiums."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
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
from tests.helpers.databases import PG_SERVER


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = missing_browser()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture(scope="session")
def sqlite_console_server(
    browser_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A demo-seeded server of the app on a SQLite file of its own."""
    with run_console_server(tmp_path_factory.mktemp("console"), database="sqlite") as server:
        yield server


@pytest.fixture(scope="session")
def pg_console_server(
    browser_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The same on a PostgreSQL database of its own (dropped afterwards)."""
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_DATABASE_URL or start it)")
    with run_console_server(tmp_path_factory.mktemp("console-pg"), database="postgresql") as s:
        yield s


@pytest.fixture
def backend() -> str:
    """The database the screens' server runs on. SQLite for most browser tests: a screen is the
    same whatever stores the data, and the API under it runs on both in the rest of the suite.
    The live tests (a change reaching a phone or the TV) parametrize it over both, since the
    wake-up differs (PostgreSQL's NOTIFY; in one process the notifier); BROWSER_DATABASE=
    postgresql runs every other browser test on PostgreSQL."""
    return os.environ.get("BROWSER_DATABASE", "sqlite")


@pytest.fixture
def console_server(backend: str, request: pytest.FixtureRequest) -> Server:
    name = "pg_console_server" if backend == "postgresql" else "sqlite_console_server"
    server: Server = request.getfixturevalue(name)
    return server


@pytest.fixture(scope="module")
def chromium(browser_ready: None) -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call's outcome on the test, for the screenshots of a failed one (devices)."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def devices(
    chromium: Any, console_server: Server, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Console]]:
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
        if request.node.stash.get(CALL_FAILED, False) or problems:
            # What each page showed when it failed: BROWSER_SHOTS=dir, or the test's tmp_path.
            where = Path(os.environ.get("BROWSER_SHOTS", tmp_path))
            where.mkdir(parents=True, exist_ok=True)
            for i, console in enumerate(opened):
                for j, page in enumerate(console.context.pages):
                    shot = where / f"{request.node.name}-{i}-{j}.png"
                    with contextlib.suppress(Exception):
                        page.screenshot(path=str(shot))
                        print(f"screenshot of the failed page: {shot}")
    if problems:
        pytest.fail("the browser saw:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def console(devices: Callable[..., Console]) -> Console:
    """One desk-sized (1366×768) browser context."""
    return devices(DESK)
