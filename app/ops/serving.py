"""Serving the app with uvicorn, its own log lines in the service's format.

uvicorn configures its loggers ("uvicorn", "uvicorn.error") before it imports the app, with
plain-text handlers of its own: its start-up, shutdown and error lines (an exception in the
app, a malformed request) would not be JSON like the rest. ``log_config`` gives them the
service's formatter from the first line. The access log stays ours (RequestContextMiddleware:
route templates, no query strings), so uvicorn's is off.

``python -m app.cli serve`` runs this: ``make run``, the Dockerfile and docker-compose.yml.
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 35  # long-polls end within 30 s; event streams are cut after 35


class DropColourMessage(logging.Filter):
    """uvicorn adds a copy of some messages with terminal colour codes (``color_message``):
    noise in a JSON line, dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def uvicorn_log_config(*, json_logs: bool = True, level: str = "INFO") -> dict[str, Any]:
    """A logging.config dict for uvicorn: its loggers write through the service's formatter
    to stdout, where the app's own lines go."""
    formatter: dict[str, Any] = (
        {"()": "app.core.logging.JsonFormatter"}
        if json_logs
        else {"()": "app.core.logging.PlainFormatter", "fmt": "%(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "filters": {"no_colour": {"()": "app.ops.serving.DropColourMessage"}},
        "handlers": {
            "service": {
                "class": "logging.StreamHandler",
                "formatter": "service",
                "filters": ["no_colour"],
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["service"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            # Ours is in the middleware; uvicorn's would print raw URLs with their queries.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run the service until it is told to stop (SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        log_config=uvicorn_log_config(json_logs=settings.log_json, level=settings.log_level),
        access_log=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,  # no software version to whoever asks
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
