"""Screenshots of every console screen into docs/screens/ (``make screens``).

Starts a demo-seeded server of the app on a SQLite file of its own, drives a little of a clinic
day through the public API so that the screens have something to show (mothers checked in and
in the queues, one called, one in the room, a report ready for her butler, a critical value),
then opens each screen in Debian's Chromium at the size it is judged at: the desk, the station
and the doctor's chart at 1366×768, the butler's phone and her own page at 375×667, the TV at
1920×1080, the API docs. Each shot also reports what the browser saw go wrong (a console error,
a request off the origin, an HTTP error); the exit status is 1 when a screen is missing or had
such a problem, but every other screen is still written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.browser import (
    DESK,
    PASSWORD,
    PHONE,
    TV,
    Server,
    clinic_today,
    launch_chromium,
    missing_browser,
    open_console,
    run_console_server,
)
from tests.helpers.servers import ROOT

OUT = ROOT / "docs" / "screens"


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Day:
    """What the API drove: ids the screens are opened on."""

    visits: dict[str, str] = field(default_factory=dict)  # MRN -> visit id
    her_url: str | None = None
    notes: list[str] = field(default_factory=list)


def hl7(mrn: str, order: str, obx: list[str], control: str) -> str:
    segments = [
        f"MSH|^~\\&|LIS|HOSP|PB|VIP|{time.strftime('%Y%m%d%H%M%S')}||ORU^R01|{control}|P|2.5",
        f"PID|1||{mrn}^^^HOSP^MR",
        f"OBR|1|{order}|F-{control}|24317-0^Hemogram^LN|||||||||||||||||||||F",
        *obx,
    ]
    return "\r".join(segments) + "\r"


def prepare_day(server: Server) -> Day:
    """A morning at the clinic, through the API as the desk, the rooms and the lab do it."""
    day = Day()
    desk = server.login("frontdesk")
    admin = server.login("admin")
    today = clinic_today().isoformat()  # the clinic's day, not this machine's
    sessions = server.ok("GET", "/v1/clinic-sessions", token=desk)["items"]
    session = next(s for s in sessions if s["session_date"] == today) if sessions else None
    mothers = {m["mrn"]: m for m in server.ok("GET", "/v1/mothers?limit=50", token=desk)["items"]}
    orders: dict[str, dict[str, str]] = {}
    for mrn in ("MRN0002", "MRN0003", "MRN0004", "MRN0005", "MRN0001"):
        if session is None or mrn not in mothers:
            continue
        # The demo may have booked (or checked in) some of them already: that is kept.
        status, booked, _ = server.call(
            "POST",
            "/v1/visits",
            {"mother_id": mothers[mrn]["id"], "session_id": session["id"]},
            token=desk,
        )
        if status >= 300 and status != 409:  # 409: the demo day booked her already
            day.notes.append(f"booking of {mrn}: {status} {booked.get('detail')}")
        status, checked, _ = server.call("POST", "/v1/check-ins", {"mrn": mrn}, token=desk)
        if status >= 300:
            day.notes.append(f"check-in of {mrn}: {status} {checked.get('detail')}")
            continue
        day.visits[mrn] = checked["id"]
        orders[mrn] = {o["exam_code"]: o["order_number"] for o in checked["exam_orders"]}
    say(f"  checked in: {', '.join(day.visits)}")

    # The rooms: the blood draw has one in the room and calls the next; ultrasound and vitals call.
    def call(station: str, token: str) -> dict[str, Any] | None:
        for room in (1, 2, 3):  # a room the demo has not left busy
            status, data, _ = server.call(
                "POST", f"/v1/stations/{station}/call-next", {"room": room}, token=token
            )
            if status != 409:
                break
        if status >= 300:
            day.notes.append(f"call-next at {station}: {status} {data}")
            return None
        called: dict[str, Any] | None = data.get("called")
        return called

    first = call("LAB", admin)
    if first:
        entry = first["entry"]["id"]
        server.call("POST", f"/v1/queue-entries/{entry}/start", token=admin)
        server.call("POST", f"/v1/queue-entries/{entry}/finish", token=admin)
    call("LAB", admin)
    call("VIT", admin)
    call("US", server.login("station-us"))

    # The lab: a blood count for 陈思琪 (MRN0002, butler 李静), a critical one for 孙悦 (MRN0004).
    if "cbc" in orders.get("MRN0002", {}):
        status, _ = server.post_hl7(
            hl7(
                "MRN0002",
                orders["MRN0002"]["cbc"],
                [
                    "OBX|1|NM|718-7^Hemoglobin^LN||104|g/L|110-150|L|||F",
                    "OBX|2|NM|777-3^Platelets^LN||210|10*9/L|125-350|N|||F",
                ],
                "SHOT-1",
            )
        )
        say(f"  lab result for MRN0002: {status}")
    alerts = server.ok("GET", "/v1/alerts", token=server.login("doctor"))["items"]
    if "cbc" in orders.get("MRN0004", {}) and not alerts:  # the demo may have one already
        status, _ = server.post_hl7(
            hl7(
                "MRN0004",
                orders["MRN0004"]["cbc"],
                ["OBX|1|NM|718-7^Hemoglobin^LN||58|g/L|110-150|LL|||F"],
                "SHOT-2",
            )
        )
        say(f"  critical result for MRN0004: {status}")

    # A result for a patient nobody here knows (a mistyped MRN): held for the desk to match.
    status, _ = server.post_hl7(
        hl7(
            "MRN0O02",
            "NO-SUCH-ORDER",
            ["OBX|1|NM|718-7^Hemoglobin^LN||101|g/L|110-150|L|||F"],
            "SHOT-3",
        )
    )
    say(f"  a held result (unknown MRN): {status}")
    # 吴静怡 (MRN0006) is booked for today but not here yet: the desk's check-in shot scans her.
    if session is not None and "MRN0006" in mothers:
        server.call(
            "POST",
            "/v1/visits",
            {"mother_id": mothers["MRN0006"]["id"], "session_id": session["id"]},
            token=desk,
        )

    # Her own page: a link for 陈思琪's visit (the desk prints it on the slip).
    if "MRN0002" in day.visits:
        status, data, _ = server.call(
            "POST", f"/v1/visits/{day.visits['MRN0002']}/her-link", {}, token=desk
        )
        if status < 300:
            day.her_url = data["url"]
        else:
            day.notes.append(f"her-link: {status} (her page shot without a link)")
    return day


@dataclass
class Shot:
    name: str
    path: str
    viewport: dict[str, int]
    user: str | None = None
    ready: str | None = None  # a selector that shows the screen has its data
    act: Callable[[Any], None] | None = None  # something to do on the page before the shot
    full_page: bool = False
    expected: tuple[int, ...] = ()  # HTTP errors the screen meets on purpose


def open_chart(page: Any) -> None:
    """The doctor opens 陈思琪's chart from the search."""
    page.fill("#search-q", "MRN0002")
    page.keyboard.press("Enter")
    page.locator("[data-testid=mother-result]").first.click(timeout=5000)
    page.wait_for_selector("#chart:not([hidden])", timeout=5000)


