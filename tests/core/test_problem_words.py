"""Every kind of problem the service answers with has Chinese words on the screens (the
console's core.js): a Chinese screen leads with them, the server's English detail after."""

from __future__ import annotations

import re
from pathlib import Path

import app

APP = Path(app.__file__).parent
CORE = APP / "console/static/js/core.js"


def _slugs() -> set[str]:
    found: set[str] = set()
    for source in APP.rglob("*.py"):
        found |= set(re.findall(r'^\s+slug = "([a-z-]+)"', source.read_text(), re.M))
    return found


def test_every_problem_type_has_chinese_words() -> None:
    slugs = _slugs()
    assert {"no-butler-available", "already-booked", "validation-error"} <= slugs
    script = CORE.read_text()
    missing = sorted(s for s in slugs if f'"problem.{s}": ["' not in script)
    assert not missing, f"core.js has no words for {missing}"
    for slug in slugs:
        zh = re.search(rf'"problem.{re.escape(slug)}": \["([^"]*)"', script)
        assert zh, slug
        assert re.search(r"[\u4e00-\u9fff]", zh.group(1)), slug
