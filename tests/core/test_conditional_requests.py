"""Conditional requests per RFC 9110: weak comparison for If-None-Match, strong for If-Match,
lists and ``*``, and an unquoted tag is a 400 that says how to quote it."""

from __future__ import annotations

import pytest

from app.core.errors import PreconditionFailed, PreconditionRequired
from app.core.etag import MalformedETag, check_if_match, none_match, parse_tags
from tests.helpers.api import Api
from tests.helpers.feed import assignments
from tests.helpers.mothers import enrol, mother_with_butler
from tests.helpers.problems import assert_problem


@pytest.mark.parametrize(
    ("header", "etag", "matches"),
    [
        ('"3"', '"3"', True),
        ('W/"3"', '"3"', True),  # weak comparison: W/ is ignored
        ('"3"', 'W/"3"', True),
        ('"2", W/"3"', '"3"', True),  # a list matches when one of its tags does
        ("*", '"3"', True),
        ('"2"', '"3"', False),
        ('"2", "4"', '"3"', False),
        ("", '"3"', False),
        ("3", '"3"', True),  # a lenient reading of a client that forgot the quotes
    ],
)
def test_if_none_match_uses_the_weak_comparison(header: str, etag: str, matches: bool) -> None:
    assert none_match(header, etag) is matches


def test_if_match_uses_the_strong_comparison() -> None:
    check_if_match('"3"', version=3)
    check_if_match('"1", "3"', version=3)
    check_if_match("*", version=3)
    with pytest.raises(PreconditionFailed, match="weak tag"):
        check_if_match('W/"3"', version=3)
    with pytest.raises(PreconditionFailed, match="Somebody changed"):
        check_if_match('"2"', version=3)
    with pytest.raises(PreconditionRequired):
        check_if_match(None, version=3)


@pytest.mark.parametrize("header", ["3", "abc", '"3", 4', "W/3", '"3'])
def test_an_unquoted_if_match_is_malformed_not_stale(header: str) -> None:
    with pytest.raises(MalformedETag) as caught:
        check_if_match(header, version=3)
    assert caught.value.status == 400
    assert "double quotes" in (caught.value.detail or "")


def test_tag_lists_parse_as_rfc_9110_writes_them() -> None:
    tags = parse_tags(' "a" , W/"b",W/""')
    assert tags is not None
    assert [(t.weak, t.opaque) for t in tags] == [(False, "a"), (True, "b"), (True, "")]
    assert parse_tags("*") is None


async def test_an_unquoted_if_match_is_a_400_saying_how_to_quote_it(api: Api) -> None:
    mother = await enrol(api)
    path = f"/v1/mothers/{mother['id']}"
    response = await api.client.patch(
        path, headers={**api.auth("frontdesk"), "If-Match": "1"}, json={"phone": "13900000009"}
    )
    body = assert_problem(response, 400)
    assert body["type"] == "/problems/malformed-etag"
    assert 'If-Match: "1"' in str(body["detail"])
    weak = await api.client.patch(
        path, headers={**api.auth("frontdesk"), "If-Match": 'W/"1"'}, json={"phone": "13900000009"}
    )
    assert "weak tag" in str(assert_problem(weak, 412)["detail"])
    fine = await api.client.patch(
        path,
        headers={**api.auth("frontdesk"), "If-Match": '"7", "1"'},
        json={"phone": "13900000009"},
    )
    assert fine.status_code == 200, fine.text


async def test_a_weak_if_none_match_earns_the_butlers_304(api: Api) -> None:
    await mother_with_butler(api)
    first = await assignments(api)
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    for header in (f"W/{etag}", etag, f'"0.old", W/{etag}', "*"):
        again = await assignments(api, **{"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.headers["etag"] == etag
    # The fast path (a token it knows, ?wait) compares the same way.
    fast = await api.client.get(
        "/v1/me/assignments?wait=0",
        headers={**api.auth("butler1"), "If-None-Match": f"W/{etag}"},
    )
    assert fast.status_code == 304
    assert fast.headers["etag"] == etag


async def test_every_read_with_an_etag_answers_304_to_a_matching_if_none_match(api: Api) -> None:
    mother = await mother_with_butler(api, butler="butler1")
    path = f"/v1/mothers/{mother['id']}"
    read = await api.client.get(path, headers=api.auth("frontdesk"))
    etag = read.headers["etag"]
    for header in (etag, f"W/{etag}"):
        cached = await api.client.get(
            path, headers={**api.auth("frontdesk"), "If-None-Match": header}
        )
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert "content-type" not in cached.headers
    stale = await api.client.get(path, headers={**api.auth("frontdesk"), "If-None-Match": '"0"'})
    assert stale.status_code == 200
    assert stale.json()["id"] == mother["id"]
    # Not a way around the role: the desk's 304 is the desk's; a butler not hers gets 404.
    other = await api.client.get(path, headers={**api.auth("butler2"), "If-None-Match": etag})
    assert other.status_code in (403, 404)


async def test_the_worklist_compares_if_none_match_weakly(api: Api) -> None:
    first = await api.client.get("/v1/worklist", headers=api.auth("doctor"))
    etag = first.headers["etag"]
    strong = etag.removeprefix("W/")
    for header in (etag, strong, f'"nope", {strong}'):
        again = await api.client.get(
            "/v1/worklist", headers={**api.auth("doctor"), "If-None-Match": header}
        )
        assert again.status_code == 304, header
