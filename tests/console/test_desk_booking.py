"""The desk's booking when an hour is full (issue 19), in a real Chromium: the clerk asks for an
hour whose stations cannot take her, the screen says why in Chinese and offers the hours and
sessions that can, each a button; the first books her at the hour and arrival time it said,
and the booking's warning (her plan's next visit missed) is said in Chinese too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.browser import BROWSER_TEST, DESK, Console, Server, clinic_today, new_mother

pytestmark = BROWSER_TEST


def _full_hour(server: Server, desk: str) -> tuple[Any, Any]:
    """A session of its own, its 08:00 hour booked through the API until the service refuses
    the next mother there; that session and the refused answer."""
    day = clinic_today() + timedelta(days=45)
    (session,) = server.ok(
        "POST",
        "/v1/clinic-sessions",
        {
            "name": "满员测试",
            "session_date": day.isoformat(),
            "starts_at": "08:00",
            "ends_at": "12:00",
            "per_hour": 20,
        },
        token=desk,
    )["items"]
    for _ in range(20):
        mother = new_mother(server, desk)
        body = {"mother_id": mother["id"], "session_id": session["id"], "preferred_time": "08:00"}
        status, data, _ = server.call("POST", "/v1/visits", body, token=desk)
        if status == 409:
            assert str(data["type"]).endswith("/station-over-capacity"), data
            return session, data
        assert status == 201, f"POST /v1/visits: {status} {data}"
    raise AssertionError("twenty mothers fitted into one hour: nothing was refused")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_desk_is_offered_other_hours_and_books_the_one_it_chose(
    devices: Callable[..., Console],
) -> None:
    device = devices(DESK)
    device.watch.expect(409, path="/v1/visits")  # the full hour, on purpose
    server = device.server
    desk = server.login("frontdesk")
    session, refused = _full_hour(server, desk)
    offered = refused["alternatives"][0]
    assert offered["session_id"] == session["id"]  # the same session's nearest hour first
    mother = new_mother(server, desk)

    page = device.page()
    device.login(page, "frontdesk", next_page="desk.html")
    page.locator("#search-q").fill(mother["mrn"])
    page.locator("#search-results [data-testid=search-result]").first.wait_for()
    page.locator("#search-q").press("Enter")
    page.locator("#current-mother", has_text=mother["mrn"]).wait_for()
    page.click("#tab-book")
    page.locator("#book-calendar .day").first.wait_for()  # this week's, before another week
    page.locator("#book-from").fill(session["session_date"])
    chosen = page.locator(f"button[data-testid=session][data-session-id='{session['id']}']")
    chosen.click()
    page.select_option("#book-hour", "08:00")
    page.click("#book-submit")

    # Refused, in Chinese, with the hours that take her: nothing was booked.
    page.locator("#book-result .warn-note", has_text="08:00 时段的检查站已排满").wait_for()
    assert "检查站容纳不下" in page.locator("#book-form").inner_text()
    buttons = page.locator("#book-result button[data-testid=alternative]")
    assert buttons.count() == len(refused["alternatives"])
    first = buttons.first
    hour = offered["hour"][:5]
    assert hour in first.inner_text()
    assert offered["arrival_at_local"][:5] in first.inner_text()
    assert not server.ok("GET", f"/v1/visits?mother_id={mother['id']}", token=desk)["items"]

    # The first offer, with the keyboard: it chooses the session and its hour; Book books it.
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.getElementById('book-hour').value === '{hour}'")
    page.click("#book-submit")
    page.locator("#book-result [data-testid=arrival]").wait_for()
    assert offered["arrival_at_local"][:5] in page.locator("#book-result").inner_text()
    assert not page.locator("#book-form .form-error").is_visible()
    # Six weeks on, her plan's next visit is missed: the desk says so in Chinese, not the
    # server's English.
    late = page.locator("#book-result [data-testid=notice][data-code=after-proposal]")
    assert "产检计划建议" in late.inner_text()
    assert "proposes" not in page.locator("#book-result").inner_text()
    (listed,) = server.ok("GET", f"/v1/visits?mother_id={mother['id']}", token=desk)["items"]
    visit = server.ok("GET", f"/v1/visits/{listed['id']}", token=desk)
    assert visit["session_id"] == session["id"]
    assert visit["scheduled_at_local"] == hour
    assert visit["arrival_at_local"] == offered["arrival_at_local"][:5]
