"""Issue 18, points 2 and 3, on both databases.

Masking that masks: no answer that carries a masked national id or phone holds, in its other
fields, what gives the hidden part back (her date of birth filled the eight digits the old mask
hid). ASCII digits only: the same woman typed with fullwidth digits is the same woman (the
duplicate check holds), with other scripts' digits she is refused. Names are NFC and hold no
control or invisible characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from app.main import app
from app.mothers.domain import check_digit
from tests.helpers.api import Api
from tests.helpers.factories import mother_body, national_id
from tests.helpers.mothers import enrol, mother_with_butler
from tests.helpers.problems import assert_problem

FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


# Masking ------------------------------------------------------------------------------------


def strings(node: Any) -> Iterator[str]:
    """Every string (and number, as typed) anywhere in an answer."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif node is not None and not isinstance(node, bool):
        yield str(node)


def candidates(known: dict[int, str]) -> int:
    """How many 18-character ids agree with the characters known at those places and pass the
    check digit (ISO 7064 MOD 11-2): counted exactly, place by place, modulo 11."""
    ways = [1] + [0] * 10  # ways[r]: ways to fill the places so far with weighted sum = r mod 11
    for place, weight in enumerate(_WEIGHTS):
        digits = [int(known[place])] if place in known else range(10)
        step = [0] * 11
        for r, count in enumerate(ways):
            if count:
                for d in digits:
                    step[(r + d * weight) % 11] += count
        ways = step
    checks = [known[17]] if 17 in known else list("10X98765432")
    return sum(ways[r] for r in range(11) if "10X98765432"[r] in checks)


def rebuild(answer: Any, masked: str, full: str) -> int:
    """The fewest ids an attacker holding this one answer is left with: the characters the mask
    shows, the birth date wherever a date in the answer is hers, the region wherever a run of
    digits in the answer holds it (the mask itself included)."""
    known = {i: c for i, c in enumerate(masked) if c != "*"}
    assert all(full[i] == c for i, c in known.items()), "the mask shows other characters"
    texts = list(strings(answer))
    birth = full[6:14]
    if any("".join(m.groups()) == birth for t in texts for m in _DATE.finditer(t)):
        known.update((i, full[i]) for i in range(6, 14))
    # The region is taken as known, always: most of a clinic's mothers share its district's
    # code (and there are only about 3,500 codes, not a million).
    known.update((i, full[i]) for i in range(6))
    return candidates(known)


def test_the_counting_is_right() -> None:
    full = national_id()
    assert candidates({i: c for i, c in enumerate(full)}) == 1
    assert candidates({i: c for i, c in enumerate(full) if i != 3}) == 1  # the check digit
    assert candidates({}) == 10**17  # every first 17 has exactly one check character
    # The old mask beside her date of birth gave the number back whole.
    old = full[:6] + "********" + full[-4:]
    assert rebuild({"national_id": old, "date_of_birth": "1995-03-07"}, old, full) == 1


def answer_schemas_with(field: str) -> set[str]:
    schemas = app.openapi()["components"]["schemas"]
    return {name for name, s in schemas.items() if field in s.get("properties", {})}


def test_every_schema_with_a_national_id_is_covered_here() -> None:
    # An answer that starts carrying a national id must join the cases below.
    assert answer_schemas_with("national_id") == {
        "MotherCreate",
        "MotherUpdate",  # requests
        "MotherRecord",
        "MotherSummary",  # answers, both checked below
    }


async def _answers(api: Api) -> tuple[dict[str, Any], list[tuple[str, Any, dict[str, Any]]]]:
    """Every answer that carries her masked id: (who, the whole answer, the part about her)."""
    mother = await mother_with_butler(api, serial="003")  # the check character X
    path = f"/v1/mothers/{mother['id']}"
    out: list[tuple[str, Any, dict[str, Any]]] = []
    for who in ("butler1", "nutritionist"):  # her record, masked for these roles
        response = await api.client.get(path, headers=api.auth(who))
        assert response.status_code == 200, response.text
        out.append((f"record as {who}", response.json(), response.json()))
    for who in ("frontdesk", "doctor", "admin", "butler1"):  # list rows mask for everyone
        by_id = [{"q": mother["national_id"]}] if who != "butler1" else []
        for params in [{}, {"q": mother["name"]}, *by_id]:
            response = await api.client.get("/v1/mothers", headers=api.auth(who), params=params)
            assert response.status_code == 200, response.text
            [row] = response.json()["items"]
            out.append((f"list as {who} {params}", response.json(), row))
    return mother, out


