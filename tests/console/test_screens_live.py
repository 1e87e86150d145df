"""The screens with no login, in a real Chromium: the waiting-room TV (1920×1080) shows a call
as it is made, with no reload and masked names; her own page (375×667) shows her tickets live
and, once the desk revokes her link, says it no longer works; the desk checks a mother in with
the keyboard alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.browser import (
    BROWSER_TEST,
    DESK,
    PHONE,
    TV,
    Console,
    Server,
    book_and_check_in,
    new_mother,
    today_session,
)

pytestmark = BROWSER_TEST


def queue_of(server: Server, token: str, visit: Any) -> dict[str, str]:
    places = server.ok("GET", f"/v1/visits/{visit['id']}/queue", token=token)["places"]
    return {p["station"]: p["ticket"] for p in places}


def serve(server: Server, token: str, entry: Any) -> None:
    """The room serves the mother it called: start (when only called), then finish."""
    if entry["state"] == "called":
        server.ok("POST", f"/v1/queue-entries/{entry['id']}/start", token=token)
    server.ok("POST", f"/v1/queue-entries/{entry['id']}/finish", token=token)


def call_until(server: Server, token: str, station: str, ticket: str) -> Any:
    """Call next at ``station`` until her ticket is called; whoever the room had (the demo day
    leaves mothers in rooms) or calls before her is served."""
    for entry in server.ok("GET", f"/v1/stations/{station}/queue", token=token)["serving"]:
        serve(server, token, entry)
    for _ in range(30):
        answer = server.ok("POST", f"/v1/stations/{station}/call-next", {"room": 1}, token=token)
        called = answer["called"]
        assert called, f"nobody left to call at {station} before {ticket}"
        if called["entry"]["ticket"] == ticket:
            return called
        serve(server, token, called["entry"])
    raise AssertionError(f"{ticket} never called at {station}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_tv_shows_a_call_as_it_is_made(devices: Callable[..., Console]) -> None:
    tv_device = devices(TV)
    server = tv_device.server
    desk = server.login("frontdesk")
    mother = new_mother(server, desk)
    visit = book_and_check_in(server, desk, mother)
    ticket = queue_of(server, desk, visit)["VIT"]
    tv = tv_device.page()
    tv.goto(tv_device.url("/console/tv.html?stations=VIT,LAB,US"))
    tv.locator("[data-testid=board][data-station=VIT]").wait_for()
    assert tv.locator("#tv-clock").inner_text().strip()
    tv.evaluate("() => { window.__sameDocument = true; }")
    # She is listed waiting (masked), once.
    waiting = tv.locator(f"[data-testid=board][data-station=VIT] li[data-ticket='{ticket}']")
    waiting.first.wait_for()
    assert mother["name"] not in tv.locator("body").inner_text()
    call_until(server, server.login("admin"), "VIT", ticket)
    tv.locator("#tv-calling-ticket").filter(has_text=ticket).wait_for(timeout=5_000)
    assert tv.locator("#tv-calling-room").inner_text().strip()
    assert (
        tv.locator(f"[data-testid=board][data-station=VIT] .now li[data-ticket='{ticket}']").count()
        == 1
    )
    assert tv.locator(f"[data-ticket='{ticket}']").count() <= 2  # the big panel and one line
    assert mother["name"] not in tv.locator("body").inner_text()
    assert tv.evaluate("() => window.__sameDocument === true"), "the TV reloaded"


def test_her_page_is_live_and_a_revoked_link_stops_working(
    devices: Callable[..., Console],
) -> None:
    phone = devices(PHONE)
    phone.watch.expect(404)  # the revoked link, on purpose
    server = phone.server
    desk = server.login("frontdesk")
    mother = new_mother(server, desk)
    visit = book_and_check_in(server, desk, mother)
    link = server.ok("POST", f"/v1/visits/{visit['id']}/her-link", {}, token=desk)
    assert link["url"].startswith("/console/her.html#k=")
    page = phone.page()
    page.goto(phone.url(link["url"]))
    tickets = page.locator("#her-tickets li[data-ticket]")
    tickets.first.wait_for()
    assert tickets.count() >= 3
    body = page.locator("body").inner_text()
    assert mother["name"] not in body
    assert mother["mrn"] not in body
    token = link["url"].split("#k=", 1)[1]
    assert not [u for u in phone.watch.requests if token in u], "her token went into a URL"
    page.evaluate("() => { window.__sameDocument = true; }")
    # The blood draw calls her: her page says where to go, without a reload.
    ticket = queue_of(server, desk, visit)["LAB"]
    call_until(server, server.login("admin"), "LAB", ticket)
    page.locator("#her-called").filter(has_text=ticket).or_(
        page.locator("#her-called:not([hidden])")
    ).first.wait_for(timeout=5_000)
    assert page.evaluate("() => window.__sameDocument === true")
    # The desk revokes the link: the page (reopened, as she would) says it no longer works.
    status, _, _ = server.call("DELETE", f"/v1/visits/{visit['id']}/her-link", token=desk)
    assert status == 204
    page.reload()
    page.locator("#her-expired").wait_for()
    assert page.locator("#her-tickets li[data-ticket]").count() == 0


def test_the_desk_checks_a_mother_in_with_the_keyboard_alone(
    devices: Callable[..., Console],
) -> None:
    console = devices(DESK)
    server = console.server
    desk = server.login("frontdesk")
    mother = new_mother(server, desk)
    session = today_session(server, desk)
    server.ok(
        "POST", "/v1/visits", {"mother_id": mother["id"], "session_id": session["id"]}, token=desk
    )
    page = console.page()
    console.login(page, "frontdesk", next_page="desk.html")
    page.locator("#tab-search").wait_for()
    # Alt+4 opens the check-in tab and puts the cursor in the scanner field.
    page.keyboard.press("Alt+4")
    page.wait_for_function("() => document.activeElement?.id === 'checkin-scan'")
    page.keyboard.type(f" {mother['mrn'].lower()} ")
    page.keyboard.press("Enter")
    page.locator("#slip").wait_for()
    visits = server.ok("GET", f"/v1/visits?mother_id={mother['id']}", token=desk)["items"]
    assert visits[0]["status"] == "checked_in"
    # Focus stays visible and reachable: Tab moves on to a real control.
    page.keyboard.press("Tab")
    tag = page.evaluate("() => document.activeElement?.tagName")
    assert tag in {"BUTTON", "A", "INPUT", "SELECT", "TEXTAREA"}


def test_the_doctor_opens_her_chart_and_sees_her_report(devices: Callable[..., Console]) -> None:
    from tests.helpers.browser import blood_count, order_number

    console = devices(DESK)
    # She has no health-management plan yet: the API says 404, the chart says "none yet".
    console.watch.expect(404, path=r"^/v1/mothers/[^/]+/health-plan$")
    server = console.server
    desk = server.login("frontdesk")
    mother = new_mother(server, desk)
    visit = book_and_check_in(server, desk, mother)
    status, ack = server.post_hl7(
        blood_count(mother["mrn"], order_number(visit, "cbc"), hb=98, flag="L")
    )
    assert status == 200, ack
    page = console.page()
    console.login(page, "doctor", next_page="chart.html")
    page.fill("#search-q", mother["mrn"].lower())
    result = page.locator(f"[data-testid=mother-result][data-mother-id='{mother['id']}']")
    result.click()
    page.locator("#chart").wait_for()
    assert mother["mrn"] in page.locator("[data-testid=chart-mrn]").inner_text()
    page.locator("[data-testid=timeline-row]").first.wait_for()
    # Her report is on the review worklist.
    page.click("#side-tabs [data-tab=review]")
    page.locator("#review-list [data-testid=review-item]").first.wait_for()
    assert page.locator("#review-list").inner_text().strip()
