"""API fuzzing: Schemathesis against the app's own OpenAPI document, on a live demo server.

Every operation gets generated valid and invalid input, under several roles' tokens: no 5xx,
every status code, content type and response body as documented. FUZZ_EXAMPLES sets the
examples per operation and FUZZ_ALL_ROLES=1 runs every role: `make test` keeps it quick,
`.ci/run` runs the long version.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

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