async def test_no_answer_gives_back_the_masked_national_id(api: Api) -> None:
    mother, answers = await _answers(api)
    full = mother["national_id"]
    assert full.endswith("X")
    for label, whole, about_her in answers:
        masked = about_her["national_id"]
        entitled = not any(who in label for who in ("butler1", "nutritionist"))
        # The desk, doctors and admin may read it whole: their lists show the last four. A
        # role that may not (and whose record view shows her date of birth) sees none of it.
        assert masked == ("*" * 14 + full[-4:] if entitled else "*" * 18), label
        assert about_her.get("national_id_masked", True), label
        assert full not in str(whole), label
        # With the region known (her clinic's district), at least a thousand ids stay possible.
        assert rebuild(whole, masked, full) >= 1_000, label


async def test_no_answer_gives_back_the_masked_phone(api: Api) -> None:
    mother, answers = await _answers(api)
    phone = mother["phone"]
    hidden = phone[3:7]
    for label, whole, about_her in answers:
        if about_her.get("phone_masked") is False:
            continue  # the butler calls her: she sees it whole
        assert about_her["phone"] == phone[:3] + "****" + phone[-4:], label
        rest = [t for t in strings(whole) if t != about_her["phone"]]
        # No other field holds the hidden four beside a visible part, nor the number.
        for glued in (phone[:3] + hidden, hidden + phone[-4:]):
            assert not any(glued in t for t in rest), (label, glued)


async def test_a_butler_cannot_confirm_a_guess_at_the_id_by_searching(api: Api) -> None:
    # She reads the date of birth and the last four: a search that matched a whole id would
    # tell her which guess at the region is right.
    mother = await mother_with_butler(api)
    for who, expected in (("frontdesk", [mother["id"]]), ("butler1", [])):
        response = await api.client.get(
            "/v1/mothers", headers=api.auth(who), params={"q": mother["national_id"]}
        )
        assert [m["id"] for m in response.json()["items"]] == expected, who
    response = await api.client.get(
        "/v1/mothers", headers=api.auth("butler1"), params={"q": mother["phone"]}
    )
    assert [m["id"] for m in response.json()["items"]] == [mother["id"]]  # she reads it whole


# ASCII digits -------------------------------------------------------------------------------


async def count_mothers(api: Api) -> int:
    response = await api.client.get("/v1/mothers", headers=api.auth("frontdesk"))
    return len(response.json()["items"])


async def test_the_same_woman_in_fullwidth_digits_meets_the_duplicate_check(api: Api) -> None:
    first = await enrol(api, serial="003")
    full = first["national_id"]  # ends in X
    # Wholly fullwidth (x in lower case), and the form that got past before: the first 17 in
    # fullwidth, the check character in ASCII (it was compared as typed, the digits read by int).
    for typed, phone in (
        (full.lower().translate(FULLWIDTH), "１３８ ００１３ ８０００"),
        (full[:17].translate(FULLWIDTH) + full[17], "1３８００１３８０００"),
    ):
        again = mother_body(serial="003", national_id=typed, phone=phone)
        response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=again)
        problem = assert_problem(response, 409)
        assert "national id" in str(problem["detail"])
    assert await count_mothers(api) == 1


