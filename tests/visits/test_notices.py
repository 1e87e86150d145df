"""A booking's warnings come with a code and its values (``notices``), so that the desk says
them in Chinese: every code the service can send has its words on the desk."""

from __future__ import annotations

import re
from pathlib import Path

import app.visits.router as router
import app.visits.service as service
from tests.helpers.notices import desk_words


def _codes() -> set[str]:
    """Every ``Notice("code", …)`` the visits module writes."""
    source = Path(service.__file__).read_text() + Path(router.__file__).read_text()
    return set(re.findall(r'Notice\(\s*"([a-z-]+)"', source))


def test_every_notice_code_is_said_in_chinese_at_the_desk() -> None:
    codes = _codes()
    assert {"no-window", "outside-window", "after-proposal", "capacity-overridden"} <= codes
    missing = {c for c in codes if desk_words(c) is None}
    assert not missing, f"desk.js has no words for {sorted(missing)}"
    for code in codes:  # Chinese first: each one's words have Chinese in them
        assert re.search(r"[\u4e00-\u9fff]", desk_words(code) or ""), code
