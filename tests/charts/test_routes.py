"""The chart routes on both databases: her readings drawn from the measurements, the band of her
BMI group, object-level access (another butler's mother is a 404), the audit, the cache headers
and the ETag (304 on If-None-Match; a new reading changes it)."""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.core.clock import FrozenClock
from app.measurements.domain import MeasurementKind, MeasurementSource
from app.measurements.models import Measurement
from app.mothers.models import Pregnancy
from tests.helpers.api import Api
from tests.helpers.mothers import mother_with_butler

SVG = "{http://www.w3.org/2000/svg}"
WEIGHT = "/v1/mothers/{}/charts/weight-gain.{}"
PRESSURE = "/v1/mothers/{}/charts/blood-pressure.{}"


async def add_readings(
    factory: async_sessionmaker[AsyncSession],
    clock: FrozenClock,
    mother_id: str,
    readings: list[tuple[MeasurementKind, int | None, float, float | None]],
    *,
    by_butler: bool = False,
) -> None:
    """Rows as the measurements service stores them (kind, GA in days, value, diastolic)."""
    async with factory() as session:
        pregnancy = await session.scalar(
            select(Pregnancy).where(Pregnancy.mother_id == uuid.UUID(mother_id))
        )
        assert pregnancy is not None
        now = clock.now()
        for kind, ga, value, value2 in readings:
            unit = {"height": "cm", "blood_pressure": "mmHg"}.get(kind.value, "kg")
            session.add(
                Measurement(
                    mother_id=pregnancy.mother_id,
                    pregnancy_id=pregnancy.id,
                    kind=kind,
                    value=value,
                    value2=value2,
                    unit=unit,
                    entered={"value": value, "unit": unit},
                    measured_at=now - timedelta(days=(180 - ga) if ga else 200),
                    ga_days=ga,
                    source=MeasurementSource.BUTLER if by_butler else MeasurementSource.STATION,
                    reported_by_mother=by_butler,
                    recorded_by_name="Station",
                    recorded_by_role="station",
                    recorded_at=now,
                )
            )
        await session.commit()