async def test_the_same_woman_in_arabic_indic_digits_is_refused(api: Api) -> None:
    first = await enrol(api)
    full = first["national_id"]
    for typed in (full.translate(ARABIC_INDIC), full[:17].translate(ARABIC_INDIC) + full[17]):
        again = mother_body(national_id=typed)
        response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=again)
        problem = assert_problem(response, 422)
        [error] = problem["errors"]  # type: ignore[misc]
        assert error["field"] == "national_id"
        assert "0-9" in error["detail"]
        assert "U+0661 ARABIC-INDIC DIGIT ONE at character 1" in error["detail"]
    for phone, found in (("١٣٨٠٠١٣٨٠٠٠", "U+0661"), ("1٣٨٠٠١٣٨٠٠٠", "U+0663")):
        body = mother_body(serial="004", phone=phone)
        response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
        [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
        assert error["field"] == "phone"
        assert found in error["detail"]
    assert await count_mothers(api) == 1


async def test_fullwidth_numbers_are_stored_and_found_as_ascii(api: Api) -> None:
    wide_id = national_id(serial="004")
    mother = await enrol(
        api, national_id=wide_id.translate(FULLWIDTH), phone="＋８６ １３９－１２３４－５６７８"
    )
    assert mother["national_id"] == wide_id
    assert mother["phone"] == "13912345678"

    async def found(q: str) -> list[str]:
        response = await api.client.get(
            "/v1/mothers", headers=api.auth("frontdesk"), params={"q": q}
        )
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["items"]]

    for q in (wide_id, wide_id.translate(FULLWIDTH), "５６７８", "5678", "１３９１２３４５６７８"):
        assert await found(q) == [mother["id"]], q
    for q in (wide_id.translate(ARABIC_INDIC), "٥٦٧٨", "١٣٩١٢٣٤٥٦٧٨"):
        assert await found(q) == [], q  # no stored number holds such digits


async def test_a_change_to_fullwidth_digits_meets_the_duplicate_check(api: Api) -> None:
    first = await enrol(api)
    second = await enrol(api, serial="004", phone="13900139000")
    response = await api.client.patch(
        f"/v1/mothers/{second['id']}",
        headers={**api.auth("frontdesk"), "If-Match": '"1"'},
        json={"national_id": first["national_id"].translate(FULLWIDTH)},
    )
    assert_problem(response, 409)
    response = await api.client.patch(
        f"/v1/mothers/{second['id']}",
        headers={**api.auth("frontdesk"), "If-Match": '"1"'},
        json={"phone": "１３７００１３７０００"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "13700137000"


# Names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("\u202e", "U+202E"),  # right-to-left override
        ("\u200b", "U+200B"),  # zero-width space
        ("\u200d", "U+200D"),  # zero-width joiner
        ("\ufeff", "U+FEFF"),  # byte-order mark
        ("\u2028", "U+2028"),  # line separator
        ("\x07", "U+0007"),  # a control
    ],
)
async def test_a_name_with_an_invisible_character_is_refused(
    api: Api, char: str, code: str
) -> None:
    body = mother_body(name=f"李{char}小红")
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "name"
    assert code in error["detail"]
    assert "character 2" in error["detail"]
    assert await count_mothers(api) == 0
    mother = await enrol(api)
    response = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("frontdesk"), "If-Match": '"1"'},
        json={"name": f"王{char}芳"},
    )
    [error] = assert_problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "name"
    assert code in error["detail"]


async def test_a_decomposed_name_is_stored_composed(api: Api) -> None:
    decomposed = unicodedata.normalize("NFD", "Chloé Lǚ")
    assert decomposed != "Chloé Lǚ"
    mother = await enrol(api, name=decomposed)
    composed = unicodedata.normalize("NFC", decomposed)
    assert mother["name"] == composed
    read = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("frontdesk"))
    assert read.json()["name"] == composed
    # A CJK compatibility ideograph is its unified character (NFC): one name, one spelling.
    compat = await enrol(api, name="李\uf9d1", serial="004", phone="13900139000")
    assert compat["name"] == "李六"
    found = await api.client.get(
        "/v1/mothers", headers=api.auth("frontdesk"), params={"q": decomposed}
    )
    assert [m["id"] for m in found.json()["items"]] == [mother["id"]]


def test_counting_helper_uses_the_service_check_digit() -> None:
    first17 = national_id(born=date(1990, 1, 1))[:17]
    known = {i: c for i, c in enumerate(first17)}
    for check in "10X98765432":
        assert candidates({**known, 17: check}) == (1 if check == check_digit(first17) else 0)
