"""Load with invariants: front desks, stations, the lab and butlers at once, on PostgreSQL.

    python bench/load.py [--seconds 60] [--mothers 120]

Starts one uvicorn worker on a fresh PostgreSQL database seeded with the demo clinic, then for a
bounded time: desks check mothers in, eight rooms call, start and finish, the lab posts signed
HL7 results for the day's orders, and the butlers' phones poll with ETags. Afterwards it checks
the invariants in the database and writes p50/p95 latency per endpoint to bench/RESULTS.md.
The suite runs a short version (tests/test_load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.mothers.domain import check_digit  # noqa: E402
from sim.results import write_section  # noqa: E402

PASSWORD = "butler-demo-2026"
LAB_KEY = "pb_demo_lab_key_0001"
LAB_SECRET = "demo-lab-signing-secret-2026"
ROOMS = [("VIT", 1), ("LAB", 1), ("LAB", 2), ("URI", 1), ("US", 1), ("US", 2), ("DOC", 1), ("DOC", 2)]
# Each station's room is run by that station's own account (a station account works at its
# station only, issue 17).
STATION_LOGINS = {"VIT": "station-vitals", "LAB": "station-blood", "URI": "station-urine",
                  "US": "station-us", "DOC": "station-doctor"}
IDS = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def national_id(n: int) -> str:
    first17 = f"11010619900101{n % 1000:03d}"  # region, birth date, serial
    return first17 + check_digit(first17)


@dataclass
class Result:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    checked_in: int = 0
    served: int = 0
    results_sent: int = 0

    def refusals(self) -> Counter[str]:
        return Counter(
            {k: v for k, v in self.statuses.items() if k.rsplit(" ", 1)[1][0] == "4"}
        )

    def table(self) -> list[str]:
        lines = ["| endpoint | requests | p50 ms | p95 ms |", "| --- | --: | --: | --: |"]
        for name, values in sorted(self.latencies.items()):
            q = statistics.quantiles(values, n=20) if len(values) >= 2 else values * 19
            lines.append(f"| {name} | {len(values)} | {statistics.median(values):.0f} | {q[18]:.0f} |")
        return lines


class Load:
    def __init__(self, base: str, result: Result) -> None:
        self.base = base
        self.result = result
        self.client = httpx.AsyncClient(base_url=base, timeout=30)
        self.tokens: dict[str, str] = {}
        self.waiting_mrns: list[str] = []
        self.orders: list[tuple[str, str]] = []

    async def call(self, method: str, path: str, who: str | None = None, **kw: object) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        started = time.perf_counter()
        response = await self.client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
        elapsed = (time.perf_counter() - started) * 1000
        name = f"{method} {IDS.sub('/{id}', path.split('?')[0])}"
        self.result.latencies[name].append(elapsed)
        self.result.statuses[f"{name} {response.status_code}"] += 1
        if response.status_code >= 500:
            self.result.server_errors.append(f"{name} {response.status_code} {response.text[:200]}")
        return response

    async def setup(self, mothers: int) -> None:
        for who in ("admin", "frontdesk", *STATION_LOGINS.values(), "butler-wang", "butler-li",
                    "butler-zhang"):
            r = await self.client.post("/v1/auth/login", json={"username": who, "password": PASSWORD})
            r.raise_for_status()
            self.tokens[who] = r.json()["access_token"]
        day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        session = await self.call(  # room for every walk-in today
            "POST", "/v1/clinic-sessions", "admin",
            json={"session_date": day, "starts_at": "00:00", "ends_at": "23:59", "per_hour": 60,
                  "name": "load"},
        )
        session.raise_for_status()
        butlers = (await self.call("GET", "/v1/butlers?limit=50", "admin")).json()["items"]
        for b in butlers:  # room for the load's mothers
            current = await self.call("GET", f"/v1/butlers/{b['id']}", "admin")
            raised = await self.call(
                "PATCH", f"/v1/butlers/{b['id']}", "admin",
                headers={"If-Match": current.headers["etag"]}, json={"max_caseload": 500},
            )
            raised.raise_for_status()
        for n in range(mothers):
            r = await self.call(
                "POST", "/v1/mothers", "frontdesk",
                json={
                    "mrn": f"LOAD{n:05d}", "name": f"负载{n}", "national_id": national_id(n),
                    "phone": f"139{n:08d}", "language": "zh-CN",
                    "pregnancy": {"lmp_date": "2026-06-01", "gravida": 1, "para": 0, "risk_grade": "green"},
                },
            )
            if r.status_code != 201:
                raise RuntimeError(f"enrolment failed: {r.status_code} {r.text[:300]}")
            self.waiting_mrns.append(f"LOAD{n:05d}")

    async def desk(self, until: float) -> None:
        while time.monotonic() < until and self.waiting_mrns:
            mrn = self.waiting_mrns.pop(0)
            r = await self.call("POST", "/v1/check-ins", "frontdesk", json={"mrn": mrn})
            if r.status_code == 200:
                self.result.checked_in += 1
                self.orders += [(mrn, o["order_number"]) for o in r.json()["exam_orders"]]
            await asyncio.sleep(0.15)

    async def room(self, station: str, room: int, until: float) -> None:
        while time.monotonic() < until:
            who = STATION_LOGINS[station]
            r = await self.call("POST", f"/v1/stations/{station}/call-next", who, json={"room": room})
            called = r.json().get("called") if r.status_code == 200 else None
            if not called:
                await asyncio.sleep(0.2)
                continue
            entry = called["entry"]["id"]
            await self.call("POST", f"/v1/queue-entries/{entry}/start", who)
            await asyncio.sleep(0.05)
            await self.call("POST", f"/v1/queue-entries/{entry}/finish", who)
            self.result.served += 1

    async def lab(self, until: float) -> None:
        n = 0
        while time.monotonic() < until:
            if not self.orders:
                await asyncio.sleep(0.2)
                continue
            mrn, order = self.orders.pop(0)
            n += 1
            body = (
                f"MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01|LOAD-{uuid.uuid4().hex[:12]}|P|2.5\r"
                f"PID|1||{mrn}^^^HOSP^MR\rOBR|1|{order}|LF-{n}|24317-0^Hemogram^LN|||||||||||||||||||||F\r"
                "OBX|1|NM|718-7^Hemoglobin^LN||118|g/L|110-150|N|||F\r"
            ).encode()
            msg_id, ts = f"load-{uuid.uuid4().hex}", str(int(time.time()))
            mac = hmac.new(LAB_SECRET.encode(), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
            await self.call(
                "POST", "/v1/integrations/lab/hl7v2", content=body,
                headers={"X-API-Key": LAB_KEY, "content-type": "application/hl7-v2",
                         "webhook-id": msg_id, "webhook-timestamp": ts,
                         "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()},
            )
            self.result.results_sent += 1
            await asyncio.sleep(0.1)

    async def phone(self, who: str, until: float) -> None:
        etag = None
        while time.monotonic() < until:
            headers = {"If-None-Match": etag} if etag else {}
            r = await self.call("GET", "/v1/me/assignments", who, headers=headers)
            etag = r.headers.get("etag", etag)
            await asyncio.sleep(0.1)


async def check_invariants(database_url: str) -> list[str]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    queries = {
        "a mother called or served at two places": "SELECT mother_id FROM queue_entries WHERE state IN ('called','in_service') GROUP BY mother_id HAVING count(*) > 1",
        "a room serving two mothers": "SELECT station_id, room FROM queue_entries WHERE state IN ('called','in_service') GROUP BY station_id, room HAVING count(*) > 1",
        "a step served twice": "SELECT s.id FROM exam_steps s JOIN queue_entries e ON e.id = s.entry_id WHERE s.state = 'done' AND e.state <> 'done'",
        "a report twice": "SELECT sender_id, source_key FROM lab_reports GROUP BY sender_id, source_key HAVING count(*) > 1",
        "two live places for one service": "SELECT visit_id FROM queue_entries WHERE state IN ('waiting','called','in_service') GROUP BY visit_id, station_type, step_offset HAVING count(*) > 1",
    }
    out = []
    async with engine.connect() as conn:
        for name, sql in queries.items():
            rows = (await conn.execute(text(sql))).all()
            if rows:
                out.append(f"{name}: {len(rows)}")
    await engine.dispose()
    return out


async def run(base: str, database_url: str, *, seconds: float, mothers: int) -> Result:
    result = Result(seconds=seconds)
    load = Load(base, result)
    await load.setup(mothers)
    say(f"load: {seconds:.0f} s of desks, 8 rooms, the lab and 3 phones")
    until = time.monotonic() + seconds
    await asyncio.gather(
        load.desk(until),
        *(load.room(s, r, until) for s, r in ROOMS),
        load.lab(until),
        *(load.phone(b, until) for b in ("butler-wang", "butler-li", "butler-zhang")),
    )
    await load.client.aclose()
    result.violations = await check_invariants(database_url)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """Migrate, seed the demo clinic and start one uvicorn worker, as production would."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
           "DISPATCHER_IN_APP": "true", "LOGIN_MAX_FAILURES": "1000"}
    env.pop("DEMO_PASSWORD", None)
    for command in (["migrate"], ["seed-demo", "--if-empty"]):
        subprocess.run([sys.executable, "-m", "app.cli", *command], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--workers", "1",
         "--no-access-log"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("LOAD_SERVER_LOG", os.devnull), "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--mothers", type=int, default=120)
    args = parser.parse_args()
    server_url = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    name = f"pb_load_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    proc = None
    try:
        say(f"database {name}: migrate, seed the demo clinic, start the server")
        proc, base = await asyncio.to_thread(serve, url)
        say(f"enrolling {args.mothers} mothers")
        result = await run(base, url, seconds=args.seconds, mothers=args.mothers)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    total = sum(len(v) for v in result.latencies.values())
    lines = [
        "## Load with invariants (`make load`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, PostgreSQL on the same machine, one uvicorn worker. "
        f"{args.seconds:.0f} s: a desk checking {result.checked_in} mothers in, 8 rooms serving "
        f"{result.served} times, the lab posting {result.results_sent} results, 3 phones polling "
        f"with ETags; {total:,} requests.",
        "",
        f"- 5xx answers: {len(result.server_errors)} (target 0)",
        f"- invariants broken: {len(result.violations)} (target 0)"
        + (f": {'; '.join(result.violations)}" if result.violations else ""),
        "- other refusals (the clinic's rules, not failures): "
        + (", ".join(f"{k} × {v}" for k, v in sorted(result.refusals().items())) or "none"),
        "",
        *result.table(),
    ]
    write_section(ROOT / "bench" / "RESULTS.md", "load", "\n".join(lines))
    print("\n".join(lines))
    return 1 if result.server_errors or result.violations else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
