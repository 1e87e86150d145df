"""The station screen's undo (issue 19): a room that called the wrong mother takes it back
with F4, and she is back in the waiting list; the button is gone once used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.browser import BROWSER_TEST, DESK, Console, book_and_check_in, new_mother

pytestmark = BROWSER_TEST


def _free_vitals(devices: Callable[..., Console]) -> tuple[Console, Any, Any]:
    """A mother checked in, and the vitals room free (the demo day's mother there finished)."""
    device = devices(DESK)
    server = device.server
    desk = server.login("frontdesk")
    book_and_check_in(server, desk, new_mother(server, desk))
    admin = server.login("admin")
    for entry in server.ok("GET", "/v1/stations/VIT/queue", token=admin)["serving"]:
        if entry["state"] == "called":
            server.ok("POST", f"/v1/queue-entries/{entry['id']}/start", token=admin)
        server.ok("POST", f"/v1/queue-entries/{entry['id']}/finish", token=admin)
    return device, server, admin


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_vitals_room_undoes_a_mistapped_call_with_the_keyboard(
    devices: Callable[..., Console],
) -> None:
    device, server, admin = _free_vitals(devices)
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


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_finish_with_readings_offers_no_undo(devices: Callable[..., Console]) -> None:
    """The server refuses to undo a finish its readings depend on: the screen does not offer
    it, and says to correct the readings instead."""
    device, server, admin = _free_vitals(devices)
    page = device.page()
    device.login(page, "station-vitals", next_page="station.html")
    page.locator("#waiting tbody tr[data-testid=waiting-entry]").first.wait_for()
    page.keyboard.press("F2")  # call next
    entry = page.locator("#serving article[data-testid=serving-entry]").last
    entry.wait_for()
    ticket = entry.get_attribute("data-ticket")
    entry.locator("button[data-action=start]").click()
    undo = page.locator("#undo")
    page.wait_for_function("() => /开始检查/.test(document.getElementById('undo')?.textContent)")
    page.locator("#m-weight").fill("61")
    page.locator("#measure-finish").click()
    page.locator(f"#serving article[data-ticket='{ticket}']").wait_for(state="detached")
    page.locator("#toasts .toast", has_text="更正").wait_for()
    assert not undo.is_visible()  # neither this finish nor the start before it
    page.keyboard.press("F4")  # nothing to undo: she stays finished
    queue = server.ok("GET", "/v1/stations/VIT/queue", token=admin)
    assert ticket not in [e["ticket"] for e in queue["serving"] + queue["waiting"]]
