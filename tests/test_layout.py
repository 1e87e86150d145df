"""Tests share helpers through tests/helpers/ and fixtures through conftest.py files: no test
file imports a test module or a conftest (pytest loads those itself)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def imported_modules(source: str, package: str) -> list[str]:
    """Every module a file of ``package`` imports, written out in full (relative ones resolved,
    and ``from a import b`` counted as a and as a.b, since b may be a module)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.append(base)
            out += [f"{base}.{alias.name}" for alias in node.names]
    return out


def is_test_module_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("tests.") and (last.startswith("test_") or last == "conftest")


def test_no_test_file_imports_a_test_module_or_a_conftest() -> None:
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parts[:-1])
        for module in imported_modules(path.read_text(), package):
            if is_test_module_or_conftest(module):
                offences.append(f"{path.relative_to(TESTS.parent)} imports {module}")
    assert offences == []


@pytest.mark.parametrize(
    ("line", "offends"),
    [
        ("from tests.visits.test_visits_api import book", True),
        ("from tests.conftest import Api", True),
        ("import tests.core.test_errors", True),
        ("from tests.reports import test_reports_api", True),
        ("from . import conftest", True),
        ("from .test_queues_api import op", True),
        ("from ..visits.test_visits_api import book", True),
        ("from tests.helpers.visits import book", False),
        ("from tests.helpers import servers", False),
        ("from app.visits.domain import VisitStatus", False),
    ],
)
def test_the_guard_sees_each_way_of_importing_a_test_module(line: str, offends: bool) -> None:
    found = [m for m in imported_modules(line, "tests.queues") if is_test_module_or_conftest(m)]
    assert bool(found) is offends
