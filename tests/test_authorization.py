"""Who may call what: a route x role table, checked against the running app.

The table is built from the app's own routes, so a new route without an entry fails here.
Object-level checks (a butler and another butler's mother) live with each domain's tests.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI

from app.main import api_routes
from tests.helpers.access import ANY, EXPECTED, PUBLIC
from tests.helpers.api import Api
from tests.helpers.counts import COUNTS
from tests.helpers.factories import LAB_KEY

# The lab's own routes also need a webhook signature, which these calls do not carry: the
# allowed caller gets past the role check and is then refused with 401 for the signature.
SIGNED = {"POST /v1/integrations/lab/hl7v2", "POST /v1/integrations/lab/fhir"}
CALLERS = ["admin", "frontdesk", "doctor", "nutritionist", "station", "butler1", "lab", "anonymous"]


def operations() -> list[str]:
    ops = [
        f"{method} {route.path}"
        for route in api_routes()
        for method in sorted(route.methods - {"HEAD"})
    ]
    # Logging out revokes the caller's token: do it last.
    return sorted(ops, key=lambda op: op.endswith("/logout"))


def test_every_route_has_an_entry() -> None:
    assert sorted(operations()) == sorted(EXPECTED)


async def test_the_table_holds(api: Api, app: FastAPI) -> None:
    # The client reads each answer to its end: let an event stream end within a second.
    app.state.settings = app.state.settings.model_copy(update={"feed_stream_seconds": 1})
    wrong: list[str] = []
    for name in operations():
        method, path = name.split(" ", 1)
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        rule = EXPECTED[name]
        for caller in CALLERS:
            headers = (
                {}
                if caller == "anonymous"
                else {"X-API-Key": LAB_KEY}
                if caller == "lab"
                else api.auth(caller)
            )
            response = await api.client.request(method, url, headers=headers, json={})
            if rule == PUBLIC:
                ok = response.status_code not in (401, 403)
            elif caller == "anonymous":
                ok = response.status_code == 401
            elif rule == ANY or caller in rule:
                if name in SIGNED:
                    ok = response.status_code == 401 and "signature" in response.text
                else:
                    ok = response.status_code not in (401, 403)
            else:
                ok = response.status_code == 403
            if not ok:
                wrong.append(f"{caller}: {name} -> {response.status_code}")
            COUNTS["routes x roles checked"] += 1
    assert wrong == []


async def test_head_answers_as_get_does_for_every_caller(api: Api, app: FastAPI) -> None:
    """HEAD works wherever GET does, behind the same role check: the same status and headers
    for every caller, and no body."""
    app.state.settings = app.state.settings.model_copy(update={"feed_stream_seconds": 1})
    wrong: list[str] = []
    for name in operations():
        method, path = name.split(" ", 1)
        if method != "GET":
            continue
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        for caller in CALLERS:
            headers = (
                {}
                if caller == "anonymous"
                else {"X-API-Key": LAB_KEY}
                if caller == "lab"
                else api.auth(caller)
            )
            got = await api.client.get(url, headers=headers)
            head = await api.client.head(url, headers=headers)
            if head.status_code != got.status_code or head.content:
                wrong.append(f"{caller}: HEAD {path} -> {head.status_code}, GET {got.status_code}")
            elif head.headers.get("content-type") != got.headers.get("content-type"):
                wrong.append(f"{caller}: HEAD {path} content-type differs")
            COUNTS["routes x roles checked"] += 1
    assert wrong == []


async def test_options_names_the_methods_of_every_path_and_reveals_nothing(api: Api) -> None:
    """OPTIONS needs no token (it says nothing the OpenAPI document does not) and lists in
    Allow the methods the path supports, HEAD with GET."""
    methods: dict[str, set[str]] = {}
    for name in operations():
        method, path = name.split(" ", 1)
        methods.setdefault(path, set()).add(method)
    patterns = {
        path: re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        for path in methods
    }
    wrong: list[str] = []
    for path in methods:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        answer = await api.client.options(url)
        allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        # A literal path (/v1/butlers/me) is also matched by a template (/v1/butlers/{id}).
        declared = set().union(*(methods[p] for p, rx in patterns.items() if rx.match(url)))
        expected = declared | {"OPTIONS"} | ({"HEAD"} if "GET" in declared else set())
        if answer.status_code not in (200, 204) or allow != expected:
            wrong.append(f"OPTIONS {path} -> {answer.status_code} Allow {sorted(allow)}")
        if answer.content:
            wrong.append(f"OPTIONS {path} has a body")
        COUNTS["routes x roles checked"] += 1
    assert wrong == []
