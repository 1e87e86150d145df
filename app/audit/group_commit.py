"""Audit rows of many requests written in one transaction, each request answered after it.

The butler's phone reads its assignments far more often than anything else is done, and each
answer that shows mothers writes one audit row per mother. Written in the request's own
transaction that is one commit per request, and the commit, not the answer, is what costs.

Here requests hand their rows to a writer and wait. While one transaction is being written,
the rows of the requests that arrive meanwhile gather, and the next transaction takes them all
(group commit, as PostgreSQL does with its own WAL flushes). Nothing is traded for the speed:
a request waits until its rows are committed, and if the write fails it is answered with
nothing but the failure. An idle writer starts at once, so a lone request waits no longer than
its own insert.

On PostgreSQL the rows go in with COPY (one round trip for the whole batch); elsewhere with one
executemany INSERT. On SQLite the writer takes the process's write lock like any writing request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent

logger = logging.getLogger("app.audit")

_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
COLUMNS = [c.name for c in _TABLE.columns]


class AuditGroupCommit:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        write_lock: asyncio.Lock | None,
        max_rows: int = 5000,
        timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        self._lock = write_lock
        self._max = max_rows
        self._timeout = timeout
        self._closed = False
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._copy = engine.dialect.name == "postgresql"
        self.batches = 0  # how many transactions, for the benchmark and the tests
        self.rows = 0

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed; raise what the write raised if it failed."""
        if not rows:
            return
        if self._closed:
            raise RuntimeError("the audit writer is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        # A caller that goes away (the phone hung up) does not take its rows with it.
        await asyncio.shield(future)

    async def close(self) -> None:
        """Finish what is pending and take no more; at shutdown, before the engine goes."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(BaseException):
                await self._writer
        self._fail(self._pending, RuntimeError("the audit writer closed before these rows"))
        self._pending = []

    async def _drain(self) -> None:
        while self._pending:
            batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
            size = 0
            while self._pending and (not batch or size + len(self._pending[0][0]) <= self._max):
                rows, future = self._pending.pop(0)
                batch.append((rows, future))
                size += len(rows)
            try:
                await self._insert([row for rows, _ in batch for row in rows])
            except Exception as exc:  # every waiter hears of it; none is answered
                logger.error("audit write failed", extra={"event": "audit_write_failed"})
                self._fail(batch, exc)
            except BaseException:  # cancelled (shutdown): nobody may wait for ever
                self._fail(batch, RuntimeError("the audit write was cancelled"))
                self._fail(self._pending, RuntimeError("the audit write was cancelled"))
                self._pending = []
                raise
            else:
                self.batches += 1
                self.rows += size
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    @staticmethod
    def _fail(
        batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]], exc: Exception
    ) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        if self._copy:
            async with self._engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                # Outside an explicit transaction COPY commits on its own: all rows or none.
                # A stalled COPY fails its waiters after the timeout (they go on to the route).
                # "detail" as the ORM writes it: JSON, so None is JSON null as on every row.
                await driver.copy_records_to_table(
                    _TABLE.name,
                    columns=COLUMNS,
                    records=[
                        tuple(json.dumps(row[c]) if c == "detail" else row[c] for c in COLUMNS)
                        for row in rows
                    ],
                    timeout=self._timeout,
                )
            return
        lock = self._lock if self._lock is not None else contextlib.nullcontext()
        async with lock, self._engine.begin() as conn:
            await conn.execute(insert(_TABLE), rows)
