"""Counts the suites report at the end of a run (bad inputs tried, routes × roles checked …)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
