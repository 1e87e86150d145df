"""The embedded database's file, its -wal/-shm and its folder are its owner's only."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.cli import main
from app.core.database import create_engine, protect_sqlite_file, sqlite_path
from app.core.settings import Settings, get_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """As on a machine whose umask lets others read new files (022, the usual default)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_migrate_makes_an_owner_only_folder_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "var" / "clinic.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["migrate"]) == 0
    finally:
        get_settings.cache_clear()
    assert (mode(db.parent), mode(db)) == (0o700, 0o600)


async def test_the_wal_and_shm_files_are_owner_only_while_the_service_runs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "var" / "clinic.db"
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{db}"))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.commit()
            wal, shm = db.with_name("clinic.db-wal"), db.with_name("clinic.db-shm")
            assert wal.exists()  # WAL mode, connection still open
            assert shm.exists()
            assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        await engine.dispose()
    assert mode(db.parent) == 0o700


def test_an_older_install_readable_by_others_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    db = folder / "clinic.db"
    for name in ("clinic.db", "clinic.db-wal", "clinic.db-shm"):
        (folder / name).write_bytes(b"")
        (folder / name).chmod(0o644)
    folder.chmod(0o755)
    protect_sqlite_file(f"sqlite+aiosqlite:///{db}")
    assert mode(folder) == 0o700
    assert [mode(folder / n) for n in ("clinic.db", "clinic.db-wal", "clinic.db-shm")] == [
        0o600
    ] * 3


def test_a_folder_holding_other_files_is_left_alone_but_the_file_is_closed(
    tmp_path: Path,
) -> None:
    """A database kept in a project or home folder: closing that folder would lock others out
    of what else is in it (the probe's clone and logs were)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("x")
    project.chmod(0o755)
    protect_sqlite_file(f"sqlite+aiosqlite:///{project / 'demo.db'}")
    assert mode(project) == 0o755
    assert mode(project / "demo.db") == 0o600


def test_a_shared_sticky_folder_is_left_alone_but_the_file_is_closed(tmp_path: Path) -> None:
    """A temp folder is everyone's: not ours to close; the file's own mode closes her data."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    protect_sqlite_file(f"sqlite+aiosqlite:///{shared / 'demo.db'}")
    assert mode(shared) == 0o1777
    assert mode(shared / "demo.db") == 0o600


def test_the_path_of_a_url() -> None:
    assert sqlite_path("sqlite+aiosqlite:////srv/var/a.db") == Path("/srv/var/a.db")
    assert sqlite_path("sqlite+aiosqlite:///rel/a.db?timeout=5") == Path("rel/a.db")
    assert sqlite_path("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_path("sqlite+aiosqlite://") is None
