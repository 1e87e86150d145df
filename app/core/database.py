"""Engine, sessions and the declarative base shared by every domain package."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import DateTime, Enum, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.core.hooks import CommitHooks
from app.core.ids import uuid7
from app.core.session_state import Services, services_info
from app.core.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


logger = logging.getLogger("app.database")

# The embedded database holds every mother's record: only the account that runs the service
# may read it. SQLite gives its -wal and -shm files the database file's own mode.
SQLITE_FILE_MODE = 0o600
SQLITE_FOLDER_MODE = 0o700
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite...:///path`` URL; None for an in-memory database."""
    _, sep, rest = database_url.partition(":///")
    path = rest.split("?", 1)[0]
    if not sep or not path or path == ":memory:" or path.startswith("file::memory:"):
        return None
    return Path(path)


def protect_sqlite_file(database_url: str) -> Path | None:
    """Create the database's folder (0700) and file (0600) before SQLite does, and tighten
    them, with the -wal/-shm files, if an older start left them readable by others.

    A folder that already existed is tightened only when this account owns it, it holds
    nothing but the database's files, and it is not a shared sticky folder such as /tmp (none
    of which is ours to close); the file's own 0600 keeps her data in every case. Called by
    create_engine and by ``cli migrate``."""
    path = sqlite_path(database_url)
    if path is None:
        return None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        folder.mkdir(mode=SQLITE_FOLDER_MODE, parents=True, exist_ok=True)
        folder.chmod(SQLITE_FOLDER_MODE)  # mkdir's mode is cut by the umask: say it exactly
    else:
        info = folder.stat()
        shared = info.st_mode & stat.S_ISVTX and info.st_mode & stat.S_IWOTH
        # Only a folder of the database's own (nothing else in it) is ours to close: a
        # database kept in a project folder or a home folder must not lock others out of it.
        own = {path.name, *(path.name + suffix for suffix in SQLITE_COMPANIONS)}
        dedicated = all(entry.name in own for entry in folder.iterdir())
        if info.st_uid == os.geteuid() and not shared and stat.S_IMODE(info.st_mode) & 0o077:
            if dedicated:
                logger.warning(
                    "database folder was readable by others; now owner only",
                    extra={"path": str(folder)},
                )
                folder.chmod(stat.S_IMODE(info.st_mode) & ~0o077 | 0o700)
            else:
                logger.warning(
                    "database folder is readable by others and holds other files: left as "
                    "it is (the database file itself is owner only); give it a folder of its own",
                    extra={"path": str(folder)},
                )
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, SQLITE_FILE_MODE))  # empty: valid
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and stat.S_IMODE(companion.stat().st_mode) & 0o077:
            companion.chmod(SQLITE_FILE_MODE)
    return path


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        protect_sqlite_file(settings.database_url)
        engine = create_async_engine(
            settings.database_url, echo=settings.sql_echo, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        echo=settings.sql_echo,
        hide_parameters=True,  # SQL errors and echo must not print personal data
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
    )


def create_session_factory(
    engine: AsyncEngine,
    *,
    hooks: CommitHooks,
    services: Services | None = None,
) -> async_sessionmaker[AsyncSession]:
    """Sessions of the app. ``hooks`` are what a commit does besides writing (the app's list is
    ``app.wiring.COMMIT_HOOKS``; build factories with ``app.wiring.session_factory``);
    ``services`` are the per-process objects those hooks tell."""
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=hooks.session_class,
        info=services_info(services or Services()),
    )


def str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a named CHECK constraint, stored by value."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
    )
