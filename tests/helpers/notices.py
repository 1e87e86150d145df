"""What the desk says for a booking's notice: its Chinese words, and the values they need."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import app

DESK = Path(app.__file__).parent / "console/static/js/desk.js"


def desk_words(code: str) -> str | None:
    """The desk's Chinese for a notice code (None: it has none)."""
    found = re.search(rf'"desk.notice.{re.escape(code)}": \["([^"]*)"', DESK.read_text())
    return found.group(1) if found else None


def assert_desk_can_say(notice: dict[str, Any]) -> None:
    """The desk has Chinese words for this notice, and the notice gives every value they name
    (a missing one would show as a literal "{name}" on the screen)."""
    words = desk_words(notice["code"])
    assert words, f"desk.js has no words for {notice['code']}"
    needed = set(re.findall(r"\{(\w+)\}", words))
    assert needed <= set(notice["params"]), (notice["code"], needed - set(notice["params"]))
