"""Her height and pre-pregnancy weight are one value each per pregnancy (issue 16 review): a
second one is a 409 pointing to the correction route, not a silent new value that wins; only a
correction changes it, and the database refuses a second current one too. A butler (or a
station) neither enters nor corrects them: the desk at enrolment, a doctor, the nutritionist."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.measurements.domain import MeasurementKind, MeasurementSource
from app.measurements.models import Measurement
from app.measurements.repository import MeasurementRepository
from tests.helpers.api import Api
from tests.helpers.mothers import enrol, mother_with_butler
from tests.helpers.problems import assert_problem
from tests.helpers.queues import arrive
from tests.helpers.visits import TODAY, open_session

K = MeasurementKind


async def _record(api: Api, mother_id: str, who: str, *readings: dict[str, Any]) -> Any:
    return await api.client.post(
        f"/v1/mothers/{mother_id}/measurements",
        headers=api.auth(who),
        json={"readings": list(readings)},
    )


async def _correct(api: Api, measurement_id: str, who: str, **body: Any) -> Any:
    return await api.client.post(
        f"/v1/measurements/{measurement_id}/corrections", headers=api.auth(who), json=body
    )


async def _rows(
    factory: async_sessionmaker[AsyncSession], mother_id: str, kind: MeasurementKind
) -> list[Measurement]:
    async with factory() as session:
        stmt = (
            select(Measurement)
            .where(Measurement.mother_id == uuid.UUID(mother_id), Measurement.kind == kind)
            .order_by(Measurement.recorded_at)
        )
        return list(await session.scalars(stmt))


@pytest.mark.parametrize(
    ("kind", "enrolled", "again"),
    [
        ("height", {"height_cm": 160}, 158),
        ("pre_pregnancy_weight", {"pre_pregnancy_weight_kg": 55}, 58),
    ],
)
async def test_a_second_baseline_value_is_a_409_pointing_to_the_correction(
    api: Api,
    session_factory: async_sessionmaker[AsyncSession],
    kind: str,
    enrolled: dict[str, Any],
    again: float,
) -> None:
    mother = await mother_with_butler(api, **enrolled)
    (first,) = await _rows(session_factory, mother["id"], K(kind))
    for who in ("doctor", "nutritionist"):
        problem = assert_problem(
            await _record(api, mother["id"], who, {"kind": kind, "value": again}), 409
        )
        assert f"/v1/measurements/{first.id}/corrections" in problem["detail"]
    # Nothing was stored: the enrolment's value still stands, alone.
    assert [r.value for r in await _rows(session_factory, mother["id"], K(kind))] == [first.value]
    # A correction changes it, and the corrected value is her baseline.
    fixed = await _correct(api, str(first.id), "nutritionist", value=again, reason="re-measured")
    assert fixed.status_code == 201, fixed.text
    rows = await _rows(session_factory, mother["id"], K(kind))
    assert [(r.value, r.superseded_at is None) for r in rows] == [
        (first.value, False),
        (again, True),
    ]
    async with session_factory() as session:
        baseline = await MeasurementRepository(session).baseline(rows[0].pregnancy_id)
    got = baseline.height_cm if kind == "height" else baseline.pre_pregnancy_weight_kg
    assert got == again
    # And the current one can be corrected again (the partial unique index lets it through).
    fixed = await _correct(api, fixed.json()["id"], "doctor", value=again + 1, reason="typo")
    assert fixed.status_code == 201, fixed.text


async def test_one_height_recorded_by_a_doctor_when_enrolment_had_none(api: Api) -> None:
    mother = await mother_with_butler(api)
    both = await _record(
        api,
        mother["id"],
        "doctor",
        {"kind": "height", "value": 160},
        {"kind": "height", "value": 161},
    )
    problem = assert_problem(both, 422)
    assert problem["errors"][0]["field"] == "readings.1.kind"  # type: ignore[index]
    first = await _record(
        api, mother["id"], "doctor", {"kind": "height", "value": 1.6, "unit": "m"}
    )
    assert first.status_code == 201, first.text
    assert_problem(
        await _record(api, mother["id"], "doctor", {"kind": "height", "value": 160}), 409
    )


async def test_a_butler_or_a_station_neither_enters_nor_corrects_her_baseline(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # butler1's, checked in at the vitals station (a station records only while she is there)
    await open_session(api, day=TODAY, starts="08:00", ends="17:00")
    mother = (await arrive(api, height_cm=160))["mother"]
    for who in ("butler1", "station"):
        for kind in ("height", "pre_pregnancy_weight"):
            value = 160 if kind == "height" else 60
            refused = await _record(api, mother["id"], who, {"kind": kind, "value": value})
            assert_problem(refused, 403)
    (height,) = await _rows(session_factory, mother["id"], K.HEIGHT)
    assert_problem(
        await _correct(api, str(height.id), "butler1", value=158, reason="she says"), 403
    )
    # Her weight today, as she reports it, is still her butler's to enter.
    weight = await _record(api, mother["id"], "butler1", {"kind": "weight", "value": 61})
    assert weight.status_code == 201, weight.text


async def test_the_database_refuses_a_second_current_height(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api, height_cm=160)
    (first,) = await _rows(session_factory, mother["id"], K.HEIGHT)
    now = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

    def row(**kw: Any) -> Measurement:
        return Measurement(
            mother_id=first.mother_id,
            pregnancy_id=first.pregnancy_id,
            kind=K.HEIGHT,
            value=161,
            unit="cm",
            entered={"value": 161},
            measured_at=now,
            source=MeasurementSource.DOCTOR,
            reported_by_mother=False,
            recorded_by_name="doctor",
            recorded_by_role="doctor",
            recorded_at=now,
            **kw,
        )

    async with session_factory() as session:
        session.add(row())
        with pytest.raises(IntegrityError):
            await session.flush()
    # A superseded one beside it is allowed: that is what a correction leaves.
    async with session_factory() as session, session.begin():
        session.add(row(superseded_at=now, superseded_by_name="doctor"))
    # Weight is not a baseline: any number of them.
    async with session_factory() as session, session.begin():
        session.add_all([_weight(first, now), _weight(first, now)])


def _weight(first: Measurement, now: datetime) -> Measurement:
    return Measurement(
        mother_id=first.mother_id,
        pregnancy_id=first.pregnancy_id,
        kind=K.WEIGHT,
        value=61,
        unit="kg",
        entered={"value": 61},
        measured_at=now,
        ga_days=180,
        source=MeasurementSource.DOCTOR,
        reported_by_mother=False,
        recorded_by_name="doctor",
        recorded_by_role="doctor",
        recorded_at=now,
    )


# Round 2 (probe F5, F8) ---------------------------------------------------------------------


async def test_the_desk_corrects_the_height_and_weight_it_entered_at_enrolment(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The 409 sends the desk to the corrections route: it must be let in there, for the two
    baseline values it typed at enrolment, and nothing else."""
    mother = await mother_with_butler(api, height_cm=160, pre_pregnancy_weight_kg=55)
    (height,) = await _rows(session_factory, mother["id"], K.HEIGHT)
    (weight,) = await _rows(session_factory, mother["id"], K.PRE_PREGNANCY_WEIGHT)
    fixed = await _correct(api, str(height.id), "frontdesk", value=165, reason="typed 160")
    assert fixed.status_code == 201, fixed.text
    assert (fixed.json()["value"], fixed.json()["source"]) == (165, "enrolment")
    again = await _correct(api, fixed.json()["id"], "frontdesk", value=164, reason="164")
    assert again.status_code == 201, again.text
    fixed = await _correct(api, str(weight.id), "frontdesk", value=58, reason="typed 55")
    assert fixed.status_code == 201, fixed.text
    # Not her other readings: a weight today is the station's or a clinician's.
    today = await _record(api, mother["id"], "doctor", {"kind": "weight", "value": 61})
    assert today.status_code == 201, today.text
    refused = await _correct(
        api, today.json()["items"][0]["id"], "frontdesk", value=62, reason="no"
    )
    assert_problem(refused, 403)
    # Nor a height a doctor has corrected since: the clinician's value is not the desk's.
    doctors = await _correct(api, again.json()["id"], "doctor", value=163, reason="measured")
    assert doctors.status_code == 201, doctors.text
    refused = await _correct(api, doctors.json()["id"], "frontdesk", value=160, reason="no")
    assert_problem(refused, 403)


