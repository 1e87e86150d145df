"""Benchmark of the butler's phone API on PostgreSQL, against a bare FastAPI baseline.

    make bench          (or: .venv/bin/python bench/feed_bench.py)

Starts the service the way production runs it (one uvicorn worker, PostgreSQL, no access log)
and a bare FastAPI "hello" app with the same uvicorn settings, then measures with wrk:
304 polls/s and 200 answers/s (10 items) as ratios to hello/s in the same run; 2,000 butlers
long-polling on one process (memory, idle CPU, change-to-answer latency); the same with 2,000
Server-Sent Events streams on a fresh process; and 304 polls/s with 1,000 and with 100,000
mothers in the database. Writes bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, time as dtime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.all_models import (  # noqa: E402
    AuthToken,
    Butler,
    CareAssignment,
    Mother,
    Pregnancy,
    RosterShift,
    Task,
    User,
)
from app.core.ids import uuid7  # noqa: E402
from app.core.migrations import upgrade  # noqa: E402
from sim.results import write_section  # noqa: E402
from app.core.secretbox import new_key  # noqa: E402
from app.core.security import hash_password, token_digest  # noqa: E402
from app.mothers.domain import check_digit  # noqa: E402

SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+asyncpg://root@127.0.0.1:5432/test")
BUTLERS = 200
POLLS_PER_BUTLER = 10
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
STREAM_IDLE_SECONDS = 32
NOW = datetime.now(UTC)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def admin(sql: str) -> None:
    engine = create_async_engine(SERVER, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def admin_on(url: str, sql: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def national_id(n: int) -> str:
    first17 = f"110105{date(1990, 1, 1) + timedelta(days=n // 1000):%Y%m%d}{n % 1000:03d}"
    return first17 + check_digit(first17)


async def seed(url: str, *, mothers_from: int, mothers_to: int, with_staff: bool) -> dict[str, object]:
    engine = create_async_engine(url, poolclass=NullPool)
    tokens: list[str] = []
    butler_ids: list[uuid.UUID] = []
    async with engine.begin() as conn:
        if with_staff:
            pw = hash_password("bench-password-123")
            users, butlers, shifts, toks = [], [], [], []
            desk_id = uuid7()
            users.append(dict(id=desk_id, username="desk", display_name="Desk", role="front_desk",
                              password_hash=pw, is_active=True, created_at=NOW, updated_at=NOW, version=1))
            desk_token = f"pbt_bench_desk_{uuid.uuid4().hex}"
            toks.append(dict(id=uuid7(), user_id=desk_id, token_hash=token_digest(desk_token),
                             created_at=NOW, expires_at=NOW + timedelta(days=1)))
            for i in range(BUTLERS):
                uid, bid = uuid7(), uuid7()
                users.append(dict(id=uid, username=f"butler{i}", display_name=f"Butler {i}", role="butler",
                                  password_hash=pw, is_active=True, created_at=NOW, updated_at=NOW, version=1))
                butlers.append(dict(id=bid, user_id=uid, display_name=f"Butler {i}", skills=["high_risk"],
                                    languages=["zh-CN"], max_caseload=1000, is_active=True,
                                    created_at=NOW, updated_at=NOW, version=1))
                shifts.extend(dict(id=uuid7(), butler_id=bid, weekday=d, starts_at=dtime(0), ends_at=dtime(23, 59))
                              for d in range(7))
                token = f"pbt_bench_{i}_{uuid.uuid4().hex}"
                toks.append(dict(id=uuid7(), user_id=uid, token_hash=token_digest(token), created_at=NOW,
                                 expires_at=NOW + timedelta(days=1)))
                tokens.append(token)
                butler_ids.append(bid)
            await conn.execute(insert(User), users)
            await conn.execute(insert(Butler), butlers)
            await conn.execute(insert(RosterShift), shifts)
            await conn.execute(insert(AuthToken), toks)
        else:
            butler_ids = list((await conn.execute(text("SELECT id FROM butlers ORDER BY id"))).scalars())
        for start in range(mothers_from, mothers_to, 5000):
            chunk = range(start, min(start + 5000, mothers_to))
            ms, ps, cs = [], [], []
            for n in chunk:
                mid = uuid7()
                butler = butler_ids[n % len(butler_ids)]
                ms.append(dict(id=mid, mrn=f"B{n:07d}", name=f"母亲{n}", national_id=national_id(n),
                               phone="13800138000", date_of_birth=date(1990, 1, 1), language="zh-CN",
                               primary_butler_id=butler, created_at=NOW, updated_at=NOW, version=1))
                ps.append(dict(id=uuid7(), mother_id=mid, status="active", lmp_date=None,
                               edd_date=date.today() + timedelta(days=100), dating_method="reported",
                               gravida=1, para=0, risk_grade="green", care_plan_code="cn-2018",
                               created_at=NOW))
                cs.append(dict(id=uuid7(), mother_id=mid, butler_id=butler, role="primary",
                               starts_at=NOW, reason="bench", assigned_by_name="bench"))
            await conn.execute(insert(Mother), ms)
            await conn.execute(insert(Pregnancy), ps)
            await conn.execute(insert(CareAssignment), cs)
            say(f"  seeded mothers {chunk.start:,}-{chunk.stop:,}")
        if with_staff:  # ten open tasks on butler 0's phone: the 200 answer has 10 items
            first_mothers = list((await conn.execute(text(
                "SELECT mother_id FROM care_assignments WHERE butler_id = :b LIMIT 10"), {"b": butler_ids[0]}
            )).scalars())
            await conn.execute(insert(Task), [
                dict(id=uuid7(), mother_id=first_mothers[i % len(first_mothers)],
                     butler_id=butler_ids[0], title=f"task {i}", due_at=NOW + timedelta(days=1),
                     created_by_name="bench", created_at=NOW, reminders_sent=0)
                for i in range(10)
            ])
    await engine.dispose()
    return {"tokens": tokens, "butler_ids": butler_ids, "desk": desk_token if with_staff else None}


def start(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    def more_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))

    log = ROOT / "bench" / "out" / f"server-{app.split(':')[0].rsplit('.', 1)[-1]}-{port}.log"
    log.parent.mkdir(exist_ok=True)
    return subprocess.Popen(  # its warnings and errors kept for when a run goes wrong
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", "1",
         "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=ROOT, env=env, preexec_fn=more_files,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def wrk(url: str, *headers: str) -> float:
    args = ["wrk", "-t2", "-c64", f"-d{WRK_SECONDS}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw errors on {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def long_poll(port: int, token: str, etag: str, wait: int = 30) -> tuple[int, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (f"GET /v1/me/assignments?wait={wait} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\n"
         f"If-None-Match: {etag}\r\nConnection: close\r\n\r\n").encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    answered = time.monotonic()
    writer.close()
    return int(status_line.split()[1]), answered


async def phone(port: int, token: str, etag: str) -> float:
    """A butler's phone: after each 304 (30 s, nothing changed) it asks again; the moment its
    answer came. Taking in 2,000 at once can outlast one long-poll on a slow machine."""
    while True:
        status, answered = await long_poll(port, token, etag)
        if status == 200:
            return answered
        assert status == 304, status


async def event_stream(port: int, token: str, after: int, arrivals: list[float]) -> None:
    """A butler's phone on the Server-Sent Events feed: the moment each event arrives."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (f"GET /v1/me/events/stream HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\n"
         f"Last-Event-ID: {after}\r\nConnection: close\r\n\r\n").encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    try:
        while line := await reader.readline():
            if b"event: feed" in line:
                arrivals.append(time.monotonic())
    finally:
        writer.close()


