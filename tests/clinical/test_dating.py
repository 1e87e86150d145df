"""Re-dating within limits (ACOG Committee Opinion 700, 2017), API level, both databases.

- a growth scan at 37+3 (LMP) measuring 33+0 → refused, EDD kept (409 third-trimester-redating);
  sent at enrolment → enrolled on LMP dating, a doctor's dating.review item → ACOG 700 Table 1 †
- a CRL at 10+0, 6 days off → recorded, not re-dated, the answer says why → Table 1 (> 7 days)
- a CRL at 10+0, 8 days off → re-dated to the scan → Table 1 (9+0-13+6: > 7 days)
- an HC scan at 20+0, 11 days off → re-dated; 10 days off → not → Table 1 (16+0-21+6: > 10)
- after a first-trimester CRL dating, a 24-week scan 16 days off → refused (409 dating-established)
  without a doctor's override; a front desk's override 403; a doctor's override with a reason
  re-dates and the history keeps who and why → ACOG 700 (changes reserved for rare cases)
- IVF, day-5 embryo transferred 2026-06-15 → EDD 2027-03-03 (transfer + 261), method ivf → ACOG 700
- LMP dating, no scan, at 21+6 → not flagged; at 22+0 → "suboptimally dated" with its reason;
  with a scan before 22+0 → not flagged → ACOG 700
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.helpers.api import Api
from tests.helpers.factories import mother_body
from tests.helpers.mothers import enrol
from tests.helpers.problems import assert_problem

TODAY = date(2026, 11, 28)  # the test clock
LMP = date(2026, 6, 1)  # the factory's LMP: 25+5 today


def lmp_at(weeks: int, days: int) -> str:
    """The LMP that puts her at weeks+days today."""
    return (TODAY - timedelta(days=weeks * 7 + days)).isoformat()


async def patch(api: Api, mother: dict[str, Any], body: dict[str, Any], who: str = "doctor") -> Any:
    current = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth(who))
    return await api.client.patch(
        f"/v1/mothers/{mother['id']}",
        headers={**api.auth(who), "If-Match": current.headers["etag"]},
        json={"pregnancy": body},
    )


def scan(day: date, ga: str, measurement: str = "crl", value_mm: float = 40) -> dict[str, Any]:
    return {
        "scan_date": day.isoformat(),
        "measurement": measurement,
        "value_mm": value_mm,
        "ga": ga,
    }


async def history(api: Api, mother: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(
        f"/v1/mothers/{mother['id']}/dating-history", headers=api.auth("doctor")
    )
    changes: list[dict[str, Any]] = response.json()["changes"]
    return changes


async def test_the_37_week_growth_scan_does_not_redate(api: Api) -> None:
    mother = await enrol(api, pregnancy={**mother_body()["pregnancy"], "lmp_date": lmp_at(37, 3)})
    edd = mother["pregnancy"]["edd_date"]
    refused = await patch(
        api, mother, {"ultrasound": scan(TODAY, "33+0", "biometry"), "dating_reason": "growth scan"}
    )
    problem = assert_problem(refused, 409)
    assert problem["type"] == "/problems/redating-needs-override"
    assert problem["rule"] == "third-trimester-redating"
    assert problem["difference_days"] == -31
    assert "growth restricted" in str(problem["detail"])
    # The old shape (an EDD with the method) is judged the same way.
    legacy_edd = (TODAY + timedelta(days=280 - 33 * 7)).isoformat()
    legacy = await patch(api, mother, {"edd_date": legacy_edd, "dating_method": "ultrasound"})
    assert_problem(legacy, 409)
    record = await api.client.get(f"/v1/mothers/{mother['id']}", headers=api.auth("doctor"))
    assert record.json()["pregnancy"]["edd_date"] == edd
    assert record.json()["pregnancy"]["gestational_age"]["display"] == "37+3"


async def test_the_37_week_growth_scan_at_enrolment_leaves_it_to_a_doctor(api: Api) -> None:
    legacy_edd = (TODAY + timedelta(days=280 - 33 * 7)).isoformat()
    mother = await enrol(
        api,
        pregnancy={
            **mother_body()["pregnancy"],
            "lmp_date": lmp_at(37, 3),
            "edd_date": legacy_edd,
        },
    )
    assert mother["pregnancy"]["gestational_age"]["display"] == "37+3"
    assert mother["pregnancy"]["dating_method"] == "lmp"
    assert mother["dating_decision"]["outcome"] == "referred"
    worklist = await api.client.get("/v1/worklist", headers=api.auth("doctor"))
    kinds = {(i["kind"], i["mother_id"]) for i in worklist.json()["items"]}
    assert ("dating.review", mother["id"]) in kinds


async def test_a_10_week_crl_6_days_off_does_not_redate(api: Api) -> None:
    mother = await enrol(api)
    response = await patch(api, mother, {"ultrasound": scan(LMP + timedelta(days=70), "10+6")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pregnancy"]["edd_date"] == "2027-03-08"  # LMP + 280: the LMP dating stands
    assert body["pregnancy"]["dating_method"] == "lmp"
    decision = body["dating_decision"]
    assert decision["outcome"] == "confirmed"
    assert (decision["difference_days"], decision["threshold_days"]) == (6, 7)
    assert "more than 7 days" in decision["reason"]
    assert "ACOG" in decision["reason"]
    # The scan is recorded, and the dating now rests on it.
    last = (await history(api, mother))[-1]
    assert (last["outcome"], last["scan_ga_days"], last["scan_measurement"]) == (
        "confirmed",
        76,
        "crl",
    )
    assert body["pregnancy"]["dating"]["scan"]["ga"] == "10+6"


async def test_a_10_week_crl_8_days_off_redates(api: Api) -> None:
    mother = await enrol(api)
    response = await patch(api, mother, {"ultrasound": scan(LMP + timedelta(days=70), "11+1")})
    assert response.status_code == 200, response.text
    pregnancy = response.json()["pregnancy"]
    assert pregnancy["edd_date"] == (LMP + timedelta(days=280 - 8)).isoformat()
    assert pregnancy["dating_method"] == "ultrasound"
    assert response.json()["dating_decision"]["outcome"] == "redated"


async def test_an_hc_scan_at_20_weeks_redates_past_10_days(api: Api) -> None:
    at_20 = LMP + timedelta(days=140)
    kept = await enrol(api, serial="301", phone="13800000301")
    within = await patch(api, kept, {"ultrasound": scan(at_20, "21+3", "hc", 175)})
    assert within.json()["pregnancy"]["dating_method"] == "lmp"  # 10 days: not more than 10
    redated = await enrol(api, serial="302", phone="13800000302")
    past = await patch(api, redated, {"ultrasound": scan(at_20, "21+4", "hc", 178)})
    assert past.status_code == 200, past.text
    assert past.json()["pregnancy"]["edd_date"] == (LMP + timedelta(days=280 - 11)).isoformat()
    assert past.json()["dating_decision"]["threshold_days"] == 10


async def test_after_crl_dating_a_24_week_redating_needs_a_doctors_override(api: Api) -> None:
    mother = await enrol(api)
    crl = await patch(api, mother, {"ultrasound": scan(LMP + timedelta(days=70), "11+1")})
    crl_edd = crl.json()["pregnancy"]["edd_date"]
    assert "first-trimester CRL" in crl.json()["pregnancy"]["dating"]["established_by"]
    # 24+0 by the CRL dating on 2026-11-09; the scan measures 21+5: 16 days, past 14.
    day = date.fromisoformat(crl_edd) - timedelta(days=280 - 24 * 7)
    later = {"ultrasound": scan(day, "21+5", "hc", 190)}
    refused = await patch(api, mother, later)
    problem = assert_problem(refused, 409)
    assert problem["rule"] == "dating-established"
    assert "first-trimester CRL" in str(problem["detail"])
    not_a_doctor = await patch(
        api, mother, {**later, "redating_override": "the desk thinks so"}, who="frontdesk"
    )
    assert_problem(not_a_doctor, 403)
    overridden = await patch(
        api, mother, {**later, "redating_override": "CRL belonged to the demised twin"}
    )
    assert overridden.status_code == 200, overridden.text
    assert (
        overridden.json()["pregnancy"]["edd_date"] == (day + timedelta(days=280 - 152)).isoformat()
    )
    assert overridden.json()["dating_decision"]["outcome"] == "overridden"
    last = (await history(api, mother))[-1]
    assert last["outcome"] == "overridden"
    assert "CRL belonged to the demised twin" in last["reason"]
    assert (last["changed_by_name"], last["changed_by_role"]) == ("doctor", "doctor")
    assert last["previous_edd_date"] == crl_edd


async def test_ivf_day_5_transfer_dates_the_pregnancy(api: Api) -> None:
    body = mother_body()
    body["pregnancy"] = {
        "ivf": {"transfer_date": "2026-06-15", "embryo_age_days": 5},
        "gravida": 1,
        "para": 0,
        "risk_grade": "green",
    }
    response = await api.client.post("/v1/mothers", headers=api.auth("frontdesk"), json=body)
    assert response.status_code == 201, response.text
    pregnancy = response.json()["pregnancy"]
    assert pregnancy["edd_date"] == "2027-03-03"  # 2026-06-15 + 266 - 5
    assert pregnancy["dating_method"] == "ivf"
    assert pregnancy["dating"]["ivf"] == {"transfer_date": "2026-06-15", "embryo_age_days": 5}
    assert pregnancy["dating"]["suboptimal"] is False
    # The transfer fixes the dating: a later scan past its threshold does not change it.
    refused = await patch(api, response.json(), {"ultrasound": scan(TODAY, "22+0", "biometry")})
    assert_problem(refused, 409)


async def test_suboptimal_dating_from_22_weeks_without_a_scan(api: Api) -> None:
    before = await enrol(
        api,
        serial="401",
        phone="13800000401",
        pregnancy={**mother_body()["pregnancy"], "lmp_date": lmp_at(21, 6)},
    )
    assert before["pregnancy"]["dating"]["suboptimal"] is False
    at_22 = await enrol(
        api,
        serial="402",
        phone="13800000402",
        pregnancy={**mother_body()["pregnancy"], "lmp_date": lmp_at(22, 0)},
    )
    dating = at_22["pregnancy"]["dating"]
    assert dating["suboptimal"] is True
    assert "no ultrasound before 22+0" in dating["suboptimal_reason"]
    # A scan at 21+6 that confirmed the LMP dates her well.
    day = TODAY - timedelta(days=1)
    scanned = await patch(api, at_22, {"ultrasound": scan(day, "21+6", "hc", 190)})
    assert scanned.json()["pregnancy"]["dating"]["suboptimal"] is False
