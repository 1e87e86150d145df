"""Prometheus metrics of the HTTP layer (labels are route templates, never raw paths)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "route", "status"])
REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
