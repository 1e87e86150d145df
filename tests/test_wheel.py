"""The wheel is complete: installed on its own, it migrates from any directory and reads its tables.

The wheel is built from a copy of what the Dockerfile copies (pyproject.toml, README.md, app/),
installed into a fresh virtualenv that borrows this one's dependencies through a .pth line (the
app itself only from the wheel), and run from a directory that holds no source.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from app.core.migrations import schema_head

ROOT = Path(__file__).resolve().parents[1]

# Run by the wheel's interpreter: where `app` comes from, and a guideline table read from it.
PROBE = """
import json, sys
import app
from app.careplan.registry import load_guidelines
print(json.dumps({
    "app": app.__file__,
    "path": sys.path,
    "guideline": load_guidelines()["cn-2018"].code,
}))
"""


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _data_files() -> set[str]:
    """Every file under app/ that is not Python: what the code reads beside its modules."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "app").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".py", ".pyc"}
    }


def test_installed_wheel_migrates_from_another_directory(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert _data_files() - shipped == set()
    revisions = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "app/migrations/versions").glob("*.py")
    }
    assert revisions
    assert revisions <= shipped

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    # The dependencies come from this environment; its .pth files (the editable app) do not run.
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp_path,
        ).strip()
    )
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n", encoding="utf-8")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "db" / "clinic.db"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
    }
    env |= {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "PYTHONNOUSERSITE": "1"}

    probe = json.loads(_run([str(python), "-c", PROBE], cwd=elsewhere, env=env))
    assert Path(probe["app"]).is_relative_to(venv)
    assert str(ROOT) not in probe["path"]
    assert probe["guideline"] == "cn-2018"

    _run([str(python), "-m", "app.cli", "migrate"], cwd=elsewhere, env=env)
    with sqlite3.connect(database) as db:
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        (exam_types,) = db.execute("SELECT count(*) FROM exam_types").fetchone()
    assert version == schema_head()
    assert exam_types > 0  # seeded by a revision from its packaged data file
