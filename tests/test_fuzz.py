"""API fuzzing: Schemathesis against the app's own OpenAPI document, on a live demo server.

Every operation gets generated valid and invalid input, under several roles' tokens: no 5xx,
every status code, content type and response body as documented. FUZZ_EXAMPLES sets the
examples per operation and FUZZ_ALL_ROLES=1 runs every role: `make test` keeps it quick,
`.ci/run` runs the long version.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.helpers.counts import COUNTS, DISTINCT
from tests.helpers.servers import run_demo_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Every role in the long run (FUZZ_ALL_ROLES=1, which .ci/run sets); two in a quick one.
ROLES = (
    ["admin", "frontdesk", "doctor", "station-us", "butler-wang"]
    if os.environ.get("FUZZ_ALL_ROLES") == "1"
    else ["admin", "butler-wang"]
)


def login(base: str, username: str) -> str:
    request = urllib.request.Request(  # noqa: S310 - our own local server
        f"{base}/v1/auth/login",
        data=json.dumps({"username": username, "password": "butler-demo-2026"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        token: str = json.load(response)["access_token"]
        return token


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with run_demo_server(tmp_path_factory.mktemp("fuzz")) as base:
        yield base, {role: login(base, role) for role in ROLES}


def _document() -> dict[str, object]:
    """The OpenAPI document of this build, read without a server (as /openapi.json serves it)."""
    from app.core.settings import Settings
    from app.main import create_app

    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", log_json=False))
    return app.openapi()


schema = schemathesis.openapi.from_dict(_document())


@pytest.mark.parametrize("role", ROLES)
@schema.exclude(path="/v1/auth/logout").parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, live: tuple[str, dict[str, str]], role: str
) -> None:
    base, tokens = live
    case.call_and_validate(
        base_url=base,
        headers={"Authorization": f"Bearer {tokens[role]}"},
        checks=CHECKS,
    )
    COUNTS["fuzz examples run"] += 1
    DISTINCT["operations fuzzed"].add(f"{case.operation.method.upper()} {case.operation.path}")


# Stateful: follow the document's links from what a POST creates to where it is read (a mother
# enrolled, then read and her care plan; a visit booked or checked in, then read and queued).
class _Live:
    base = ""
    token = ""


@pytest.fixture(scope="module", autouse=True)
def _wire_stateful(live: tuple[str, dict[str, str]]) -> None:
    _Live.base, _Live.token = live[0], live[1]["admin"]


class _Workflow(schema.as_state_machine()):  # type: ignore[misc]
    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
        return {"base_url": _Live.base, "headers": {"Authorization": f"Bearer {_Live.token}"}}

    def validate_response(
        self,
        response: schemathesis.Response,
        case: schemathesis.Case,
        additional_checks: list[object] | None = None,
        **kwargs: object,
    ) -> None:
        # The same checks as above: schema-valid data may still break a clinic rule (422).
        case.validate_response(response, checks=CHECKS)
        COUNTS["stateful calls"] += 1


TestLinkedOperations = _Workflow.TestCase
TestLinkedOperations.settings = settings(
    max_examples=max(2, EXAMPLES // 2),
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# OPTIONS, HEAD and weak ETags, derived from the same document: every path answers OPTIONS
# with the methods the document gives it; HEAD answers as GET does (status and headers, no
# body) under each role; an answer's ETag sent back weakened (W/...) earns a 304.
PATHS: dict[str, Any] = _document()["paths"]  # type: ignore[assignment]
NOWHERE = "0191f000-0000-7000-8000-000000000000"


def _ids(base: str, token: str) -> dict[str, str]:
    """Real ids of the demo clinic for the path parameters, where a list gives one."""
    auth = {"Authorization": f"Bearer {token}"}
    found = {"code": "VIT", "n": "1"}
    for name, path in (
        ("mother_id", "/v1/mothers"),
        ("butler_id", "/v1/butlers"),
        ("user_id", "/v1/users"),
        ("visit_id", "/v1/visits"),
        ("report_id", "/v1/reports"),
    ):
        items = httpx.get(base + path, headers=auth).json().get("items") or []
        if items:
            found[name] = str(items[0]["id"])
    return found


def _filled(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), NOWHERE), path)


def _methods(item: dict[str, Any]) -> set[str]:
    return {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}


def test_options_lists_every_documented_method_of_every_path(
    live: tuple[str, dict[str, str]],
) -> None:
    base, tokens = live
    ids = _ids(base, tokens["admin"])
    for path, item in PATHS.items():
        response = httpx.options(base + _filled(path, ids))  # no token: none is needed
        assert response.status_code == 204, (path, response.status_code)
        allowed = set(response.headers["allow"].split(", "))
        # Every documented template the path matches, as the router matches them (/v1/butlers/me
        # is also /v1/butlers/{butler_id}: PATCH goes there, and is told the id is not one).
        documented = {"OPTIONS"}
        for other, methods in PATHS.items():
            if re.fullmatch(re.sub(r"{\w+}", "[^/]+", other), _filled(path, ids)):
                documented |= _methods(methods) | ({"HEAD"} if "get" in methods else set())
        assert _methods(item) <= allowed, path
        assert allowed == documented, path
        COUNTS["fuzz examples run"] += 1


@pytest.mark.parametrize("role", ROLES)
def test_head_answers_as_get_and_a_weak_etag_earns_a_304(
    live: tuple[str, dict[str, str]], role: str
) -> None:
    base, tokens = live
    ids = _ids(base, tokens["admin"])
    auth = {"Authorization": f"Bearer {tokens[role]}"}
    weak_304s = 0
    for path, item in PATHS.items():
        if "get" not in item:
            continue
        url = base + _filled(path, ids)
        head = httpx.head(url, headers=auth, timeout=30)
        assert head.content == b"", path
        assert head.status_code < 500, path
        if path.endswith("/events/stream"):  # a stream: its headers, then the end
            continue
        get = httpx.get(url, headers=auth, timeout=30)
        assert head.status_code == get.status_code, path
        for name in ("content-type", "etag", "allow"):
            if name == "etag" and path == "/v1/me/assignments":
                continue  # may move between the two reads
            assert head.headers.get(name) == get.headers.get(name), (path, name)
        etag = get.headers.get("etag")
        if get.status_code == 200 and etag:
            weak = etag if etag.startswith("W/") else f"W/{etag}"
            again = httpx.get(url, headers={**auth, "If-None-Match": weak}, timeout=30)
            assert again.status_code == 304 or again.headers.get("etag") != etag, path
            assert again.status_code != 304 or again.content == b"", path
            weak_304s += again.status_code == 304
        DISTINCT["operations fuzzed"].add(f"HEAD {path}")
    assert weak_304s > 0
