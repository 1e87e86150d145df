"""Stations and exams named in Chinese and English by the API (migration 0027), not by a
screen: the lists, the board, the station's queue and her own page carry both names, and an
admin sets the Chinese one through the existing PATCH routes."""

from __future__ import annotations

from tests.helpers.api import Api
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session


async def test_the_lists_name_stations_and_exams_in_both_languages(api: Api) -> None:
    admin = api.auth("admin")
    stations = {
        s["code"]: s for s in (await api.client.get("/v1/stations", headers=admin)).json()["items"]
    }
    assert (stations["LAB"]["name"], stations["LAB"]["name_zh"]) == ("Blood draw", "抽血")
    assert stations["LAB"]["place_kind"] == "window"
    assert (stations["US"]["name_zh"], stations["US"]["place_kind"]) == ("B超", "room")
    # 0018 wrote the nutrition station's two names in one string: now one name each.
    assert (stations["NUT"]["name"], stations["NUT"]["name_zh"]) == ("Nutrition clinic", "营养门诊")
    exams = {
        e["code"]: e
        for e in (await api.client.get("/v1/exam-types", headers=admin)).json()["items"]
    }
    assert (exams["cbc"]["name"], exams["cbc"]["name_zh"]) == ("Complete blood count", "血常规")
    assert exams["nutrition_assessment"]["name"] == "Nutrition assessment"
    assert all(e["name_zh"] for e in exams.values())  # every default exam has one


async def test_an_admin_names_a_station_and_an_exam_in_chinese(api: Api) -> None:
    admin = api.auth("admin")
    created = await api.client.post(
        "/v1/stations",
        headers=admin,
        json={"code": "US2", "name": "Ultrasound 2", "station_type": "ultrasound", "servers": 1},
    )
    assert created.status_code == 201, created.text
    assert (created.json()["name_zh"], created.json()["place_kind"]) == (None, "room")
    etag = created.headers.get("etag", '"1"')
    changed = await api.client.patch(
        "/v1/stations/US2",
        headers={**admin, "If-Match": etag},
        json={"name_zh": "二号超声室", "place_kind": "window"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name_zh"], changed.json()["place_kind"]) == ("二号超声室", "window")
    bad = await api.client.patch(
        "/v1/stations/US2",
        headers={**admin, "If-Match": changed.headers["etag"]},
        json={"place_kind": "desk"},
    )
    assert bad.status_code == 422
    exams = (await api.client.get("/v1/exam-types", headers=admin)).json()["items"]
    cbc = next(e for e in exams if e["code"] == "cbc")
    renamed = await api.client.patch(
        "/v1/exam-types/cbc",
        headers={**admin, "If-Match": '"1"'},
        json={"name_zh": "全血细胞计数"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name_zh"] == "全血细胞计数"
    assert renamed.json()["name"] == cbc["name"]


async def test_the_board_queue_and_her_page_carry_both_names(api: Api) -> None:
    await open_session(api, day=TODAY)
    her = await arrive(api, serial="101", name="王小琪")
    board = (await api.client.get("/v1/stations/LAB/board")).json()
    assert (board["name"], board["name_zh"], board["place_kind"]) == (
        "Blood draw",
        "抽血",
        "window",
    )
    queue = await api.client.get("/v1/stations/LAB/queue", headers=api.auth("frontdesk"))
    assert queue.status_code == 200, queue.text
    body = queue.json()
    assert body["station"]["name_zh"] == "抽血"
    waiting = body["waiting"][0]
    assert len(waiting["exams"]) == len(waiting["exams_zh"])
    assert "血常规" in waiting["exams_zh"], waiting
    assert "Complete blood count" in waiting["exams"]
    link = await api.client.post(
        f"/v1/visits/{her['visit']['id']}/her-link", headers=api.auth("frontdesk")
    )
    assert link.status_code in (200, 201), link.text
    token = link.json()["url"].removeprefix("/console/her.html#k=")
    page = (await api.client.get("/v1/her/visit", headers={"X-Her-Link": token})).json()
    lab = next(t for t in page["tickets"] if t["station"] == "LAB")
    assert (lab["station_name"], lab["station_name_zh"], lab["place_kind"]) == (
        "Blood draw",
        "抽血",
        "window",
    )
    assert "血常规" in lab["exams_zh"]
    if page["next"] is not None:
        assert len(page["next"]["exams_zh"]) == len(page["next"]["exams"])
