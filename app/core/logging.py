"""Structured JSON logs carrying the request id, with personal numbers masked on the way out."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# 18-digit national ids (last char may be X) and 11-digit Chinese mobile numbers. A number
# glued to Latin letters or digits is part of a token (a request id, a UUID's hex), not a
# person's number: masking it there would corrupt the very id an operator searches the logs
# for. A number after Chinese text, punctuation or a space is still masked.
_NATIONAL_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")

# PostgreSQL's "DETAIL: Key (mrn)=(MRN0001) already exists." carries the value itself.
_KEY_VALUES = re.compile(r"Key \(([^)]*)\)=\((?:[^()]|\([^()]*\))*\)")

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def scrub(text: str) -> str:
    """Mask anything that looks like a national id or mobile number, and database key values."""
    text = _KEY_VALUES.sub(r"Key (\1)=(…)", text)
    text = _NATIONAL_ID.sub(r"\1********\2", text)
    return _MOBILE.sub(r"\1****\2", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in payload and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(payload, default=str, ensure_ascii=False))


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        prefix = f"[{request_id}] " if request_id else ""
        return scrub(prefix + super().format(record))


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter() if json_logs else PlainFormatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The access log is ours (route templates, no query strings); uvicorn's would print raw URLs.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    # Drivers log SQL with bound parameters (names, ids, phones) at DEBUG: never let them.
    for chatty in ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
