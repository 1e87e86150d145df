"""The desk's booking when an hour is full (issue 19), in a real Chromium: the clerk asks for an
hour whose stations cannot take her, the screen says why in Chinese and offers the hours and
sessions that can, each a button; the first books her at the hour and arrival time it said,
and the booking's warning (her plan's next visit missed) is said in Chinese too.

The hour is filled through the API with mothers of a butler of this test's own: the demo
butlers' caseloads are shared by every browser test, and ten more mothers would leave no
butler for the whole-day test's enrolment. Afterwards that butler takes no more mothers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.browser import (
    BROWSER_TEST,
    DESK,
    PASSWORD,
    Console,
    Server,
    clinic_today,
    new_mother,
)

pytestmark = BROWSER_TEST


DAY = clinic_today() + timedelta(days=45)  # the session's day: never today's weekday


@contextmanager
def _own_butler(server: Server) -> Iterator[str]:
    """A butler account of this test (its username), with room for twenty mothers and on duty
    only on the session's weekday morning (never today: she covers nobody's visit of today);
    when the test ends her limit is what she carries, so no later enrolment is given to her."""
    admin = server.login("admin")
    name = f"fill-{uuid.uuid4().hex[:8]}"
    user = server.ok(
        "POST",
        "/v1/users",
        {"username": name, "display_name": "测试管家", "role": "butler", "password": PASSWORD},
        token=admin,
    )
    butler = server.ok(
        "POST",
        "/v1/butlers",
        {
            "user_id": user["id"],
            "display_name": "测试管家",
            "max_caseload": 20,
            "roster": [{"weekday": DAY.weekday(), "starts_at": "08:00", "ends_at": "12:00"}],
        },
        token=admin,
    )
    try:
        yield name
    finally:
        load = server.ok("GET", "/v1/caseloads", token=admin)
        carried = next((c["load"] for c in load["items"] if c["butler_id"] == butler["id"]), 20)
        _, _, headers = server.call("GET", f"/v1/butlers/{butler['id']}", token=admin)
        server.ok(
            "PATCH",
            f"/v1/butlers/{butler['id']}",
            {"max_caseload": carried},
            token=admin,
            headers={"If-Match": headers["etag"]},
        )


def _full_hour(server: Server, desk: str, butler: str) -> tuple[Any, Any]:
    """A session of its own, its 08:00 hour booked through the API until the service refuses
    the next mother there; that session and the refused answer."""
    body = {
        "name": "满员测试",
        "session_date": DAY.isoformat(),
        "starts_at": "08:00",
        "ends_at": "12:00",
        "per_hour": 20,
    }
    (session,) = server.ok("POST", "/v1/clinic-sessions", body, token=desk)["items"]
    for _ in range(20):
        mother = new_mother(server, desk, butler=butler)
        body = {"mother_id": mother["id"], "session_id": session["id"], "preferred_time": "08:00"}
        status, data, _ = server.call("POST", "/v1/visits", body, token=desk)
        if status == 409:
            assert str(data["type"]).endswith("/station-over-capacity"), data
            return session, data
        assert status == 201, f"POST /v1/visits: {status} {data}"
    raise AssertionError("twenty mothers fitted into one hour: nothing was refused")


def _held_back(route: Any) -> None:
    time.sleep(1)
    route.continue_()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_desk_is_offered_other_hours_and_books_the_one_it_chose(
    devices: Callable[..., Console],
) -> None:
    device = devices(DESK)
    device.watch.expect(409, path="/v1/visits")  # the full hour, on purpose
    server = device.server
    desk = server.login("frontdesk")
    with _own_butler(server) as butler:
        session, refused = _full_hour(server, desk, butler)
        mother = new_mother(server, desk, butler=butler)
    offered = refused["alternatives"][0]
    assert offered["session_id"] == session["id"]  # the same session's nearest hour first

    page = device.page()
    device.login(page, "frontdesk", next_page="desk.html")
    page.locator("#search-q").fill(mother["mrn"])
    page.locator("#search-results [data-testid=search-result]").first.wait_for()
    # Her record's "book a visit" at once, while the last of her record (her reports, held
    # back a second here) still loads: the record must not pull the clerk back to it.
    page.route("**/v1/reports?mother_id=*", _held_back)
    page.locator("#search-q").press("Enter")
    page.locator("#current-mother", has_text=mother["mrn"]).wait_for()
    page.click("#summary-book")
    page.locator("#mother-reports li").first.wait_for(state="attached")
    assert page.locator("#pane-book").is_visible(), "her record pulled the desk back"
    page.unroute("**/v1/reports?mother_id=*")
    page.locator("#book-calendar .day").first.wait_for()  # this week's, before another week
    page.locator("#book-from").fill(session["session_date"])
    chosen = page.locator(f"button[data-testid=session][data-session-id='{session['id']}']")
    chosen.click()
    page.select_option("#book-hour", "08:00")
    page.click("#book-submit")

    # Refused, in Chinese, with the hours that take her: nothing was booked.
    page.locator("#book-result .warn-note", has_text="08:00 时段的检查站容纳不下她").wait_for()
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
