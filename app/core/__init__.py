"""Shared plumbing: settings, database, errors, security, clock, logging."""
