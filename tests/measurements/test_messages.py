"""What a refused reading says (probe F8): the units as the table spells them, every bad value
of a request in one 422, and the value echoed as it was entered, not as it would be stored."""

from __future__ import annotations

import pytest

from app.measurements import domain
from app.measurements.domain import Entered, MeasurementKind, ReadingError
from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.mothers import mother_with_butler
from tests.helpers.problems import assert_problem

K = MeasurementKind


def test_the_unit_error_lists_the_units_as_the_table_spells_them() -> None:
    with pytest.raises(ReadingError) as exc:
        domain.normalise(Entered(K.BLOOD_PRESSURE, 120, 80, "cmHg"), domain.limits())
    assert exc.value.field == "unit"
    assert exc.value.detail.endswith(": mmHg, 毫米汞柱, kPa, 千帕")
    # Matching is still without regard to case or spaces.
    normal = domain.normalise(Entered(K.BLOOD_PRESSURE, 16, 10, "KPA"), domain.limits())
    assert (normal.value, normal.value2) == (120, 75)


def test_the_range_error_echoes_the_value_as_entered() -> None:
    with pytest.raises(ReadingError) as exc:
        domain.normalise(Entered(K.HEIGHT, 1.62, None, "cm"), domain.limits())
    assert exc.value.detail.startswith("height 1.62 cm is outside 120-210 cm")
    with pytest.raises(ReadingError) as exc:
        domain.normalise(Entered(K.BLOOD_PRESSURE, 18.7, 2.04, "kPa"), domain.limits())
    assert exc.value.detail.startswith("diastolic 15 mmHg (2.04 kPa) is outside 30-160 mmHg")


async def test_enrolment_reports_both_bad_baseline_values_in_one_422(api: Api) -> None:
    response = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json=mother_body(height_cm=1.62, pre_pregnancy_weight_kg=20),
    )
    problem = assert_problem(response, 422)
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [e["field"] for e in errors] == ["height_cm", "pre_pregnancy_weight_kg"]
    assert "1.62 cm" in errors[0]["detail"]
    assert "20 kg" in errors[1]["detail"]
    # Nothing enrolled: the same MRN enrols once the values are right.
    ok = await api.client.post(
        "/v1/mothers",
        headers=api.auth("frontdesk"),
        json=mother_body(height_cm=162, pre_pregnancy_weight_kg=56),
    )
    assert ok.status_code == 201, ok.text


async def test_every_bad_reading_of_a_request_is_in_one_422(api: Api) -> None:
    mother = await mother_with_butler(api)
    response = await api.client.post(
        f"/v1/mothers/{mother['id']}/measurements",
        headers=api.auth("doctor"),
        json={
            "readings": [
                {"kind": "weight", "value": 605},
                {"kind": "pulse", "value": 80},
                {"kind": "blood_pressure", "value": 120, "value2": 80, "unit": "cmHg"},
            ]
        },
    )
    problem = assert_problem(response, 422)
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [e["field"] for e in errors] == ["readings.0.value", "readings.2.unit"]
    listed = await api.client.get(
        f"/v1/mothers/{mother['id']}/measurements", headers=api.auth("doctor")
    )
    assert listed.json()["items"] == []
