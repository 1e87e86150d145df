"""The browser tests' harness: a real server of the app, Debian's Chromium driven by Playwright,
and a watch on every page that fails the test on a request leaving the app's origin, a console
error, an uncaught page error or an unexpected HTTP error.

Playwright's own browser download is never used: Chromium is the system's (``/usr/bin/chromium``,
or ``CHROMIUM``). When it or the playwright package is missing the tests skip with the reason
(``REQUIRE_BROWSER=1`` turns such a skip into a failure, conftest.py).

The server is a subprocess (uvicorn, as ``make run`` starts it) on a free port with a database
of its own, migrated and demo-seeded: a SQLite file by default, a fresh PostgreSQL database
with ``BROWSER_DATABASE=postgresql``. Its output goes to a file the tests read (a token must
never appear in it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from app.core.settings import Settings
from tests.helpers.servers import ROOT, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request
    from playwright.sync_api import Response as PwResponse

T = TypeVar("T")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-sync",
    "--metrics-recording-only",
    "--mute-audio",
    "--lang=zh-CN",  # a clinic's desk: dates in the form fields as 2026/12/03, not 12/03/2026
]
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
PASSWORD = "butler-demo-2026"  # the demo's (Settings.demo_password)
LAB_KEY = "pb_demo_lab_key_0001"  # Settings.demo_lab_api_key
LAB_SECRET = "demo-lab-signing-secret-2026"  # Settings.demo_lab_secret

UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
UVICORN += ["--no-access-log", "--timeout-graceful-shutdown", "1"]
DESK = {"width": 1366, "height": 768}
PHONE = {"width": 375, "height": 667}
TV = {"width": 1920, "height": 1080}


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    return None


# ---- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    database_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    # A small HTTP client of the API for what a test prepares or checks outside the browser.
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        h = {"Accept": "application/json", **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = f"Bearer {token}"
        if method == "POST" and "Idempotency-Key" not in h and path != "/v1/auth/login":
            h["Idempotency-Key"] = uuid.uuid4().hex
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=h)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, text = response.status, response.read()
                got = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
            got = {k.lower(): v for k, v in err.headers.items()}
        kind = got.get("content-type", "")
        parsed: Any = json.loads(text) if text and "json" in kind else text.decode(errors="replace")
        return status, parsed, got

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data, _ = self.call(method, path, body, **kw)
        assert 200 <= status < 300, f"{method} {path}: {status} {data}"
        return data

    def login(self, username: str) -> str:
        data = self.ok("POST", "/v1/auth/login", {"username": username, "password": PASSWORD})
        token: str = data["access_token"]
        return token

    def post_hl7(self, message: str) -> tuple[int, str]:
        """POST an HL7 v2 message as the demo's lab system does: its API key, signed the
        Standard Webhooks way with its secret (as tests/helpers/messages.signed)."""
        raw = message.encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        at = int(time.time())
        digest = hmac.new(LAB_SECRET.encode(), f"{msg_id}.{at}.".encode() + raw, hashlib.sha256)
        headers = {
            "X-API-Key": LAB_KEY,
            "webhook-id": msg_id,
            "webhook-timestamp": str(at),
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
            "Content-Type": "application/hl7-v2",
        }
        status, text, _ = self.call("POST", "/v1/integrations/lab/hl7v2", raw=raw, headers=headers)
        return status, str(text)


def _in_a_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a helper that calls asyncio.run() in a thread of its own: Playwright's sync API keeps
    an event loop running in this one while a browser is open."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60  # a loaded CI machine starts slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not start in 60 s:\n{log.read_text()}")


@contextmanager
def run_console_server(
    workdir: Path, *, database: str = "sqlite", extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A migrated, demo-seeded server of the app on a free port and a database of its own."""
    pg_url = None
    if database == "postgresql":
        from tests.helpers.databases import PG_SERVER, create_pg_database

        if PG_SERVER is None:
            raise RuntimeError("BROWSER_DATABASE=postgresql but no PostgreSQL answers")
        pg_url = _in_a_thread(create_pg_database, "pb_browser")
        url = pg_url
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'console.db'}"
    env = {**os.environ, "DATABASE_URL": url, **(extra_env or {})}
    env.pop("DEMO_PASSWORD", None)
    log = workdir / "server.log"
    try:
        with log.open("wb") as out:
            for command in (["migrate"], ["seed-demo", "--if-empty"]):
                done = subprocess.run(
                    [sys.executable, "-m", "app.cli", *command],
                    env=env,
                    cwd=ROOT,
                    check=False,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                if done.returncode:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"app.cli {' '.join(command)} failed:\n{tail}")
            port = free_port()
            server = subprocess.Popen(
                [*UVICORN, "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, server, log)
            yield Server(base=base, database_url=url, log=log)
        finally:
            # A throwaway server: it is not waited for (its long-polls and its lifespan's
            # drain would hold a test run for ten seconds or more).
            server.terminate()
            try:
                server.wait(timeout=3)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        if pg_url is not None:
            from tests.helpers.databases import drop_pg_database

            _in_a_thread(drop_pg_database, pg_url)


# ---- the browser --------------------------------------------------------------------------


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, with nothing of its own going to the network."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Watch:
    """What every page of one browser context did: the requests that left the origin, the
    console errors, the page errors, the app's HTTP errors. ``problems()`` is empty when the
    test may pass; a test that provokes an HTTP error on purpose says so with ``expect()``."""

    origin: str
    requests: list[str] = field(default_factory=list)
    off_origin: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    http_errors: list[tuple[int, str, str]] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)

    def expect(self, *statuses: int, path: str = "") -> None:
        """The test provokes these 4xx answers on purpose (a field error, a 409, a 404), on
        any path or on those matching the regular expression ``path``."""
        self.expected += [(status, path) for status in statuses]

    def _expected(self, status: int, path: str) -> bool:
        return any(s == status and re.search(p, path) for s, p in self.expected)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("console", self._on_console)
        context.on("weberror", lambda e: self.page_errors.append(str(e.error)))

    def _on_request(self, request: Request) -> None:
        url = request.url
        self.requests.append(url)
        if url.startswith(("data:", "blob:")):
            return
        if not (url == self.origin or url.startswith(self.origin + "/")):
            self.off_origin.append(url)

    def _on_response(self, response: PwResponse) -> None:
        if response.status >= 400 and response.url.startswith(self.origin):
            self.http_errors.append(
                (response.status, response.request.method, response.url.removeprefix(self.origin))
            )

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = LOAD_FAILED.search(message.text)
        # A 4xx the test provoked is Chromium's "Failed to load resource": the HTTP check below
        # judges it; any other console error fails the test.
        if failed and int(failed.group(1)) < 500:
            return
        self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def problems(self) -> list[str]:
        out = [f"request left the origin: {u}" for u in self.off_origin]
        out += [f"console error: {e}" for e in self.console_errors]
        out += [f"page error: {e}" for e in self.page_errors]
        out += [
            f"HTTP {status} for {method} {path}"
            for status, method, path in self.http_errors
            if status >= 500 or not self._expected(status, path)
        ]
        return out


@dataclass
class Console:
    """One browser context on the server (its own sessionStorage and localStorage) with the
    watch attached; ``page(viewport)`` opens a page in it."""

    server: Server
    context: BrowserContext
    watch: Watch

    def page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(10_000)
        return page

    def url(self, path: str) -> str:
        return self.server.base + path

    def login(self, page: Page, username: str, next_page: str | None = None) -> None:
        """Log in through the login page (as a person does), optionally going on to a screen."""
        path = "/console/" + (f"?next={next_page}" if next_page else "")
        page.goto(self.url(path))
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("#login button[type=submit]")
        if next_page:
            page.wait_for_url(f"**/console/{next_page}*")
        else:
            page.wait_for_selector("#home:not([hidden])")


@contextmanager
def open_console(
    browser: Browser, server: Server, viewport: dict[str, int] = DESK, **context_args: Any
) -> Iterator[Console]:
    """A fresh browser context (nothing stored from another test) with the watch on it."""
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        **context_args,
    )
    watch = Watch(origin=server.base)
    watch.attach(context)
    try:
        yield Console(server=server, context=context, watch=watch)
    finally:
        context.close()


