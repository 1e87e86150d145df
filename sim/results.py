"""bench/RESULTS.md holds one section per benchmark; each run rewrites only its own."""

from __future__ import annotations

from pathlib import Path

HEADER = (
    "# Benchmark results\n\nEach section is rewritten by the command it names; the rest is kept.\n"
)


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` (or append it)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
