"""Crash safety on PostgreSQL: lab results keep coming while the server and the notification
worker are killed with SIGKILL and restarted. Afterwards every result the lab was told "AA"
about has its report, none twice, and each report-ready notice went out exactly once.

The lab does what a real one does: it resends a message until it gets an ACK (and after an
AE "still being processed"), with the same webhook-id, so a message sent into a dying server
is never simply lost. A stored message whose server died is taken again by the resend (its
row lock died with the connection), after a few seconds' grace rather than minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.settings import Settings
from app.notifications.models import OutboxMessage
from app.reports.models import InboundMessage, LabReport
from tests.helpers.api import Api
from tests.helpers.counts import COUNTS
from tests.helpers.factories import LAB_KEY
from tests.helpers.messages import oru, signed
from tests.helpers.mothers import mother_with_butler
from tests.helpers.servers import ROOT, SmsGateway, free_port
from tests.helpers.visits import open_session

MOTHERS = 12  # butler1 and butler2 look after them; five orders each
KILLS = 6  # three of the server, three of the worker
# Done with: delivered, or a report-ready text sent as one with another of its window.
DONE = ("delivered", "coalesced")


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _orders(api: Api, clock: FrozenClock) -> list[tuple[str, str]]:
    """Mothers checked in today (by the wall clock the server will use), and their orders."""
    clock.set(datetime.now(UTC))
    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    # Room for every mother in whatever hour this runs (walk-ins take the current hour).
    await open_session(api, day=today, starts="00:00", ends="23:59", per_hour=60)
    out = []
    for i in range(MOTHERS):
        mother = await mother_with_butler(
            api,
            serial=f"{400 + i}",
            butler="butler1" if i < 8 else "butler2",
            phone=f"1380000{4000 + i}",
        )
        visit = await api.client.post(
            "/v1/check-ins", headers=api.auth("frontdesk"), json={"mrn": mother["mrn"]}
        )
        assert visit.status_code == 200, visit.text
        out += [(mother["mrn"], o["order_number"]) for o in visit.json()["exam_orders"]]
    return out


@pytest.mark.postgres_only
async def test_results_survive_killed_servers_and_workers(
    api: Api,
    clock: FrozenClock,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    orders = await _orders(api, clock)
    SmsGateway.requests, SmsGateway.effects = [], Counter()
    sms_port, port = free_port(), free_port()
    gateway = ThreadingHTTPServer(("127.0.0.1", sms_port), SmsGateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DISPATCHER_IN_APP": "false",
        "SMS_PROVIDER": "http",
        "SMS_HTTP_URL": f"http://127.0.0.1:{sms_port}/sms",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
    }
    server_args = ["uvicorn", "app.main:app", "--port", str(port), "--no-access-log"]
    server = _start(server_args, env)
    worker = _start(["app.cli", "dispatch"], env)
    base = f"http://127.0.0.1:{port}"
    acks: dict[str, str] = {}
    notes: dict[str, str] = {}
    busy_answers: Counter[str] = Counter()
    kills = 0
    sent = asyncio.Event()

    async def lab() -> None:
        """A steady lab: one result every 60 ms, each resent until it is ACKed."""
        async with httpx.AsyncClient(timeout=5) as client:
            for n, (mrn, order) in enumerate(orders):
                control = f"CRASH-{n}"
                body = oru(control_id=control, mrn=mrn, order=order, filler=f"F-{n}")
                webhook_id = f"crash-msg-{n}"
                for _attempt in range(600):
                    headers = {
                        "X-API-Key": LAB_KEY,
                        "content-type": "application/hl7-v2",
                        **signed(body, at=int(time.time()), msg_id=webhook_id),
                    }
                    try:
                        answer = await client.post(
                            f"{base}/v1/integrations/lab/hl7v2",
                            content=body.encode(),
                            headers=headers,
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)  # the server is down: try again
                        continue
                    if answer.status_code >= 500:
                        await asyncio.sleep(0.1)
                        continue
                    msa = next(s for s in answer.text.split("\r") if s.startswith("MSA"))
                    if "still being processed" in msa:  # "send it again later"
                        busy_answers["AE busy"] += 1
                        await asyncio.sleep(0.5)
                        continue
                    acks[control] = msa.split("|")[1]
                    notes[control] = msa
                    break
                await asyncio.sleep(0.06)
        sent.set()

    async def chaos() -> None:
        nonlocal server, worker, kills
        while not sent.is_set() and kills < KILLS:
            await asyncio.sleep(1.2)
            if kills % 2 == 0:
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=10)
                server = _start(server_args, env)
            else:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                worker = _start(["app.cli", "dispatch"], env)
            kills += 1

    async def outbox_pending() -> int:
        async with session_factory() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.state.not_in(DONE))
                )
                or 0
            )

    try:
        await asyncio.wait_for(asyncio.gather(lab(), chaos()), timeout=240)
        for _ in range(600):  # the worker drains what is left
            if await outbox_pending() == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        for proc in (server, worker):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        gateway.shutdown()

    assert kills == KILLS
    assert len(acks) == len(orders), "every message got an answer in the end"
    accepted = {c for c, code in acks.items() if code == "AA"}
    assert accepted == set(acks), {c: notes[c] for c in set(acks) - accepted}
    async with session_factory() as session:
        keys = {
            k
            for (k,) in (await session.execute(select(InboundMessage.message_key).distinct())).all()
        }
        reports = list(await session.scalars(select(LabReport)))
        ready = Counter(
            str(m.payload.get("report_id"))
            for m in await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "report.ready")
            )
        )
        texts = {
            str(i)
            for i in await session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.channel == "sms", OutboxMessage.state == "delivered"
                )
            )
        }
        undelivered = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state.not_in(DONE))
        )
    lost = {c for c in accepted if c not in keys}
    assert lost == set(), "an ACKed message was not stored"
    assert len(reports) == len(orders), "one report per result, none twice"
    assert len({(r.sender_id, r.source_key) for r in reports}) == len(reports)
    assert set(ready) == {str(r.id) for r in reports}
    assert set(ready.values()) == {1}, "one report-ready notice per report"
    assert undelivered == 0, "every notice was delivered"
    assert len(texts) == MOTHERS, "her report-ready texts of the morning went as one"
    assert set(SmsGateway.effects) == texts, "every text went out"
    assert set(SmsGateway.effects.values()) == {1}, "and none went out twice"
    COUNTS["kills survived"] += kills
    COUNTS["lab messages ACKed through kills"] += len(accepted)
    COUNTS["messages lost"] += len(lost)