def _marks() -> list[Any]:
    import pytest

    return [pytest.mark.browser, pytest.mark.xdist_group("browser")]


# pytestmark = BROWSER_TEST in every browser test module: REQUIRE_BROWSER=1 makes its skips
# failures (conftest.py), and xdist runs them one after another on one worker.
BROWSER_TEST = _marks()


# ---- a day's data through the API ----------------------------------------------------------


def new_mother(server: Server, desk: str, *, butler: str | None = None, days: int = 171) -> Any:
    """Enrol a mother no other test has (her MRN, national id and phone are new), ``days``
    since her LMP (171: 24+3, the OGTT and the blood count are due), with the demo butler
    ``butler`` (a username) as her primary butler when given."""
    from app.mothers.domain import check_digit

    n = uuid.uuid4().int
    born = date(1990, 1 + n % 12, 1 + (n >> 4) % 28)
    first17 = f"110105{born:%Y%m%d}{(n >> 9) % 1000:03d}"
    body: dict[str, Any] = {
        "mrn": f"E2E{uuid.uuid4().hex[:8].upper()}",
        "name": "测试" + "晓雨静怡思琪悦"[n % 7],
        "national_id": first17 + check_digit(first17),
        "phone": f"139{(n >> 20) % 10**8:08d}",
        "language": "zh-CN",
        "pregnancy": {
            "lmp_date": (clinic_today() - timedelta(days=days)).isoformat(),
            "gravida": 1,
            "para": 0,
            "risk_grade": "green",
        },
    }
    if butler:
        body["primary_butler_id"] = butler_id(server, desk, butler)
    return server.ok("POST", "/v1/mothers", body, token=desk)


