"""What tests that start real processes share: the project root, free ports, a fake SMS
gateway, and the seeded demo server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SmsGateway(BaseHTTPRequestHandler):
    """An HTTP SMS gateway that honours Idempotency-Key: every request is kept, each key sent
    once (reset ``requests`` and ``effects`` before a test serves it)."""

    requests: ClassVar[list[str]] = []
    effects: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        json.loads(self.rfile.read(length))
        key = self.headers.get("idempotency-key", "")
        time.sleep(0.02)  # a real gateway takes a while: room for a kill mid-delivery
        with self.lock:
            self.requests.append(key)
            if key not in self.effects:  # a gateway honouring Idempotency-Key sends once
                self.effects[key] += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def run_demo_server(tmp_path: Path) -> Iterator[str]:
    """A migrated, demo-seeded server on a SQLite file of its own; yields its base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        "LOG_LEVEL": "WARNING",
        "FEED_STREAM_SECONDS": "1",  # an event stream read to its end ends soon
    }
    env.pop("DEMO_PASSWORD", None)
    # The README's walk-throughs follow one mother of their own through a quiet clinic: no demo
    # day (seed-demo --no-day), so that a call-next calls her.
    for command in (["migrate"], ["seed-demo", "--if-empty", "--no-day"]):
        subprocess.run([sys.executable, "-m", "app.cli", *command], env=env, check=True, cwd=ROOT)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # a loaded CI machine starts slowly
            try:
                with urllib.request.urlopen(f"{base}/healthz") as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
