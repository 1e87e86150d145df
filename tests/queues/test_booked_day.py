"""A day of booking requests (issue 19, point 3): as requested, and booked through the
service's own rules (app.visits.capacity.book_requests), both replayed by the simulator."""

from __future__ import annotations

import json
import uuid
from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from sim import booking
from sim.simulator import Scenario, _local, prepare_template, report, run_scenario, table
from tests.helpers.scenarios import SHORT

W26 = ["ogtt", "urine", "us_obstetric", "vitals", "consultation"]
W12 = ["fasting_glucose", "cbc", "us_early", "urine", "vitals", "consultation"]

# One scan room for 90 minutes (90 scan minutes at the learned 12): ten asking for a scan is
# more than it can serve, so the service refuses some and offers them the next days.
DAY = {
    **{k: v for k, v in SHORT.items() if k not in ("arrivals", "visit_mix")},
    "name": "short-booking",
    "between_draws": ["rest"],
    "booking": {"per_hour": 8, "alternatives": 2, "punctuality_sd_minutes": 0},
    "booking_requests": [
        {"wished_at": "08:00", "gestational_week": 26, "exams": W26, "count": 3},
        {"wished_at": "08:10", "gestational_week": 12, "exams": W12, "count": 3},
        {"wished_at": "08:40", "gestational_week": 12, "exams": W12, "count": 4},
        {"wished_at": "08:20", "gestational_week": 30, "exams": ["vitals"], "walk_in": True},
    ],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_template(tmp_path_factory.mktemp("booked-day"))


def test_the_service_books_the_requests_and_offers_the_refused_another_session(
    template: Path,
) -> None:
    scenario = Scenario.model_validate(DAY)
    asked, booked = booking.days_of(scenario, template)
    assert (asked.variant, booked.variant) == (booking.AS_REQUESTED, booking.BOOKED)
    assert asked.requests == booked.requests == 10
    assert asked.walk_ins == booked.walk_ins == 1
    # As requested: everyone comes at her wished time.
    assert len(asked.arrivals) == 11
    assert (asked.accepted, asked.refused) == (10, 0)
    # Booked: the scan room's 90 minutes hold at most 7 scans of 12 minutes.
    assert booked.accepted + booked.refused == booked.requests
    assert 0 < booked.accepted <= 7
    assert booked.refused > 0
    assert booked.offered == booked.refused  # every refused one got another session
    assert booked.refused_unoffered == 0


def test_the_booked_day_comes_at_the_arrival_times_book_requests_gave(template: Path) -> None:
    scenario = Scenario.model_validate(DAY)
    placements = booking.book(scenario, booking.catalogue_of(template))
    today = uuid.UUID(int=1)
    accepted = {int(p.request.key): p for p in placements if p.session_id == today}
    assert accepted
    assert all(p.session_id is not None for p in placements if p.session_id != today)
    day = booking.booked_by_the_service(scenario, booking.catalogue_of(template))
    by_number = {a.number: a for a in day.arrivals}
    walk_in = 11
    assert set(by_number) == set(accepted) | {walk_in}  # the refused do not come
    for number, p in accepted.items():
        assert p.arrival is not None
        assert p.slot is not None
        a = by_number[number]
        assert a.scheduled == _local(p.arrival)
        assert a.at == a.scheduled  # no lateness in this scenario
        assert _local(p.slot) <= a.scheduled < _local(p.slot) + timedelta(hours=1)
        assert not a.walk_in
    assert by_number[walk_in].walk_in
    assert by_number[walk_in].at == _local(time(8, 20))  # unbooked, at her time
    # Lateness, when the scenario has it, is the same for a mother in both days.
    late = Scenario.model_validate(
        {**DAY, "booking": {**DAY["booking"], "punctuality_sd_minutes": 10}}  # type: ignore[dict-item]
    )
    asked = {a.number: a for a in booking.as_requested(late).arrivals}
    got = booking.booked_by_the_service(late, booking.catalogue_of(template))
    for a in got.arrivals:
        if not a.walk_in:
            assert a.at - a.scheduled == asked[a.number].at - asked[a.number].scheduled


def test_both_days_are_replayed_and_reported(template: Path, tmp_path: Path) -> None:
    scenario = Scenario.model_validate(DAY)
    days = booking.days_of(scenario, template)
    comparisons = [
        run_scenario(scenario, workdir=tmp_path, template=template, progress=False, day=d)
        for d in days
    ]
    for c, d in zip(comparisons, days, strict=True):
        assert c.booking is d
        assert c.title == f"short-booking, {d.variant}"
        for r in c.results:
            assert r.mothers == len(d.arrivals)
        parallel = next(r for r in c.results if r.strategy == "parallel")
        assert parallel.violations == []
        assert parallel.finished == parallel.mothers
    written = table(comparisons)
    assert "| short-booking, as requested | parallel |" in written
    assert "| short-booking, booked by the service | parallel |" in written
    booked = days[1]
    assert (
        f"| short-booking | booked by the service | rest | 10 | {booked.accepted} | "
        f"{booked.other_hour} | {booked.refused} | {booked.offered} | 1 |"
    ) in written
    targets = report(comparisons, [1.0, 1.0], [Path("short.json")])
    assert "p90 wait of those the service accepted (routing)" in targets
    assert f"| {booked.offered} of {booked.refused} | every one | yes |" in targets


def test_a_day_gives_arrivals_or_booking_requests_not_both() -> None:
    with pytest.raises(ValidationError, match="give arrivals and visit_mix, or booking_requests"):
        Scenario.model_validate({**SHORT, "booking_requests": DAY["booking_requests"]})
    with pytest.raises(ValidationError, match="give arrivals and visit_mix, or booking_requests"):
        Scenario.model_validate({k: v for k, v in SHORT.items() if k != "visit_mix"})
    outside = [{"wished_at": "10:00", "gestational_week": 26, "exams": W26}]
    with pytest.raises(ValidationError, match="outside the session"):
        Scenario.model_validate({**DAY, "booking_requests": outside})
    assert json.loads(Scenario.model_validate(DAY).model_dump_json())["booking"]["per_hour"] == 8
