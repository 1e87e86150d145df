"""A route whose body has only optional fields takes no body at all (FastAPI would answer 422
"field required"): found from the routes, so that a new one is covered too."""

from __future__ import annotations

from pydantic import BaseModel

from app.main import api_routes
from tests.helpers.api import Api
from tests.helpers.factories import station_login
from tests.helpers.mothers import mother_with_butler

# Optional fields, but a body is still needed: a PATCH without one has lost its change (send
# {} to change nothing), and a check-in needs one of mrn, visit_id or scan (it says which).
BODY_NEEDED = {
    ("PATCH", "/v1/users/{user_id}"),
    ("PATCH", "/v1/mothers/{mother_id}"),
    ("PATCH", "/v1/butlers/{butler_id}"),
    ("PATCH", "/v1/stations/{code}"),
    ("PATCH", "/v1/exam-types/{code}"),
    ("POST", "/v1/check-ins"),
}


def test_every_body_of_optional_fields_may_be_left_out() -> None:
    required = []
    for route in api_routes():
        field = route.body_field
        model = field.field_info.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        if any(f.is_required() for f in model.model_fields.values()):
            continue
        assert field is not None
        for method in route.methods:
            if (method, route.path) not in BODY_NEEDED and field.field_info.is_required():
                required.append(f"{method} {route.path}")
    assert required == []


async def test_calling_next_and_the_sweep_take_no_body(api: Api) -> None:
    sweep = await api.client.post("/v1/visits/no-show-sweep", headers=api.auth("frontdesk"))
    assert sweep.status_code == 200, sweep.text
    assert sweep.json()["marked_no_show"] == []
    nobody = await api.client.post(
        "/v1/stations/VIT/call-next", headers=api.auth(station_login("VIT"))
    )
    assert nobody.status_code != 422, nobody.text  # nobody waiting: not "field required"


async def test_a_health_plan_is_generated_without_a_body(api: Api) -> None:
    mother = await mother_with_butler(api)
    plan = await api.client.post(
        f"/v1/mothers/{mother['id']}/health-plan", headers=api.auth("doctor")
    )
    assert plan.status_code in (200, 201), plan.text