async def test_the_409_names_every_baseline_already_recorded_with_its_field(
    api: Api, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    mother = await mother_with_butler(api, height_cm=160, pre_pregnancy_weight_kg=55)
    (height,) = await _rows(session_factory, mother["id"], K.HEIGHT)
    (weight,) = await _rows(session_factory, mother["id"], K.PRE_PREGNANCY_WEIGHT)
    problem = assert_problem(
        await _record(
            api,
            mother["id"],
            "doctor",
            {"kind": "weight", "value": 61},
            {"kind": "pre_pregnancy_weight", "value": 56},
            {"kind": "height", "value": 161},
        ),
        409,
    )
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [(e["field"], e["pointer"]) for e in errors] == [
        ("readings.1", "#/readings/1"),
        ("readings.2", "#/readings/2"),
    ]
    assert f"/v1/measurements/{weight.id}/corrections" in errors[0]["detail"]
    assert f"/v1/measurements/{height.id}/corrections" in errors[1]["detail"]
    detail = str(problem["detail"])
    assert str(height.id) in detail
    assert str(weight.id) in detail


@pytest.mark.parametrize("who", ["frontdesk", "admin"])
async def test_whoever_may_enrol_her_records_her_height_and_weight_with_it(
    api: Api, who: str
) -> None:
    """The enrolment route decides who enrols (the desk, the admin); her baseline comes with
    it, never a 403 that rolls the enrolment back."""
    mother = await enrol(api, who, height_cm=160, pre_pregnancy_weight_kg=55)
    got = await api.client.get(
        f"/v1/mothers/{mother['id']}/measurements", headers=api.auth("doctor")
    )
    assert got.status_code == 200, got.text
    kinds = sorted(m["kind"] for m in got.json()["items"])
    assert kinds == ["height", "pre_pregnancy_weight"]
