"""The front desk's search box: GET /v1/mothers?q= over name (characters, pinyin, initials),
MRN, phone and national id, best matches first, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from tests.helpers.api import Api
from tests.helpers.factories import national_id
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem


async def search(api: Api, q: str, who: str = "frontdesk", **params: Any) -> list[str]:
    """The names found for q, in the order listed."""
    response = await api.client.get("/v1/mothers", headers=api.auth(who), params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [m["name"] for m in response.json()["items"]]


async def enrol_all(api: Api, *names: str, **kw: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for i, name in enumerate(names):
        out[name] = await enrol(
            api, name=name, serial=f"{200 + i:03d}", phone=f"139{i:04d}{5000 + i:04d}", **kw
        )
    return out


async def test_her_name_as_characters_pinyin_or_initials_finds_her(api: Api) -> None:
    await enrol_all(api, "李小红", "王芳", "黎晓虹", "李明")
    assert await search(api, "李小红") == ["李小红"]
    assert await search(api, "李小") == ["李小红"]
    # Characters in the dictionary's radical-and-stroke order (Unicode's), her exact name first.
    assert await search(api, "李") == ["李小红", "李明"]
    assert await search(api, "小红") == ["李小红"]  # her given name
    # Pinyin finds the homophones too (黎晓虹 is li xiao hong as well), in the pinyin's order.
    assert await search(api, "lixiaohong") == ["李小红", "黎晓虹"]
    assert await search(api, "lixiao") == ["李小红", "黎晓虹"]
    assert await search(api, "Li Xiao") == ["李小红", "黎晓虹"]  # case and spaces ignored
    assert await search(api, "lxh") == ["李小红", "黎晓虹"]  # initials
    assert await search(api, "LXH") == ["李小红", "黎晓虹"]
    assert await search(api, "li") == ["李明", "李小红", "黎晓虹"]  # liming < lixiaohong
    assert await search(api, "wf") == ["王芳"]
    assert await search(api, "zhang") == []


@pytest.mark.parametrize(
    ("name", "typed", "everyday"),
    [
        ("单丽华", "shanlihua", "danlihua"),
        ("曾敏", "zengmin", "cengmin"),
        ("解晓东", "xiexiaodong", "jiexiaodong"),
        ("仇静", "qiujing", "choujing"),
        ("区颖", "ouying", "quying"),
    ],
)
async def test_a_polyphonic_surname_is_found_by_its_surname_reading_and_the_everyday_one(
    api: Api, name: str, typed: str, everyday: str
) -> None:
    await enrol_all(api, name, "王芳")
    assert await search(api, typed) == [name]
    assert await search(api, typed[:4]) == [name]  # typing, half way
    assert name in await search(api, typed[0])
    assert await search(api, everyday) == [name]  # a clerk who reads it the everyday way


async def test_surname_readings_rank_before_everyday_readings(api: Api) -> None:
    """'shan' finds 单 read as a surname (shan) with 山, and 单 is not missed under 'dan'."""
    await enrol_all(api, "单丽华", "山本花", "丹青")
    assert await search(api, "shan") == ["山本花", "单丽华"]
    assert await search(api, "dan") == ["丹青", "单丽华"]  # her everyday reading comes after
    assert await search(api, "slh") == ["单丽华"]
    assert await search(api, "dlh") == ["单丽华"]


async def test_compound_surnames(api: Api) -> None:
    await enrol_all(api, "欧阳小红", "尉迟敬", "万俟红")
    assert await search(api, "ouyang") == ["欧阳小红"]
    assert await search(api, "oyxh") == ["欧阳小红"]
    assert await search(api, "yuchi") == ["尉迟敬"]
    assert await search(api, "moqih") == ["万俟红"]
    assert await search(api, "小红") == ["欧阳小红"]


async def test_mrn_case_and_spaces_ignored_exact_first(api: Api) -> None:
    await enrol(api, name="张敏", mrn="MRN00012", serial="101", phone="13900001111")
    await enrol(api, name="王芳", mrn="MRN0001", serial="102", phone="13900002222")
    await enrol(api, name="赵丽", mrn="MRN-0002", serial="103", phone="13900003333")
    assert await search(api, "mrn 0001") == ["王芳", "张敏"]  # exact, then the longer one
    assert await search(api, "MRN0001") == ["王芳", "张敏"]
    assert await search(api, "mrn00") == ["王芳", "张敏", "赵丽"]
    assert await search(api, "mrn0002") == ["赵丽"]  # the hyphen is ignored too
    assert await search(api, "MRN00012") == ["张敏"]


async def test_a_name_typed_in_letters_comes_before_mrns_that_start_with_them(api: Api) -> None:
    await enrol(api, name="王芳", mrn="LXH-77", serial="101", phone="13900001111")
    await enrol(api, name="李小红", mrn="A0001", serial="102", phone="13900002222")
    await enrol(api, name="陈静", mrn="LIXIAO", serial="103", phone="13900003333")
    assert await search(api, "lxh") == ["李小红", "王芳"]
    assert await search(api, "lixiao") == ["陈静", "李小红"]  # an MRN typed whole comes first


async def test_phone_last_four_full_mobile_and_national_id(api: Api) -> None:
    await enrol(api, name="王芳", phone="13812348000", serial="101")
    await enrol(api, name="李小红", phone="13912341234", serial="102")
    assert await search(api, "8000") == ["王芳"]
    assert await search(api, "1234") == ["李小红"]  # her last four, not the middle four
    assert await search(api, "13912341234") == ["李小红"]
    assert await search(api, "+86 139 1234 1234") == ["李小红"]
    x_id = national_id(serial="003")  # its check digit is X
    assert x_id.endswith("X")
    await enrol(api, name="赵丽", national_id=x_id, phone="13700000000")
    assert await search(api, x_id.lower()) == ["赵丽"]
    assert await search(api, x_id) == ["赵丽"]
    assert await search(api, x_id[:-1]) == []  # exact only: not a prefix of her id


async def test_results_are_masked_and_audited(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await enrol(api, name="李小红", phone="13812348000")
    response = await api.client.get(
        "/v1/mothers", headers=api.auth("frontdesk"), params={"q": "lxh"}
    )
    [item] = response.json()["items"]
    assert item["phone"] == "138****8000"
    full = mother["national_id"]
    assert item["national_id"] == "*" * 14 + full[-4:]
    async with session_factory() as session:
        listed = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "mother.list"))
        )
    assert [str(e.resource_id) for e in listed] == [mother["id"]]


async def test_a_butler_finds_only_her_own_mothers(api: Api) -> None:
    mine = str(api.staff.butlers["butler1"].id)
    other = str(api.staff.butlers["butler2"].id)
    await enrol(api, name="李小红", primary_butler_id=mine, serial="101", phone="13900001111")
    await enrol(api, name="李晓红", primary_butler_id=other, serial="102", phone="13900002222")
    assert await search(api, "lxh", who="butler1") == ["李小红"]
    assert await search(api, "lxh", who="butler2") == ["李晓红"]
    assert await search(api, "lxh") == ["李小红", "李晓红"]
    assert await search(api, "2222", who="butler1") == []


async def test_the_other_filters_still_apply(api: Api) -> None:
    await enrol_all(api, "李小红", "李晓红")
    red = {"lmp_date": "2026-06-01", "gravida": 1, "para": 0, "risk_grade": "red"}
    await enrol(api, name="李秀华", serial="150", phone="13711112222", pregnancy=red)
    assert await search(api, "lx", risk_grade=["red"]) == ["李秀华"]
    assert await search(api, "lx", name="晓") == ["李晓红"]


async def test_pages_walk_every_tier_once_in_order(api: Api) -> None:
    await enrol(api, name="李丽", mrn="LIN", serial="101", phone="13900001111")
    await enrol_all(api, "李小红", "黎明", "林丽", "刘丽", "林立", "凌霞")
    await enrol(api, name="王芳", mrn="LIN-2", serial="160", phone="13900003333")
    whole = await search(api, "lin")
    # The MRN typed whole, the pinyin's starts in their order, an MRN's start last.
    assert whole == ["李丽", "凌霞", "林丽", "林立", "王芳"]
    walked: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"q": "lin", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await api.client.get("/v1/mothers", headers=api.auth("frontdesk"), params=params)
        ).json()
        walked += [m["name"] for m in page["items"]]
        cursor = page["page"]["next_cursor"]
        if cursor is None:
            break
    assert walked == whole
    assert len(set(walked)) == len(walked)


async def test_a_new_name_is_searchable_at_once(api: Api) -> None:
    mother = await enrol(api, name="李小红")
    response = await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth("frontdesk"), "If-Match": '"1"'},
        json={"name": "曾小红", "phone": "13655556666"},
    )
    assert response.status_code == 200, response.text
    assert await search(api, "lixiao") == []
    assert await search(api, "zengx") == ["曾小红"]
    assert await search(api, "6666") == ["曾小红"]
    assert await search(api, "8000") == []


async def test_an_unknown_parameter_is_a_400_naming_it_not_every_mother(api: Api) -> None:
    await enrol(api)
    response = await api.client.get(
        "/v1/mothers", headers=api.auth("frontdesk"), params={"nmae": "王"}
    )
    body = assert_problem(response, 400)
    assert body["errors"] == [{"field": "nmae", "location": "query", "detail": "unknown parameter"}]
    assert "nmae" in str(body["detail"])
    assert_problem(
        await api.client.get("/v1/mothers", headers=api.auth("frontdesk"), params={"q": ""}), 422
    )
    assert await search(api, "——") == []  # nothing searchable in it: nothing found