def butler_id(server: Server, token: str, username: str) -> str:
    users = {
        u["id"]: u["username"]
        for u in server.ok("GET", "/v1/users?limit=200", token=server.login("admin"))["items"]
    }
    for b in server.ok("GET", "/v1/butlers?limit=100", token=token)["items"]:
        if users.get(b["user_id"]) == username:
            found: str = b["id"]
            return found
    raise LookupError(username)


def clinic_today() -> date:
    """The clinic's calendar day (its time zone, not this machine's): the day the seed opens
    sessions for. Between midnight in Shanghai and midnight UTC the two differ."""
    zone = ZoneInfo(str(Settings.model_fields["clinic_timezone"].default))
    return datetime.now(zone).date()


def today_session(server: Server, token: str) -> Any:
    today = clinic_today().isoformat()
    sessions = server.ok("GET", "/v1/clinic-sessions", token=token)["items"]
    return next(s for s in sessions if s["session_date"] == today)


def book_and_check_in(server: Server, desk: str, mother: Any) -> Any:
    """Book her into today's session and check her in; the checked-in visit."""
    session = today_session(server, desk)
    body = {"mother_id": mother["id"], "session_id": session["id"]}
    status, data, _ = server.call("POST", "/v1/visits", body, token=desk)
    if status == 409 and str(data.get("type", "")).endswith("/station-over-capacity"):
        # The demo day runs to midnight: in its last hour the rooms close before a whole
        # visit is done, and the booking says so. The screens under test come after the
        # booking, so the admin books her past it, as the demo day does (audited).
        body |= {
            "override_capacity": True,
            "override_reason": "browser test in the day's last hour",
        }
        server.ok("POST", "/v1/visits", body, token=server.login("admin"))
    else:
        assert 200 <= status < 300, f"POST /v1/visits: {status} {data}"
    return server.ok("POST", "/v1/check-ins", {"mrn": mother["mrn"]}, token=desk)


def order_number(visit: Any, exam: str) -> str:
    number: str = next(o["order_number"] for o in visit["exam_orders"] if o["exam_code"] == exam)
    return number


def blood_count(mrn: str, order: str, *, hb: int = 118, flag: str = "N") -> str:
    """The lab's HL7 v2 ORU^R01 of a blood count (tests/helpers/messages.oru)."""
    from tests.helpers.messages import oru

    return oru(
        control_id=f"E2E-{uuid.uuid4().hex[:10]}",
        mrn=mrn,
        order=order,
        filler=f"F-{uuid.uuid4().hex[:6]}",
        obx=[
            f"OBX|1|NM|718-7^Hemoglobin^LN||{hb}|g/L|110-150|{flag}|||F",
            "OBX|2|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F",
        ],
    )
