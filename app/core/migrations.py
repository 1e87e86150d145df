"""Running Alembic from code: the CLI, readiness and tests use the same configuration.

The script directory (env.py, the revisions and the reference data they seed) is package data
in ``app/migrations``, found beside this module, so an installed wheel migrates from any
directory. Only the script location matters for running revisions; the authoring settings
(date-prefixed file names) are in the root alembic.ini, for ``alembic revision`` in a checkout.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def schema_head() -> str | None:
    if not MIGRATIONS_DIR.is_dir():
        return None
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
