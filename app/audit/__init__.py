"""Append-only audit trail of every access to a mother's data."""
