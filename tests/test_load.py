"""Load with invariants on PostgreSQL (a short run of bench/load.py): front desks checking in,
eight rooms calling and finishing, the lab posting results and butlers polling, all at once.
Zero 5xx, and the queue and report invariants hold in the database afterwards. `make load`
runs it longer and records p95 latency per endpoint in bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.counts import COUNTS
from tests.helpers.databases import PG_SERVER, create_pg_database, drop_pg_database

SECONDS = float(os.environ.get("LOAD_SECONDS", "10"))


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "load.py"
    spec = importlib.util.spec_from_file_location("bench_load", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres_only
def test_mixed_load_gives_no_5xx_and_keeps_the_invariants() -> None:
    if PG_SERVER is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_DATABASE_URL or start it)")
    bench = _bench()
    url = create_pg_database("pb_load")
    server = None
    try:
        server, base = bench.serve(url)
        result = asyncio.run(bench.run(base, url, seconds=SECONDS, mothers=30))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        drop_pg_database(url)
    assert result.server_errors == []
    assert result.violations == []
    assert result.checked_in > 0
    assert result.served > 0
    assert result.results_sent > 0
    COUNTS["load requests (no 5xx)"] += sum(len(v) for v in result.latencies.values())
