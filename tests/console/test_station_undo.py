"""The station screen's undo (issue 19): a room that called the wrong mother takes it back
with F4, and she is back in the waiting list; the button is gone once used."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers.browser import BROWSER_TEST, DESK, Console, book_and_check_in, new_mother

pytestmark = BROWSER_TEST


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_vitals_room_undoes_a_mistapped_call_with_the_keyboard(
    devices: Callable[..., Console],
) -> None:
    device = devices(DESK)
    server = device.server
    desk = server.login("frontdesk")
    book_and_check_in(server, desk, new_mother(server, desk))
    # Whoever the demo day has in service at vitals is finished first: the room is free.
    admin = server.login("admin")
    for entry in server.ok("GET", "/v1/stations/VIT/queue", token=admin)["serving"]:
        if entry["state"] == "called":
            server.ok("POST", f"/v1/queue-entries/{entry['id']}/start", token=admin)
        server.ok("POST", f"/v1/queue-entries/{entry['id']}/finish", token=admin)
    page = device.page()
    device.login(page, "station-vitals", next_page="station.html")
    page.wait_for_function("() => document.getElementById('station-name')?.textContent.trim()")
    page.locator("#waiting tbody tr[data-testid=waiting-entry]").first.wait_for()
    assert page.locator("#scheduled-title").is_visible()  # the not-yet-due list, apart
    undo = page.locator("#undo")
    assert not undo.is_visible()
    page.keyboard.press("F2")  # call next
    entry = page.locator("#serving article[data-testid=serving-entry]").last
    entry.wait_for()
    ticket = entry.get_attribute("data-ticket")
    undo.wait_for()
    assert "撤销" in undo.inner_text()
    page.keyboard.press("F4")
    page.locator(f"#serving article[data-ticket='{ticket}']").wait_for(state="detached")
    page.locator(f"#waiting tr[data-ticket='{ticket}']").wait_for()
    assert not undo.is_visible()
    # The server agrees: she waits again, and the undo is in the audit trail.
    queue = server.ok("GET", "/v1/stations/VIT/queue", token=admin)
    assert ticket in [w["ticket"] for w in queue["waiting"]]
    undone = server.ok("GET", "/v1/audit-events?action=queue.undo", token=admin)["items"]
    assert undone, "the undo is audited"