def chart_review(page: Any) -> None:
    """The doctor's list of reports to review, the first one opened."""
    page.click("#side-tabs [data-tab=review]")
    page.locator("#review-list [data-testid=review-item]").first.click(timeout=5000)
    page.wait_for_timeout(500)


def desk_search(page: Any) -> None:
    """The desk types initials in the search box and opens the first mother found."""
    page.fill("#search-q", "csq")
    page.locator("[data-testid=search-result]").first.wait_for(timeout=5000)
    page.wait_for_timeout(300)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")


def desk_tab(tab: str) -> Callable[[Any], None]:
    def act(page: Any) -> None:
        page.click(f"#tab-{tab}")
        page.wait_for_timeout(800)

    return act


def desk_check_in(page: Any) -> None:
    """The desk scans 吴静怡's card: checked in, her slip with its QR code."""
    page.click("#tab-checkin")
    page.fill("#checkin-scan", "mrn0006")
    page.keyboard.press("Enter")
    page.wait_for_selector("#slip", timeout=8000)


STATION_READY = "#waiting [data-testid=waiting-entry], #serving [data-testid=serving-entry]"


def shots(day: Day) -> list[Shot]:
    her = day.her_url or "/console/her.html"
    return [
        Shot("login", "/console/", DESK, ready="#login:not([hidden])"),
        Shot("home", "/console/", DESK, user="frontdesk", ready="#home:not([hidden])"),
        Shot("desk", "/console/desk.html", DESK, user="frontdesk", act=desk_search),
        Shot("desk-enrol", "/console/desk.html", DESK, user="frontdesk", act=desk_tab("enrol")),
        Shot("desk-book", "/console/desk.html", DESK, user="frontdesk", act=desk_tab("book")),
        Shot("desk-checkin", "/console/desk.html", DESK, user="frontdesk", act=desk_check_in),
        Shot("desk-board", "/console/desk.html", DESK, user="frontdesk", act=desk_tab("board")),
        Shot("desk-lab", "/console/desk.html", DESK, user="frontdesk", act=desk_tab("lab")),
        Shot("station", "/console/station.html", DESK, user="station-us", ready=STATION_READY),
        Shot("chart", "/console/chart.html", DESK, user="doctor", act=open_chart),
        Shot("chart-review", "/console/chart.html", DESK, user="doctor", act=chart_review),
        Shot("butler", "/console/butler.html", PHONE, user="butler-li", ready="#assignments li"),
        Shot("butler-full", "/console/butler.html", PHONE, user="butler-li", full_page=True),
        Shot("her", her, PHONE, expected=() if day.her_url else (404,)),
        Shot("tv", "/console/tv.html?stations=LAB,US,VIT,DOC", TV, ready="#tv-clock"),
        Shot("docs", "/docs", DESK, ready=".swagger-ui .opblock"),
        Shot("redoc", "/redoc", DESK, ready="[role=navigation] li, .menu-content li"),
    ]


