"""Liveness, readiness and metrics endpoints for the platform."""
