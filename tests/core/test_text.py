"""Names people read on the clinic's screens (app.core.text): NFC, and no control or invisible
characters, for mothers, staff accounts and butlers alike (issue 18)."""

from __future__ import annotations

import re
import unicodedata

import pytest

from app.core.text import clean_name
from tests.helpers.api import Api
from tests.helpers.problems import assert_problem

SPOOFERS = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\u200c": "U+200C ZERO WIDTH NON-JOINER",
    "\u2060": "U+2060 WORD JOINER",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "U+00AD SOFT HYPHEN",
    "\U000e0041": "U+E0041 TAG LATIN CAPITAL LETTER A",
    "\u2029": "U+2029 PARAGRAPH SEPARATOR",
    "\n": "U+000A",
    "\x1b": "U+001B",
    "\ud800": "U+D800",
}


@pytest.mark.parametrize(("char", "named"), SPOOFERS.items(), ids=SPOOFERS.values())
def test_control_and_format_characters_are_refused_by_code_point_and_place(
    char: str, named: str
) -> None:
    with pytest.raises(ValueError, match=f"contains {re.escape(named)} .*at character 3;"):
        clean_name(f"王小{char}琪")


@pytest.mark.parametrize(
    "name",
    [
        "王小琪",
        "Chloé Wang",
        "阿依古丽·买买提",  # a middle dot between Uyghur names in Chinese
        "O'Brien-Li",
        "\U0002a6a5",  # a rare character outside the BMP (Extension B)
        "葛\U000e0100",  # an ideographic variation selector (a glyph variant, Mn) is kept
        "\ue000",  # private use: some systems still write rare name characters there
    ],
)
def test_real_names_pass_unchanged(name: str) -> None:
    assert clean_name(name) == name


BLANKS = {
    "\u3164": "U+3164 HANGUL FILLER",
    "\u115f": "U+115F HANGUL CHOSEONG FILLER",
    "\uffa0": "U+FFA0 HALFWIDTH HANGUL FILLER",
    "\u2800": "U+2800 BRAILLE PATTERN BLANK",
    "\u034f": "U+034F COMBINING GRAPHEME JOINER",
    "\u180b": "U+180B MONGOLIAN FREE VARIATION SELECTOR ONE",
    "\ufe0f": "U+FE0F VARIATION SELECTOR-16",
}


@pytest.mark.parametrize(("char", "named"), BLANKS.items(), ids=BLANKS.values())
def test_characters_that_draw_nothing_are_refused(char: str, named: str) -> None:
    """Found by the probe: these passed (201) though they show nothing on a screen."""
    with pytest.raises(ValueError, match=f"contains {re.escape(named)} .*at character 2;"):
        clean_name(f"a{char}琪")


def test_a_name_of_marks_alone_is_refused_and_a_glyph_variant_after_han_is_kept() -> None:
    with pytest.raises(ValueError, match="no letter"):
        clean_name("\u0301\u0301")
    assert clean_name("葛\ufe00") == "葛\ufe00"  # a variation selector after a Han character
    with pytest.raises(ValueError, match="U\\+FE0F"):
        clean_name("王\ufe0f")  # U+FE0F chooses emoji style: nothing for a Han character


def test_names_are_stored_composed() -> None:
    assert clean_name(unicodedata.normalize("NFD", "Chloé")) == "Chloé"
    assert clean_name("\uf9d1") == "六"  # a compatibility ideograph is its unified character


async def test_a_staff_display_name_with_an_override_is_refused(api: Api) -> None:
    body = {
        "username": "spoof-desk",
        "display_name": "王\u202e管家",
        "role": "front_desk",
        "password": "a-long-enough-password",
    }
    response = await api.client.post("/v1/users", headers=api.auth("admin"), json=body)
    [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "display_name"
    assert "U+202E" in error["detail"]
    created = await api.client.post(
        "/v1/users",
        headers=api.auth("admin"),
        json={**body, "display_name": unicodedata.normalize("NFD", "Zoë 管家")},
    )
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "Zoë 管家"
    renamed = await api.client.patch(
        f"/v1/users/{created.json()['id']}",
        headers={**api.auth("admin"), "If-Match": created.headers.get("etag", '"1"')},
        json={"display_name": "Zoë\u200b管家"},
    )
    [error] = assert_problem(renamed, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "display_name"
    assert "U+200B" in error["detail"]


async def test_a_butler_name_with_a_zero_width_space_is_refused(api: Api) -> None:
    account = await api.client.post(
        "/v1/users",
        headers=api.auth("admin"),
        json={
            "username": "butler-new",
            "display_name": "新管家",
            "role": "butler",
            "password": "a-long-enough-password",
        },
    )
    assert account.status_code == 201, account.text
    body = {"user_id": account.json()["id"], "display_name": "新\u200b管家", "max_caseload": 5}
    response = await api.client.post("/v1/butlers", headers=api.auth("admin"), json=body)
    [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "display_name"
    assert "U+200B" in error["detail"]
    response = await api.client.post(
        "/v1/butlers", headers=api.auth("admin"), json={**body, "display_name": "新管家"}
    )
    assert response.status_code == 201, response.text
    butler = response.json()
    response = await api.client.patch(
        f"/v1/butlers/{butler['id']}",
        headers={**api.auth("admin"), "If-Match": response.headers["etag"]},
        json={"display_name": "新\u2067管家"},
    )
    [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "display_name"
    assert "U+2067" in error["detail"]