def take(browser: Any, server: Server, shot: Shot, out: Path) -> list[str]:
    """One screenshot; what went wrong on the way (empty when nothing did)."""
    problems: list[str] = []
    with open_console(browser, server, shot.viewport) as console:
        console.watch.expect(*shot.expected)
        page = console.page()
        if shot.user:
            page.goto(console.url("/console/"))
            page.fill("#username", shot.user)
            page.fill("#password", PASSWORD)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#home:not([hidden])")
        response = page.goto(console.url(shot.path))
        missing = response is not None and response.status >= 400
        if response is not None and missing:
            problems.append(f"{shot.path} answered {response.status}")
        try:
            if shot.ready and not missing:
                page.wait_for_selector(shot.ready, timeout=30_000)
            if shot.act and not missing:
                shot.act(page)
        except Exception as exc:  # a shot is still worth taking
            problems.append(f"not ready: {str(exc).splitlines()[0]}")
        page.wait_for_timeout(1500)  # the live data, the fonts, the QR code
        page.screenshot(path=str(out / f"{shot.name}.png"), full_page=shot.full_page)
        problems += console.watch.problems()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", help="names of the shots to take (default: all)")
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason:
        say(f"make screens needs a browser: {reason}")
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        say("[1/3] a demo-seeded server of the app")
        with run_console_server(Path(tmp)) as server:
            say(f"  {server.base}")
            say("[2/3] the morning through the API")
            day = prepare_day(server)
            for note in day.notes:
                say(f"  note: {note}")
            todo = [s for s in shots(day) if not args.only or s.name in args.only]
            say(f"[3/3] {len(todo)} screens into {out}")
            with launch_chromium() as browser:
                for i, shot in enumerate(todo, start=1):
                    size = f"{shot.viewport['width']}×{shot.viewport['height']}"
                    problems = take(browser, server, shot, out)
                    mark = "ok" if not problems else "PROBLEM"
                    say(f"  ({i}/{len(todo)}) {shot.name:15} {size:10} {mark}")
                    for problem in problems:
                        say(f"      {problem}")
                    failed = failed or bool(problems)
    say("done" if not failed else "done, with problems (above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
