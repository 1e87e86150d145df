"""Counts the suites report at the end of a run (bad inputs tried, routes × roles checked …).

COUNTS adds up; DISTINCT counts different things seen (operations fuzzed), so that the totals
of several pytest-xdist workers can be put together in the controller (conftest.py does)."""

from __future__ import annotations

from collections import Counter, defaultdict

COUNTS: Counter[str] = Counter()
DISTINCT: defaultdict[str, set[str]] = defaultdict(set)