def parse(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 - the service's own output


def uses(root: ET.Element, gid: str) -> int:
    found = root.find(f".//{SVG}g[@id='{gid}']")
    return 0 if found is None else len(list(found.iter(f"{SVG}use")))


async def her(api: Api, session_factory: Any, clock: FrozenClock) -> str:
    mother = await mother_with_butler(api)
    await add_readings(
        session_factory,
        clock,
        mother["id"],
        [
            (MeasurementKind.HEIGHT, None, 160.0, None),
            (MeasurementKind.PRE_PREGNANCY_WEIGHT, None, 55.0, None),
            (MeasurementKind.WEIGHT, 84, 56.0, None),  # 12+0: 1.0 kg, within 0-2
            (MeasurementKind.WEIGHT, 126, 64.0, None),  # 18+0: 9.0 kg, above
            (MeasurementKind.BLOOD_PRESSURE, 84, 118.0, 76.0),
            (MeasurementKind.BLOOD_PRESSURE, 150, 142.0, 88.0),
            (MeasurementKind.BLOOD_PRESSURE, 160, 161.0, 100.0),
        ],
    )
    return str(mother["id"])


async def test_weight_svg_draws_her_readings_against_her_group_band(
    api: Api, session_factory: Any, clock: FrozenClock
) -> None:
    mother_id = await her(api, session_factory, clock)
    response = await api.client.get(WEIGHT.format(mother_id, "svg"), headers=api.auth("butler1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    # Her chart is her data: never kept on a disk (issue 18's no-store on every /v1 answer).
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["etag"].endswith('.svg"')
    root = parse(response.content)
    assert (uses(root, "readings-within"), uses(root, "readings-above")) == (1, 1)
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    text = desc.text or ""
    # 55 kg at 160 cm: BMI 21.5, WS/T 801 normal weight.
    assert "WS/T 801—2022" in text
    assert "normal weight" in text
    assert "Pre-pregnancy weight 55.0 kg" in text
    assert "12+0 weeks 56.0 kg (within range)" in text
    assert "18+0 weeks 64.0 kg (above range)" in text
    assert root.find(f".//{SVG}g[@id='weight-band']") is not None


async def test_pressure_png_and_svg(api: Api, session_factory: Any, clock: FrozenClock) -> None:
    mother_id = await her(api, session_factory, clock)
    png = await api.client.get(PRESSURE.format(mother_id, "png"), headers=api.auth("doctor"))
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png.content[16:24]) == (960, 1120)  # taller: its legend
    svg = await api.client.get(PRESSURE.format(mother_id, "svg"), headers=api.auth("nutritionist"))
    assert svg.status_code == 200, svg.text
    root = parse(svg.content)
    assert uses(root, "systolic") == 3
    # Each value ringed at its own line: 142 (systolic, 140), 161 (systolic, 160) and its
    # diastolic 100 at the 90 line, not as severe.
    assert uses(root, "reached-140-90-systolic") == 1
    assert uses(root, "reached-140-90-diastolic") == 1
    assert uses(root, "reached-160-110-systolic") == 1
    assert uses(root, "reached-160-110-diastolic") == 0
    assert png.headers["etag"] != svg.headers["etag"]


async def test_etag_gives_304_until_a_new_reading(
    api: Api, session_factory: Any, clock: FrozenClock
) -> None:
    mother_id = await her(api, session_factory, clock)
    url = PRESSURE.format(mother_id, "svg")
    first = await api.client.get(url, headers=api.auth("butler1"))
    etag = first.headers["etag"]
    again = await api.client.get(url, headers={**api.auth("butler1"), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    await add_readings(
        session_factory,
        clock,
        mother_id,
        [(MeasurementKind.BLOOD_PRESSURE, 170, 130.0, 84.0)],
        by_butler=True,
    )
    changed = await api.client.get(url, headers={**api.auth("butler1"), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert uses(parse(changed.content), "systolic-reported") == 1
    async with session_factory() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("mother.chart%"))
            )
        )
    assert actions.count("mother.chart.blood_pressure") == 3


async def test_no_readings_say_so_and_no_baseline_says_why_there_is_no_band(
    api: Api, session_factory: Any, clock: FrozenClock
) -> None:
    mother = await mother_with_butler(api)
    empty = await api.client.get(WEIGHT.format(mother["id"], "svg"), headers=api.auth("doctor"))
    assert empty.status_code == 200
    root = parse(empty.content)
    said = "".join(root.find(f".//{SVG}g[@id='no-data']").itertext())  # type: ignore[union-attr]
    assert "暂无体重记录" in said
    assert "No weight readings yet" in said
    assert "No pre-pregnancy weight or height" in "".join(root.itertext())
    await add_readings(
        session_factory, clock, mother["id"], [(MeasurementKind.WEIGHT, 98, 60.0, None)]
    )
    one = parse(
        (
            await api.client.get(WEIGHT.format(mother["id"], "svg"), headers=api.auth("doctor"))
        ).content
    )
    assert uses(one, "readings-none") == 1
    assert one.find(f".//{SVG}g[@id='weight-band']") is None
    bp = await api.client.get(PRESSURE.format(mother["id"], "png"), headers=api.auth("doctor"))
    assert bp.status_code == 200
    assert bp.content[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_butler_not_hers_gets_404_and_the_refusal_is_audited(
    api: Api, session_factory: Any, clock: FrozenClock
) -> None:
    mother_id = await her(api, session_factory, clock)
    for url in (WEIGHT, PRESSURE):
        for fmt in ("svg", "png"):
            response = await api.client.get(url.format(mother_id, fmt), headers=api.auth("butler2"))
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
    unknown = await api.client.get(WEIGHT.format(uuid.uuid4(), "svg"), headers=api.auth("doctor"))
    assert unknown.status_code == 404
    # A station reads her charts only while she is at its station today (she has no visit:
    # 404, as for another butler; tests/auth/test_station_mother_access.py has the rest).
    for url in (WEIGHT, PRESSURE):
        station = await api.client.get(url.format(mother_id, "svg"), headers=api.auth("station"))
        assert station.status_code == 404, station.text
    async with session_factory() as session:
        denied = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "mother.chart"))
        )
    assert len(denied) == 6
    assert {str(e.mother_id) for e in denied} == {mother_id}


async def test_twins_get_no_band_and_the_chart_says_why(
    api: Api, session_factory: Any, clock: FrozenClock
) -> None:
    mother_id = await her(api, session_factory, clock)
    twins = await api.client.post(
        f"/v1/mothers/{mother_id}/care-plan/indications",
        headers=api.auth("doctor"),
        json={"code": "multiple_pregnancy", "present": True, "reason": "dichorionic twins on scan"},
    )
    assert twins.status_code == 201, twins.text
    root = parse(
        (await api.client.get(WEIGHT.format(mother_id, "svg"), headers=api.auth("doctor"))).content
    )
    assert root.find(f".//{SVG}g[@id='weight-band']") is None
    assert uses(root, "readings-none") == 2  # her readings, with no status
    note = "".join(root.find(f".//{SVG}g[@id='note']").itertext())  # type: ignore[union-attr]
    assert "不适用" in note
    assert "WS/T 801—2022" in note
