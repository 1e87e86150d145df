"""The console's pages in a real Chromium: login keeps the token out of every URL, out of
localStorage and out of the server's log; every page carries the strict CSP; the API docs render
from the app alone (every test also fails on any request off the origin or console error)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.console.router import CSP, DOCS_CSP, STATIC
from tests.helpers.browser import BROWSER_TEST, DESK, Console

pytestmark = BROWSER_TEST

PAGES = sorted(p.name for p in STATIC.glob("*.html"))


def test_login_keeps_the_token_in_this_tab_only(console: Console) -> None:
    page = console.page()
    console.login(page, "frontdesk")
    assert page.locator("#screens a[href='/console/desk.html']").is_visible()
    token = page.evaluate("sessionStorage.getItem('pb.token')")
    assert token
    assert len(token) > 20
    stored = page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert token not in stored
    assert "token" not in stored.lower()
    # Never in a URL: not in one request the page made, not in the address bar.
    assert not [u for u in console.watch.requests if token in u]
    assert token not in page.url
    # Never in the server's log.
    assert token not in console.server.log_text()
    # Another tab of the same browser is not logged in (sessionStorage is per tab).
    other = console.page()
    other.goto(console.url("/console/"))
    other.wait_for_selector("#login:not([hidden])")


def test_a_wrong_password_is_said_at_the_form(console: Console) -> None:
    console.watch.expect(401)
    page = console.page()
    page.goto(console.url("/console/"))
    page.fill("#username", "frontdesk")
    page.fill("#password", "not-the-password")
    page.keyboard.press("Enter")
    error = page.locator("#login .form-error")
    error.wait_for(state="visible")
    assert error.inner_text().strip()
    assert page.evaluate("sessionStorage.getItem('pb.token')") is None


def test_logout_forgets_the_token(console: Console) -> None:
    page = console.page()
    console.login(page, "doctor")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('pb.token')") is None


def test_a_screen_asks_for_login_and_comes_back(console: Console) -> None:
    """Opening a screen with no session goes to the login page, and back after it."""
    page = console.page()
    page.goto(console.url("/console/chart.html"))
    page.wait_for_url("**/console/?next=chart.html")
    page.fill("#username", "doctor")
    page.fill("#password", "butler-demo-2026")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/chart.html")


@pytest.mark.parametrize("name", PAGES)
def test_every_console_page_has_the_strict_csp(console: Console, name: str) -> None:
    page = console.page()
    response = page.goto(console.url(f"/console/{name}"))
    assert response is not None
    assert response.status == 200
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    page.wait_for_load_state("networkidle")


def test_no_page_has_inline_script_or_style() -> None:
    """What the CSP would refuse at run time, caught in the files (the browser test above only
    sees the console error when the page happens to run that code)."""
    offences = []
    for path in sorted(STATIC.glob("*.html")):
        text = path.read_text()
        lowered = text.lower()
        if "<style" in lowered or " style=" in lowered:
            offences.append(f"{path.name}: inline style")
        for chunk in lowered.split("<script")[1:]:
            if "src=" not in chunk.split(">", 1)[0]:
                offences.append(f"{path.name}: inline script")
        if "http://" in lowered or "https://" in lowered:
            offences.append(f"{path.name}: an absolute URL")
    assert offences == []


def test_no_script_writes_markup_or_evaluates_text() -> None:
    """API data reaches the page as text only (core.js el()): no script of the console writes
    markup from a string or runs a string as code (the CSP would refuse eval anyway)."""
    banned = (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    )
    offences = [
        f"{path.name}:{number}: {word}"
        for path in sorted((STATIC / "js").glob("*.js"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if not line.strip().startswith(("//", "*", "/*"))  # what a comment says is no code
        for word in banned
        if word in line
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[role=navigation] li, .menu-content li")],
)
def test_the_api_docs_render_offline(
    devices: Callable[..., Console], path: str, ready: str
) -> None:
    console = devices(DESK)
    page = console.page()
    response = page.goto(console.url(path))
    assert response is not None
    assert response.headers["content-security-policy"] == DOCS_CSP
    page.wait_for_selector(ready, timeout=20_000)
    assert page.locator(ready).count() > 5
    page.wait_for_load_state("networkidle")
    assert console.watch.off_origin == []
