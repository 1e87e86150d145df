"""Alembic's script directory (env.py, versions/, data/), shipped inside the package as data."""
