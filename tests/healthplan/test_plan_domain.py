"""The plan generator at its thresholds: trimester edges, BMI groups, GDM, anaemia, twins."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from app.clinical import gwg
from app.healthplan import domain
from app.healthplan.domain import Her, ItemChange, Weight

TODAY = date(2026, 12, 2)
TABLES = domain.plan_tables()
WST = gwg.table("wst-801-2022")


def ga(text: str) -> int:
    weeks, days = text.split("+")
    return int(weeks) * 7 + int(days)


def her(
    at: str = "20+0",
    *,
    bmi: float | None = 21.0,
    flags: dict[str, str | None] | None = None,
    risk: str = "green",
    twins: bool = False,
    gain: float | None = None,
    status: str | None = None,
) -> Her:
    group = None if bmi is None or twins else gwg.group(WST, bmi)
    return Her(
        today=TODAY,
        ga_days=ga(at),
        risk_grade=risk,
        bmi=bmi,
        weight=Weight(WST, group, gain_kg=gain, status=status),
        flags=flags or {},
        twins=twins,
    )


def items(plan: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in plan[section]["items"]}


def plan(h: Her) -> dict[str, Any]:
    return domain.generate(h, TABLES)


# Trimesters: 13+6 / 14+0 and 27+6 / 28+0 -----------------------------------------------------


def test_13_6_is_the_first_trimester_and_14_0_the_second() -> None:
    first = plan(her("13+6"))
    second = plan(her("14+0"))
    assert first["nutrition"]["trimester"] == "first"
    assert second["nutrition"]["trimester"] == "second"
    assert "energy_first" in items(first, "nutrition")
    assert "energy_first" not in items(second, "nutrition")  # a passed trimester is not planned
    energy = items(first, "nutrition")["energy_first"]
    assert "+0 kcal" in energy["title"]
    assert (energy["ga_from"], energy["ga_to"]) == (0, ga("13+6"))
    nxt = items(first, "nutrition")["energy_second"]
    assert "+250 kcal" in nxt["title"]
    assert (nxt["ga_from"], nxt["ga_to"]) == (ga("14+0"), ga("27+6"))


def test_27_6_is_the_second_trimester_and_28_0_the_third() -> None:
    second = plan(her("27+6"))
    third = plan(her("28+0"))
    assert second["nutrition"]["trimester"] == "second"
    assert third["nutrition"]["trimester"] == "third"
    assert set(items(second, "nutrition")) >= {"energy_second", "energy_third"}
    assert "energy_second" not in items(third, "nutrition")
    e3 = items(third, "nutrition")["energy_third"]
    assert "+400 kcal" in e3["title"]
    assert e3["ga_from"] == ga("28+0")
    assert "85 g" in items(third, "nutrition")["protein_third"]["title"]  # 55 + 30


def test_each_micronutrient_has_its_rni_per_trimester_and_names_the_edition() -> None:
    p = plan(her("10+0"))
    got = items(p, "nutrition")
    assert "25 mg" in got["iron_second"]["title"]
    assert "29 mg" in got["iron_third"]["title"]
    assert "600 ug DFE" in got["folate_first"]["title"]
    assert "800 mg" in got["calcium_third"]["title"]  # 2023: no pregnancy increment
    assert "2023" in p["nutrition"]["edition"]
    assert all(i["source"] and i["rule"] for i in p["nutrition"]["items"])


# BMI groups: 18.49/18.5, 23.99/24.0, 27.99/28.0 -------------------------------------------------


@pytest.mark.parametrize(
    ("bmi", "group", "total"),
    [
        (18.49, "low", [11.0, 16.0]),
        (18.5, "normal", [8.0, 14.0]),
        (23.99, "normal", [8.0, 14.0]),
        (24.0, "overweight", [7.0, 11.0]),
        (27.99, "overweight", [7.0, 11.0]),
        (28.0, "obese", [5.0, 9.0]),
    ],
)
def test_the_weight_section_follows_her_bmi_group(
    bmi: float, group: str, total: list[float]
) -> None:
    p = plan(her("20+0", bmi=bmi))
    assert p["weight"]["covered"] is True
    assert p["weight"]["group"] == group
    assert p["weight"]["total_kg"] == total
    assert items(p, "nutrition")["bmi_group"]["inputs"]["bmi_group"] == group


@pytest.mark.parametrize(
    ("bmi", "review"), [(18.49, True), (18.5, False), (27.99, False), (28.0, True)]
)
def test_underweight_and_obese_mothers_get_a_nutrition_assessment(bmi: float, review: bool) -> None:
    assert ("nutritionist_review" in items(plan(her(bmi=bmi)), "follow_ups")) is review


def test_the_weekly_target_starts_at_14_0_and_the_band_today_is_the_engines() -> None:
    p = plan(her("10+0", bmi=21.0))
    weekly = items(p, "weight")["weight_weekly"]
    assert weekly["ga_from"] == ga("14+0")
    assert p["weight"]["weekly_kg"] == [0.26, 0.48]
    band = gwg.band(WST, gwg.group(WST, 21.0), ga("10+0"))
    assert p["weight"]["band_today_kg"] == [round(band.low_kg, 2), round(band.high_kg, 2)]


def test_a_gain_outside_the_band_asks_for_a_review_within_it_does_not() -> None:
    above = plan(her(bmi=21.0, gain=9.0, status="above"))
    within = plan(her(bmi=21.0, gain=3.0, status="within"))
    assert items(above, "weight")["weight_review"]["for_butler"] is True
    assert "weight_review" not in items(within, "weight")


def test_no_bmi_says_so_and_asks_for_height_and_weight() -> None:
    p = plan(her(bmi=None))
    assert p["weight"]["covered"] is False
    assert "weight_unknown" in items(p, "weight")


# GDM: energy by BMI (24.99 / 25.0), monitoring, consultation -----------------------------------


@pytest.mark.parametrize(
    ("bmi", "kcal"),
    [(18.49, "2000-2300"), (18.5, "1800-2100"), (24.99, "1800-2100"), (25.0, "1500-1800")],
)
def test_gdm_sets_energy_by_pre_pregnancy_bmi(bmi: float, kcal: str) -> None:
    p = plan(her("26+0", bmi=bmi, flags={"gdm": None}))
    energy = items(p, "nutrition")["energy_second"]
    assert kcal in energy["title"]
    assert "gdm.energy_by_bmi" in energy["rule"]
    assert energy["inputs"]["bmi"] == round(bmi, 2)
    assert "175 g" in energy["detail"]


def test_gdm_brings_glucose_monitoring_and_the_nutritionist_without_it_neither() -> None:
    gdm = items(plan(her("26+0", flags={"gdm": None})), "follow_ups")
    assert gdm["glucose_monitoring"]["repeat_days"] == 7
    assert gdm["glucose_monitoring"]["for_butler"] is True
    assert gdm["nutritionist_consultation"]["due_date"] == "2026-12-09"
    plain = items(plan(her("26+0")), "follow_ups")
    assert "glucose_monitoring" not in plain
    assert "+250 kcal" in items(plan(her("26+0")), "nutrition")["energy_second"]["title"]


def test_overt_diabetes_leaves_glucose_to_the_doctor() -> None:
    p = plan(her("26+0", flags={"overt_diabetes": None}))
    assert "overt_diabetes" in items(p, "nutrition")
    assert "glucose_monitoring" in items(p, "follow_ups")


def test_gdm_without_a_bmi_leaves_energy_to_the_nutritionist() -> None:
    energy = items(plan(her("26+0", bmi=None, flags={"gdm": None})), "nutrition")["energy_second"]
    assert "set by the nutritionist" in energy["title"]


# Anaemia: graded ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "repeat_days", "doctor"),
    [("mild", 14, False), ("moderate", 14, False), ("severe", 7, True), (None, 7, True)],
)
def test_anaemia_brings_iron_advice_and_a_repeat_hb(
    grade: str | None, repeat_days: int, doctor: bool
) -> None:
    got = items(plan(her("24+0", flags={"anaemia": grade})), "follow_ups")
    assert got["iron_advice"]["inputs"]["anaemia_grade"] == grade
    assert (
        got["repeat_hb"]["due_date"]
        == date.fromordinal(TODAY.toordinal() + repeat_days).isoformat()
    )
    assert ("doctor_anaemia" in got) is doctor


def test_without_the_anaemia_flag_there_is_no_iron_item() -> None:
    assert "iron_advice" not in items(plan(her("24+0")), "follow_ups")


# Twins ----------------------------------------------------------------------------------------


def test_twins_are_not_advised_a_singleton_range() -> None:
    p = plan(her("20+0", bmi=21.0, twins=True))
    assert p["weight"]["covered"] is False
    assert "singleton" in p["weight"]["reason"]
    assert "set by the nutritionist" in items(p, "nutrition")["energy_second"]["title"]
    assert "nutritionist_review" in items(p, "follow_ups")


# Fetal monitoring: 28+0, 32+0 high risk, 37+0 ---------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "high"), [("green", False), ("yellow", False), ("orange", True), ("red", True)]
)
def test_nst_from_32_weeks_only_when_high_risk(risk: str, high: bool) -> None:
    got = items(plan(her("30+0", risk=risk)), "fetal_monitoring")
    assert ("nst_high_risk" in got) is high
    assert got["nst_weekly"]["ga_from"] == ga("37+0")
    assert got["fetal_movement_counting"]["ga_from"] == ga("28+0")


def test_a_high_risk_flag_brings_the_early_nst() -> None:
    got = items(plan(her("30+0", flags={"gestational_hypertension": None})), "fetal_monitoring")
    assert "nst_high_risk" in got


def test_fetal_movement_counting_is_due_from_28_0_not_at_27_6() -> None:
    sections = plan(her("20+0"))
    due = {d.item["code"] for d in domain.items_due(sections, ga_days=ga("27+6"), today=TODAY)}
    assert "fetal_movement_counting" not in due
    due = {d.item["code"] for d in domain.items_due(sections, ga_days=ga("28+0"), today=TODAY)}
    assert "fetal_movement_counting" in due


# Items due: dates and the horizon ---------------------------------------------------------------


def test_a_dated_item_is_due_within_the_horizon_and_stays_due_when_overdue() -> None:
    sections = plan(her("24+0", flags={"anaemia": "mild"}))  # repeat Hb on day 14

    def due_on(day: date) -> set[str]:
        return {d.item["code"] for d in domain.items_due(sections, ga_days=ga("24+0"), today=day)}

    assert "repeat_hb" not in due_on(date(2026, 12, 8))  # 8 days before
    assert "repeat_hb" in due_on(date(2026, 12, 9))  # 7 days before: the horizon
    assert "repeat_hb" in due_on(date(2026, 12, 30))  # overdue
    assert "energy_second" not in due_on(TODAY)  # not the butler's


# Changes: a copy, who changed it, refused when wrong -------------------------------------------


def test_a_change_is_a_copy_naming_who_changed_it() -> None:
    sections = plan(her("26+0"))
    before = json.dumps(sections, sort_keys=True)
    out = domain.apply_changes(
        sections,
        [
            ItemChange("nutrition", "energy_second", fields={"title": "Energy: 2000 kcal"}),
            ItemChange(
                "follow_ups",
                "walk_daily",
                fields={"title": "Walk 30 min", "for_butler": True, "ga_from": 182, "ga_to": 200},
            ),
            ItemChange("fetal_monitoring", "nst_weekly", remove=True),
        ],
        by="营养师 王 (nutritionist)",
    )
    assert json.dumps(sections, sort_keys=True) == before
    got = items(out, "nutrition")["energy_second"]
    assert got["title"] == "Energy: 2000 kcal"
    assert got["changed_by"] == "营养师 王 (nutritionist)"
    assert got["rule"].startswith("dri.energy_extra")  # the rule it came from is kept
    assert items(out, "follow_ups")["walk_daily"]["rule"] == "added by a clinician"
    assert "nst_weekly" not in items(out, "fetal_monitoring")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (ItemChange("diet", "x", fields={"title": "t"}), "section"),
        (ItemChange("nutrition", "nope", remove=True), "no item"),
        (ItemChange("follow_ups", "new_one", fields={"detail": "no title"}), "title"),
        (
            ItemChange("follow_ups", "back", fields={"title": "t", "ga_from": 200, "ga_to": 199}),
            "ga_from",
        ),
    ],
)
def test_a_wrong_change_is_refused_naming_why(change: ItemChange, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        domain.apply_changes(plan(her()), [change], by="x")


# The tables are checked when they load --------------------------------------------------------


def test_a_nutrition_table_whose_gdm_bands_do_not_meet_is_refused() -> None:
    raw = json.loads(domain.NUTRITION_FILE.read_text(encoding="utf-8"))
    raw["gdm"]["energy_by_bmi"][1]["bmi_from"] = 19.0
    with pytest.raises(ValueError, match="do not meet"):
        domain.load_nutrition(raw)


def test_a_fetal_item_running_backwards_is_refused() -> None:
    raw = json.loads(domain.FETAL_MONITORING_FILE.read_text(encoding="utf-8"))
    raw["items"][0]["ga_to"] = "20+0"
    with pytest.raises(ValueError, match="ga_from"):
        domain.load_fetal(raw)


def test_the_inputs_name_the_tables_and_her_data() -> None:
    h = her("26+0", bmi=24.0, flags={"gdm": None})
    got = domain.inputs(h, TABLES)
    assert got["nutrition_table"].startswith("cn-dris-2023@")
    assert got["fetal_monitoring_table"].startswith("csog-2018")
    assert got["gwg_table"] == "wst-801-2022"
    assert got["bmi_group"] == "overweight"
    assert got["flags"] == {"gdm": None}


# One change names an item once -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        [
            ItemChange("fetal_monitoring", "nst_weekly", remove=True),
            ItemChange("fetal_monitoring", "nst_weekly", fields={"title": "NST weekly"}),
        ],
        [
            ItemChange("follow_ups", "walk_daily", fields={"title": "Walk"}),
            ItemChange("follow_ups", "walk_daily", fields={"title": "Swim"}),
        ],
        [ItemChange("fetal_monitoring", "nst_weekly", remove=True, fields={"title": "x"})],
    ],
)
def test_an_item_named_twice_or_removed_and_set_is_refused_naming_it(
    changes: list[ItemChange],
) -> None:
    with pytest.raises(ValueError, match=r"(nst_weekly|walk_daily)"):
        domain.apply_changes(plan(her("34+0", risk="orange")), changes, by="x")


# Regeneration keeps what a person wrote ----------------------------------------------------------


def test_regeneration_refreshes_the_tables_items_and_keeps_the_clinicians() -> None:
    before = plan(her("26+0"))
    before["nutrition"]["assessment"] = {"diet": "rice", "by": "王 (nutritionist)"}
    edited = domain.apply_changes(
        before,
        [
            ItemChange("nutrition", "energy_second", fields={"title": "Energy: 2000 kcal"}),
            ItemChange("follow_ups", "walk_daily", fields={"title": "Walk 30 min", "ga_from": 0}),
            ItemChange("nutrition", "iodine_second", remove=True),
        ],
        by="Dr 李 (doctor)",
    )
    # GDM is flagged afterwards: the tables now give the diabetes energy and glucose monitoring.
    fresh = plan(her("27+0", bmi=21.0, flags={"gdm": None, "glucose_monitoring": None}))
    out, kept = domain.regenerate(edited, fresh, from_version=3)

    energy = items(out, "nutrition")["energy_second"]
    assert energy["title"] == "Energy: 2000 kcal"  # the clinician's item stands
    assert energy["changed_by"] == "Dr 李 (doctor)"
    assert "gdm" in energy["tables_now"]["rule"]  # and says what the tables say now
    assert items(out, "follow_ups")["walk_daily"]["title"] == "Walk 30 min"
    assert "glucose_monitoring" in items(out, "follow_ups")  # the new flag's item comes
    assert "iodine_second" not in items(out, "nutrition")  # her removal stands
    assert items(out, "nutrition")["energy_third"]["reason"] == "diabetes"  # generated: fresh
    assert out["nutrition"]["assessment"]["diet"] == "rice"
    assert out["nutrition"]["assessment"]["kept_from_version"] == 3
    assert set(kept) == {"nutrition.energy_second", "follow_ups.walk_daily"}
    assert items(edited, "nutrition")["energy_second"].get("tables_now") is None  # a copy


def test_a_removed_item_comes_back_when_her_data_gives_it_a_new_rule() -> None:
    before = plan(her("26+0", flags={"anaemia": "mild"}))
    edited = domain.apply_changes(
        before, [ItemChange("follow_ups", "iron_advice", remove=True)], by="Dr 李 (doctor)"
    )
    same, _ = domain.regenerate(edited, plan(her("26+1", flags={"anaemia": "mild"})), 2)
    assert "iron_advice" not in items(same, "follow_ups")
    worse, _ = domain.regenerate(edited, plan(her("26+1", flags={"anaemia": "moderate"})), 2)
    assert items(worse, "follow_ups")["iron_advice"]["reason"] == "anaemia, moderate"


# Staleness: what changed in her data after the plan in force was made ----------------------------


def test_a_plan_is_stale_when_a_flag_appears_changes_grade_or_goes() -> None:
    made = {"flags": {"anaemia": "mild", "glucose_monitoring": None}, "risk_grade": "yellow"}
    assert (
        domain.stale_reasons(made, {"anaemia": "mild", "glucose_monitoring": None}, "yellow") == []
    )
    got = domain.stale_reasons(made, {"anaemia": "moderate", "gdm": None}, "orange")
    assert "GDM flagged after the plan was made" in got
    assert "Anaemia now moderate (the plan has mild)" in got
    assert "Glucose monitoring no longer flagged" in got
    assert "Risk grade now orange (the plan has yellow)" in got


# What her butler reads: no diagnosis, nothing from a reason that is gone (probe F1, F3, F4, F8)


BUTLER_DIAGNOSES = ("anaemia", "diabetes", "gdm", "twin", "high risk", "above", "below")


@pytest.mark.parametrize(
    "h",
    [
        her("26+0", flags={"anaemia": "severe"}),
        her("26+0", flags={"gdm": None, "glucose_monitoring": None}),
        her("26+0", flags={"overt_diabetes": None}),
        her("33+0", risk="orange", twins=True, bmi=None),
        her("26+0", bmi=31.0, gain=12.0, status="above"),
    ],
)
def test_no_butler_item_title_names_a_diagnosis_the_reason_is_apart(h: Her) -> None:
    sections = plan(h)
    butler = [i for s in domain.SECTIONS for i in sections[s]["items"] if i["for_butler"]]
    assert butler
    for item in butler:
        assert not any(d in item["title"].lower() for d in BUTLER_DIAGNOSES), item["title"]
    reasons = {i["code"]: i.get("reason") for s in domain.SECTIONS for i in sections[s]["items"]}
    if "anaemia" in h.flags:
        assert reasons["iron_advice"] == "anaemia, severe"
        assert reasons["doctor_anaemia"] == "severe anaemia"


def test_items_of_a_flag_no_longer_standing_are_not_due() -> None:
    sections = plan(her("26+0", flags={"anaemia": "moderate", "gdm": None}))

    def due(standing: set[str] | None) -> set[str]:
        return {
            d.item["code"]
            for d in domain.items_due(
                sections,
                ga_days=ga("26+0"),
                today=TODAY,
                horizon_days=30,
                standing_flags=standing,
            )
        }

    assert {"iron_advice", "repeat_hb", "glucose_monitoring"} <= due(None)
    assert {"iron_advice", "repeat_hb", "glucose_monitoring"} <= due({"anaemia", "gdm"})
    gone = due({"gdm"})
    assert not gone & {"iron_advice", "repeat_hb"}
    assert "glucose_monitoring" in gone
    # An item of an older version (no from_flags) is read from its rule.
    legacy = json.loads(json.dumps(sections))
    for item in legacy["follow_ups"]["items"]:
        item.pop("from_flags", None)
    assert domain.item_flags(items(legacy, "follow_ups")["iron_advice"]) == ["anaemia"]


def test_a_satisfied_item_is_not_due_and_stays_satisfied_on_regeneration() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    before = plan(her("26+0", flags={"gdm": None}))
    done = domain.satisfy(
        before, domain.NUTRITIONIST_ITEMS, by="营养师 (nutritionist)", at=at, what="assessment"
    )
    assert "satisfied" not in items(before, "follow_ups")["nutritionist_consultation"]  # a copy
    due = domain.items_due(done, ga_days=ga("26+0"), today=TODAY)
    assert "nutritionist_consultation" not in {d.item["code"] for d in due}
    again, _ = domain.regenerate(done, plan(her("26+1", flags={"gdm": None})), 2)
    assert items(again, "follow_ups")["nutritionist_consultation"]["satisfied"]["what"] == (
        "assessment"
    )
    # Overt diabetes is another reason: the referral is open again (the safer reading).
    worse, _ = domain.regenerate(done, plan(her("26+1", flags={"overt_diabetes": None})), 2)
    assert "satisfied" not in items(worse, "follow_ups")["nutritionist_consultation"]


@pytest.mark.parametrize(
    ("text", "source", "note"),
    [
        (
            "CMA 2022 (verify: from memory, not the printed text)",
            "CMA 2022",
            "verify: from memory, not the printed text",
        ),
        (
            "DRIs 2023 (verify); 膳食指南 2022",
            "DRIs 2023; 膳食指南 2022",
            "verify against the printed source",
        ),
        (
            "CSOG 2018 (from 28 weeks); the 10-in-2 threshold: verify against the sheet",
            "CSOG 2018 (from 28 weeks)",
            "the 10-in-2 threshold: verify against the sheet",
        ),
        ("WHO 2012", "WHO 2012", None),
    ],
)
def test_a_sources_verify_caveat_is_kept_apart(text: str, source: str, note: str | None) -> None:
    assert domain.split_source(text) == (source, note)


def test_every_generated_source_cites_without_a_caveat() -> None:
    sections = plan(her("30+0", flags={"gdm": None, "anaemia": "mild"}, risk="orange"))
    every = [i for s in domain.SECTIONS for i in sections[s]["items"]]
    assert all("verify" not in i["source"].lower() for i in every)
    assert any(i["source_verified"] is False and i["source_note"] for i in every)


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (
            ItemChange("follow_ups", "x", fields={"title": "X", "ga_from": 200, "ga_to": 100}),
            "changes.1.set.ga_from",
        ),
        (
            ItemChange("fetal_monitoring", "fetal_movement_counting", fields={"ga_to": 10}),
            "changes.1.set.ga_to",
        ),
        (ItemChange("follow_ups", "nope", remove=True), "changes.1.code"),
        (ItemChange("follow_ups", "y", fields={"detail": "no title"}), "changes.1.set.title"),
    ],
)
def test_a_wrong_change_names_its_field(change: ItemChange, pointer: str) -> None:
    walk = ItemChange("follow_ups", "walk", fields={"title": "Walk", "ga_from": 100})
    with pytest.raises(domain.ChangeError) as raised:
        domain.apply_changes(plan(her()), [walk, change], by="Dr 李 (doctor)")
    assert raised.value.pointer == pointer