async def main() -> int:
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))
    name = f"pb_bench_{uuid.uuid4().hex[:8]}"
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    say(f"database {name}")
    await admin(f'CREATE DATABASE "{name}"')
    service = hello = big = None
    big_name = f"{name}_big"
    big_url = SERVER.rsplit("/", 1)[0] + f"/{big_name}"
    try:
        await asyncio.to_thread(upgrade, url)
        say("seeding 200 butlers and 1,000 mothers")
        seeded = await seed(url, mothers_from=0, mothers_to=1000, with_staff=True)
        tokens: list[str] = seeded["tokens"]  # type: ignore[assignment]
        butler_ids: list[uuid.UUID] = seeded["butler_ids"]  # type: ignore[assignment]
        env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "production", "SECRETS_KEYS": new_key(), "LOG_LEVEL": "WARNING",
               "DISPATCHER_IN_APP": "false", "SMS_PROVIDER": "http", "SMS_HTTP_URL": "http://127.0.0.1:9"}
        port, hello_port = free_port(), free_port()
        service = start("app.main:app", port, env)
        hello = start("bench.hello_app:app", hello_port, env)
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        await wait_ready(f"http://127.0.0.1:{hello_port}/hello")
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=60) as client:
            etags = []
            for token in tokens:
                r = await client.get(f"{base}/v1/me/assignments", headers={"Authorization": f"Bearer {token}"})
                etags.append(r.headers["etag"])
            assert len((await client.get(f"{base}/v1/me/assignments",
                                         headers={"Authorization": f"Bearer {tokens[0]}"})).json()["items"]) == 10

        say(f"wrk: hello, 304 polls and 200 answers ({WRK_SECONDS} s each)")
        hello_rps = wrk(f"http://127.0.0.1:{hello_port}/hello")
        poll_rps = wrk(f"{base}/v1/me/assignments", f"Authorization: Bearer {tokens[0]}", f"If-None-Match: {etags[0]}")
        answer_rps = wrk(f"{base}/v1/me/assignments", f"Authorization: Bearer {tokens[0]}")
        say("wrk: 200 answers rebuilt every time (FEED_ANSWER_CACHE=0, a second server)")
        rebuild_port = free_port()
        rebuild = start("app.main:app", rebuild_port, {**env, "FEED_ANSWER_CACHE": "0"})
        try:
            await wait_ready(f"http://127.0.0.1:{rebuild_port}/readyz")
            rebuilt_rps = wrk(f"http://127.0.0.1:{rebuild_port}/v1/me/assignments", f"Authorization: Bearer {tokens[0]}")
        finally:
            stop(rebuild)

        say(f"{BUTLERS * POLLS_PER_BUTLER:,} long-polls on one process")
        rss_before = rss_mb(service.pid)
        polls = [
            asyncio.create_task(phone(port, tokens[i % BUTLERS], etags[i % BUTLERS]))
            for i in range(BUTLERS * POLLS_PER_BUTLER)
        ]
        # Let the server take in all 2,000 before measuring "idle".
        for _ in range(60):
            before = cpu_seconds(service.pid)
            await asyncio.sleep(1)
            if cpu_seconds(service.pid) - before < 0.05:
                break
        rss_waiting = rss_mb(service.pid)
        cpu0 = cpu_seconds(service.pid)
        await asyncio.sleep(5)
        idle_cpu = (cpu_seconds(service.pid) - cpu0) / 5 * 100
        latencies = []
        desk = {"Authorization": f"Bearer {seeded['desk']}"}
        async with httpx.AsyncClient(timeout=30) as client:
            chosen = random.Random(7).sample(range(1, BUTLERS), 40)
            for i in chosen:
                mother = (await client.get(f"{base}/v1/mothers", params={"primary_butler_id": str(butler_ids[i]), "limit": 1},
                                           headers=desk)).json()["items"][0]["id"]
                watchers = [p for j, p in enumerate(polls) if j % BUTLERS == i]
                r = await client.post(f"{base}/v1/mothers/{mother}/tasks", headers=desk,
                                      json={"title": "bench task", "due_at": (NOW + timedelta(days=2)).isoformat()})
                committed = time.monotonic()  # the answer comes after the commit
                assert r.status_code == 201, r.text
                answered = await asyncio.wait_for(watchers[0], timeout=10)
                latencies.append(max(answered - committed, 0.0) * 1000)
        for p in polls:
            p.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        p99 = statistics.quantiles(latencies, n=100)[98]

        say(f"{BUTLERS * POLLS_PER_BUTLER:,} event streams on a fresh process")
        stream_port = free_port()
        streamer = start("app.main:app", stream_port, env)
        try:
            await wait_ready(f"http://127.0.0.1:{stream_port}/readyz")
            versions = []
            async with httpx.AsyncClient(timeout=60) as client:
                for token in tokens:
                    r = await client.get(f"http://127.0.0.1:{stream_port}/v1/me/assignments",
                                         headers={"Authorization": f"Bearer {token}"})
                    versions.append(r.json()["version"])
            stream_rss_before = rss_mb(streamer.pid)
            arrivals: list[list[float]] = [[] for _ in range(BUTLERS * POLLS_PER_BUTLER)]
            streams = [
                asyncio.create_task(event_stream(stream_port, tokens[i % BUTLERS], versions[i % BUTLERS], arrivals[i]))
                for i in range(BUTLERS * POLLS_PER_BUTLER)
            ]
            for _ in range(60):  # let the server take in all 2,000 first
                before = cpu_seconds(streamer.pid)
                await asyncio.sleep(1)
                if cpu_seconds(streamer.pid) - before < 0.05:
                    break
            stream_rss = rss_mb(streamer.pid)
            cpu0 = cpu_seconds(streamer.pid)
            await asyncio.sleep(STREAM_IDLE_SECONDS)  # two heartbeats: each stream reads its version
            stream_cpu = (cpu_seconds(streamer.pid) - cpu0) / STREAM_IDLE_SECONDS * 100
            stream_latencies = []
            async with httpx.AsyncClient(timeout=30) as client:
                for i in random.Random(11).sample(range(1, BUTLERS), 40):
                    mother = (await client.get(f"http://127.0.0.1:{stream_port}/v1/mothers",
                                               params={"primary_butler_id": str(butler_ids[i]), "limit": 1},
                                               headers=desk)).json()["items"][0]["id"]
                    seen = len(arrivals[i])
                    r = await client.post(f"http://127.0.0.1:{stream_port}/v1/mothers/{mother}/tasks", headers=desk,
                                          json={"title": "bench task", "due_at": (NOW + timedelta(days=2)).isoformat()})
                    committed = time.monotonic()
                    assert r.status_code == 201, r.text
                    for _ in range(1000):
                        if len(arrivals[i]) > seen:
                            break
                        await asyncio.sleep(0.005)
                    else:
                        raise RuntimeError("an event stream never saw its change")
                    stream_latencies.append(max(arrivals[i][seen] - committed, 0.0) * 1000)
            for t in streams:
                t.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
            stream_p99 = statistics.quantiles(stream_latencies, n=100)[98]
        finally:
            stop(streamer)

        say("a second database with 100,000 mothers, served by a second server")
        await admin(f'CREATE DATABASE "{big_name}"')
        await asyncio.to_thread(upgrade, big_url)
        big_seeded = await seed(big_url, mothers_from=0, mothers_to=1000, with_staff=True)
        await seed(big_url, mothers_from=1000, mothers_to=100_000, with_staff=False)
        await admin_on(big_url, "VACUUM ANALYZE")
        big_port = free_port()
        big = start("app.main:app", big_port, {**env, "DATABASE_URL": big_url})
        await wait_ready(f"http://127.0.0.1:{big_port}/readyz")
        big_token = big_seeded["tokens"][0]  # type: ignore[index]
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.get(f"http://127.0.0.1:{big_port}/v1/me/assignments", headers={"Authorization": f"Bearer {big_token}"})
            big_etag = r.headers["etag"]
        await asyncio.sleep(5)  # let the database settle before measuring
        say("wrk: 304 polls, 1,000 and 100,000 mothers, interleaved three times")
        small_runs, big_runs = [], []
        for _ in range(3):  # interleaved, so that the machine's drift hits both alike
            small_runs.append(wrk(f"{base}/v1/me/assignments", f"Authorization: Bearer {tokens[0]}", f"If-None-Match: {etags[0]}"))
            big_runs.append(wrk(f"http://127.0.0.1:{big_port}/v1/me/assignments", f"Authorization: Bearer {big_token}", f"If-None-Match: {big_etag}"))
        poll_rps_small, poll_rps_big = statistics.median(small_runs), statistics.median(big_runs)
    finally:
        for proc in (service, hello, big):
            if proc is not None:
                stop(proc)
        for db in (name, big_name):
            await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    rows = [
        ("304 polls/s ÷ hello/s", f"{poll_rps:,.0f} / {hello_rps:,.0f} = {poll_rps / hello_rps:.2f}", "≥ 0.5", poll_rps / hello_rps >= 0.5),
        ("200 answers (10 items)/s ÷ hello/s, unchanged (answer kept per version)", f"{answer_rps:,.0f} / {hello_rps:,.0f} = {answer_rps / hello_rps:.2f}", "≥ 0.25", answer_rps / hello_rps >= 0.25),
        ("200 answers (10 items)/s ÷ hello/s, rebuilt every time", f"{rebuilt_rps:,.0f} / {hello_rps:,.0f} = {rebuilt_rps / hello_rps:.2f}", "none: the cost of one build, made once per change (the row above is what phones get)", None),
        ("resident memory, 2,000 long-polls", f"{rss_waiting:.0f} MB (idle before: {rss_before:.0f} MB)", "< 300 MB", rss_waiting < 300),
        ("CPU while 2,000 wait", f"{idle_cpu:.1f} %", "< 5 %", idle_cpu < 5),
        ("change → waiting phone, p99 of 40", f"{p99:.0f} ms (median {statistics.median(latencies):.0f} ms)", "< 500 ms", p99 < 500),
        ("resident memory, 2,000 event streams (SSE)", f"{stream_rss:.0f} MB (idle before: {stream_rss_before:.0f} MB)", "< 300 MB (as long-polls)", stream_rss < 300),
        (f"CPU while 2,000 streams wait ({STREAM_IDLE_SECONDS} s, heartbeats included)", f"{stream_cpu:.1f} %", "< 5 % (as long-polls)", stream_cpu < 5),
        ("change → open event stream, p99 of 40", f"{stream_p99:.0f} ms (median {statistics.median(stream_latencies):.0f} ms)", "< 500 ms (as long-polls)", stream_p99 < 500),
        ("304 polls/s, 100,000 vs 1,000 mothers (medians of 3 interleaved runs)", f"{poll_rps_big:,.0f} vs {poll_rps_small:,.0f} ({(poll_rps_big / poll_rps_small - 1) * 100:+.1f} %)", "within 10 %", abs(poll_rps_big / poll_rps_small - 1) <= 0.10),
    ]
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.processor())
    lines = [
        "## The butler's phone (`make bench`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, Python {platform.python_version()}, "
        "PostgreSQL on the same machine. One uvicorn worker for the service and one for the baseline "
        f"(a bare FastAPI endpoint, same settings, same run); wrk -t2 -c64 -d{WRK_SECONDS}s.",
        "",
        "| measure | result | target | met |",
        "| --- | --- | --- | --- |",
        *[f"| {m} | {r} | {t} | {'—' if ok is None else 'yes' if ok else 'NO'} |" for m, r, t, ok in rows],
        "",
        "Command: `make bench`. Machines here are noisy; compare ratios within one run, not across runs.",
        "",
    ]
    write_section(ROOT / "bench" / "RESULTS.md", "butler-feed", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
