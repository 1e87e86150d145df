"""Guideline tables: the built-in ones shipped as JSON, plus a hospital's own directory."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from app.careplan.domain import Guideline, load_guideline

BUILT_IN = Path(__file__).parent / "guidelines"


@lru_cache(maxsize=8)
def load_guidelines(extra_dir: str | None = None) -> dict[str, Guideline]:
    """Every table by code; a file in ``extra_dir`` replaces a built-in one of the same code."""
    tables: dict[str, Guideline] = {}
    dirs = [BUILT_IN] + ([Path(extra_dir)] if extra_dir else [])
    for directory in dirs:
        for path in sorted(directory.glob("*.json")):
            try:
                guideline = load_guideline(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"care-plan table {path.name} is invalid: {exc}") from exc
            tables[guideline.code] = guideline
    return tables
