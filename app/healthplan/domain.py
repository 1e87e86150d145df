"""Her health-management plan as pure rules: generated from the tables and her data, changed by
a clinician item by item, and read by her butler for what is due.

The tables are data with their sources: ``nutrition.json`` (the Chinese DRIs, 2023 edition, and
the GDM and anaemia adjustments) and ``fetal_monitoring.json`` (CSOG 2018). The weight section
comes from the weight-gain table in force (``app.clinical.gwg``: WS/T 801—2022 by default).

A plan has four sections, each a list of items: ``nutrition``, ``weight``, ``fetal_monitoring``
and ``follow_ups``. An item says what to do, when (a range of gestational age in days, or a due
date), the rule that put it there with its inputs, and its source; a clinician may change any
item, and the changed item says who changed it. Nothing here decides for a clinician: a plan is
a draft until a doctor or the nutritionist signs it.

Trimesters (``app.mothers.domain.trimester``): first to 13+6 (day 97), second 14+0-27+6 (days
98-195), third from 28+0 (day 196).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from app.clinical import gwg
from app.mothers.domain import (
    SECOND_TRIMESTER_DAY,
    THIRD_TRIMESTER_DAY,
    Trimester,
    format_gestational_age,
    trimester,
)

NUTRITION_FILE = Path(__file__).with_name("nutrition.json")
FETAL_MONITORING_FILE = Path(__file__).with_name("fetal_monitoring.json")
SECTIONS = ("nutrition", "weight", "fetal_monitoring", "follow_ups")
LAST_DAY = 41 * 7 + 6  # 41+6: the plan's items run to the end of the outpatient care plan
TRIMESTER_DAYS = {
    Trimester.FIRST: (0, SECOND_TRIMESTER_DAY - 1),
    Trimester.SECOND: (SECOND_TRIMESTER_DAY, THIRD_TRIMESTER_DAY - 1),
    Trimester.THIRD: (THIRD_TRIMESTER_DAY, LAST_DAY),
}
ANAEMIA_GRADES = ("mild", "moderate", "severe")
ITEM_KEYS = frozenset(
    {
        "code",
        "title",
        "detail",
        "ga_from",
        "ga_to",
        "due_date",
        "repeat_days",
        "for_butler",
        "rule",
        "source",
        "inputs",
        "changed_by",
        "reason",
        "from_flags",
        "source_verified",
        "source_note",
        "satisfied",
    }
)
# What a butler reads is an action, never a diagnosis (docs/clinical-rules.md: "Task and
# worklist titles say what to do, never a result or a diagnosis"): an item's title is
# neutral, and why the tables put it there ("diabetes", "anaemia, moderate") is its
# ``reason``, which the clinician's view of the plan shows and the butler's due list does not.
# (The nutrition section's energy items are the nutritionist's, never on the butler's list:
# their titles keep "(diabetes)" for the clinician.)
# ``from_flags``: the rules' flags that justify the item (any one standing keeps it due);
# ``source_verified: false`` with ``source_note``: the table's own caveat about its source
# ("verify against the printed text"), kept apart from the source a signed plan cites.
NUTRITIONIST_ITEMS = frozenset({"nutritionist_consultation", "nutritionist_review"})
DIABETES_FLAGS = ("gdm", "overt_diabetes")


class ChangeError(ValueError):
    """A plan change that cannot be made, naming where: ``index`` (the change in the list)
    and ``field`` (``section``, ``code``, ``set.ga_from`` …) for the 422's pointer."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.index, self.field = index, field

    @property
    def pointer(self) -> str:
        where = "changes" if self.index is None else f"changes.{self.index}"
        return f"{where}.{self.field}" if self.field else where


_VERIFY_PAREN = re.compile(r"\s*\(\s*(verify\b[^)]*)\)", re.IGNORECASE)


def split_source(text: str) -> tuple[str, str | None]:
    """A table's source without its "verify" caveats, and the caveats apart: "X (verify: from
    memory)" is ("X", "verify: from memory"); a ";"-clause that says verify is a caveat too.
    A signed clinical plan cites its source; whether a dietitian has checked it against the
    printed text is for the clinician's view (``source_verified``), not inside the citation."""
    notes = [m.strip() for m in _VERIFY_PAREN.findall(text)]
    clean = _VERIFY_PAREN.sub("", text)
    parts = [p.strip() for p in clean.split(";")]
    notes += [p for p in parts if re.search(r"\bverify\b", p, re.IGNORECASE)]
    kept = [p for p in parts if p and not re.search(r"\bverify\b", p, re.IGNORECASE)]
    notes = [
        "verify against the printed source" if n.lower() == "verify" else n for n in notes if n
    ]
    return "; ".join(kept) or text.strip(), "; ".join(notes) or None


def _ga(text: str) -> int:
    weeks, _, days = text.partition("+")
    return int(weeks) * 7 + int(days or 0)


# The tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnergyBand:
    bmi_from: float | None
    bmi_below: float | None
    kcal_per_kg: tuple[float, float]
    kcal_per_day: tuple[float, float]

    def contains(self, bmi: float) -> bool:
        return (self.bmi_from is None or bmi >= self.bmi_from) and (
            self.bmi_below is None or bmi < self.bmi_below
        )

    @property
    def bmi_range(self) -> str:
        if self.bmi_from is None:
            return f"BMI < {self.bmi_below}"
        if self.bmi_below is None:
            return f"BMI ≥ {self.bmi_from}"
        return f"{self.bmi_from} ≤ BMI < {self.bmi_below}"


@dataclass(frozen=True, slots=True)
class NutritionTable:
    code: str
    version: str
    edition: str
    raw: Mapping[str, Any]
    gdm_energy: tuple[EnergyBand, ...]


@dataclass(frozen=True, slots=True)
class FetalItem:
    code: str
    title: str
    detail: str
    ga_from: int
    ga_to: int
    when: str  # all | high_risk
    repeat_days: int | None
    for_butler: bool
    source: str


@dataclass(frozen=True, slots=True)
class FetalTable:
    code: str
    version: str
    source: str
    note: str
    high_risk_grades: frozenset[str]
    high_risk_flags: frozenset[str]
    items: tuple[FetalItem, ...]


@dataclass(frozen=True, slots=True)
class PlanTables:
    nutrition: NutritionTable
    fetal: FetalTable


def load_nutrition(raw: Mapping[str, Any]) -> NutritionTable:
    """The nutrition table, checked: every trimester, every grade, energy bands that tile."""
    for t in Trimester:
        row = raw["trimesters"][t.value]
        int(row["energy_extra_kcal"]), int(row["protein_extra_g"])
    for m in raw["micronutrients"]:
        if set(m["rni"]) != {t.value for t in Trimester}:
            raise ValueError(f"micronutrient {m['code']}: an RNI for each trimester")
    for g in ("low", "normal", "overweight", "obese"):
        str(raw["bmi_groups"][g]["note"])
    if set(raw["anaemia"]["grades"]) != set(ANAEMIA_GRADES):
        raise ValueError(f"anaemia grades are {', '.join(ANAEMIA_GRADES)}")
    bands = tuple(
        EnergyBand(
            bmi_from=None if b.get("bmi_from") is None else float(b["bmi_from"]),
            bmi_below=None if b.get("bmi_below") is None else float(b["bmi_below"]),
            kcal_per_kg=(float(b["kcal_per_kg"][0]), float(b["kcal_per_kg"][1])),
            kcal_per_day=(float(b["kcal_per_day"][0]), float(b["kcal_per_day"][1])),
        )
        for b in raw["gdm"]["energy_by_bmi"]
    )
    if not bands or bands[0].bmi_from is not None or bands[-1].bmi_below is not None:
        raise ValueError("gdm.energy_by_bmi: the first band is open below, the last open above")
    for before, after in pairwise(bands):
        if before.bmi_below != after.bmi_from:
            raise ValueError("gdm.energy_by_bmi: the bands do not meet")
    Trimester(raw["gdm"]["energy_applies_from"])
    return NutritionTable(
        code=str(raw["code"]),
        version=str(raw["version"]),
        edition=str(raw["edition"]),
        raw=raw,
        gdm_energy=bands,
    )


def load_fetal(raw: Mapping[str, Any]) -> FetalTable:
    items = []
    for i in raw["items"]:
        item = FetalItem(
            code=str(i["code"]),
            title=str(i["title"]),
            detail=str(i["detail"]),
            ga_from=_ga(str(i["ga_from"])),
            ga_to=_ga(str(i["ga_to"])),
            when=str(i["when"]),
            repeat_days=int(i["repeat_days"]) if i.get("repeat_days") else None,
            for_butler=bool(i.get("for_butler", False)),
            source=str(i["source"]),
        )
        if item.when not in ("all", "high_risk"):
            raise ValueError(f"{item.code}: 'when' is all or high_risk")
        if not 0 <= item.ga_from <= item.ga_to:
            raise ValueError(f"{item.code}: ga_from <= ga_to")
        items.append(item)
    return FetalTable(
        code=str(raw["code"]),
        version=str(raw["version"]),
        source=str(raw["source"]),
        note=str(raw.get("note", "")),
        high_risk_grades=frozenset(raw["high_risk"]["risk_grades"]),
        high_risk_flags=frozenset(raw["high_risk"]["flags"]),
        items=tuple(items),
    )


def _read(given: str | None, built_in: Path) -> tuple[Path, Any]:
    source = Path(given) if given else built_in
    return source, json.loads(source.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def plan_tables(nutrition_path: str | None = None, fetal_path: str | None = None) -> PlanTables:
    """The built-in tables or the hospital's own (HEALTH_PLAN_NUTRITION_FILE,
    HEALTH_PLAN_FETAL_MONITORING_FILE); a file that does not hold together is refused."""
    source, raw = _read(nutrition_path, NUTRITION_FILE)
    try:
        nutrition = load_nutrition(raw)
        source, raw = _read(fetal_path, FETAL_MONITORING_FILE)
        fetal = load_fetal(raw)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"health-plan table {source.name} is invalid: {exc}") from exc
    return PlanTables(nutrition=nutrition, fetal=fetal)


# Her data ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Weight:
    """Her weight-gain position from the table in force (``clinical.service.weight_gain``)."""

    table: gwg.GwgTable
    group: gwg.BmiGroup | None = None
    not_covered: str | None = None  # why the table gives her no range (twins, no BMI)
    gain_kg: float | None = None
    status: str | None = None  # below | within | above, on her latest reading


@dataclass(frozen=True, slots=True)
class Her:
    """What the plan is generated from; every field lands in the version's inputs."""

    today: date
    ga_days: int
    risk_grade: str
    bmi: float | None = None
    weight: Weight | None = None
    flags: Mapping[str, str | None] = field(default_factory=dict)  # code -> grade
    twins: bool = False

    def inputs(self) -> dict[str, Any]:
        w = self.weight
        return {
            "today": self.today.isoformat(),
            "ga_days": self.ga_days,
            "ga": format_gestational_age(self.ga_days),
            "risk_grade": self.risk_grade,
            "bmi": None if self.bmi is None else round(self.bmi, 2),
            "bmi_group": w.group.code if w and w.group else None,
            "gwg_table": w.table.code if w else None,
            "gain_kg": w.gain_kg if w else None,
            "gwg_status": w.status if w else None,
            "flags": dict(sorted(self.flags.items())),
            "twins": self.twins,
        }


def is_high_risk(her: Her, fetal: FetalTable) -> bool:
    return her.risk_grade in fetal.high_risk_grades or bool(fetal.high_risk_flags & set(her.flags))


def diabetes(flags: Mapping[str, str | None]) -> str | None:
    """overt_diabetes outranks gdm; None when neither flag is open."""
    if "overt_diabetes" in flags:
        return "overt_diabetes"
    if "gdm" in flags:
        return "gdm"
    return None


def gdm_energy(table: NutritionTable, bmi: float) -> EnergyBand:
    """The GDM energy band for her pre-pregnancy BMI, unrounded (24.99 → the middle band)."""
    for band in table.gdm_energy:
        if band.contains(bmi):
            return band
    raise AssertionError("the bands tile the BMI line")  # pragma: no cover - checked at load


# Items ---------------------------------------------------------------------------------------


def _item(
    code: str,
    title: str,
    detail: str,
    *,
    rule: str,
    source: str,
    ga_from: int | None = None,
    ga_to: int | None = None,
    due_date: date | None = None,
    repeat_days: int | None = None,
    for_butler: bool = False,
    inputs: Mapping[str, Any] | None = None,
    reason: str | None = None,
    from_flags: Sequence[str] = (),
) -> dict[str, Any]:
    cited, caveat = split_source(source)
    item: dict[str, Any] = {
        "code": code,
        "title": title,
        "detail": detail,
        "ga_from": ga_from,
        "ga_to": ga_to,
        "due_date": due_date.isoformat() if due_date else None,
        "repeat_days": repeat_days,
        "for_butler": for_butler,
        "rule": rule,
        "source": cited,
        "source_verified": caveat is None,
        "source_note": caveat,
        "inputs": dict(inputs or {}),
        "changed_by": None,
    }
    if reason:
        item["reason"] = reason
    if from_flags:
        item["from_flags"] = list(from_flags)
    return item


def _trimesters_from(ga_days: int) -> list[Trimester]:
    """Her trimester now and the ones after it: a plan signed at 20 weeks still holds at 30."""
    now = trimester(ga_days)
    return [t for t in Trimester if TRIMESTER_DAYS[t][1] >= TRIMESTER_DAYS[now][0]]


def nutrition_items(her: Her, table: NutritionTable) -> list[dict[str, Any]]:
    """Energy and protein by trimester (DRIs, or the GDM band), micronutrients, BMI group."""
    raw = table.raw
    items: list[dict[str, Any]] = []
    sugar = diabetes(her.flags)
    ref_energy = raw["reference_energy_kcal"]
    ref_protein = raw["protein_reference_g"]
    for t in _trimesters_from(her.ga_days):
        lo, hi = TRIMESTER_DAYS[t]
        row = raw["trimesters"][t.value]
        gdm_from = Trimester(raw["gdm"]["energy_applies_from"])
        if sugar and list(Trimester).index(t) >= list(Trimester).index(gdm_from):
            if her.bmi is not None:
                band = gdm_energy(table, her.bmi)
                kmin, kmax = band.kcal_per_day
                items.append(
                    _item(
                        f"energy_{t.value}",
                        f"能量 Energy, {row['label']}: {kmin:.0f}-{kmax:.0f} kcal a day (diabetes)",
                        f"{band.kcal_per_kg[0]:.0f}-{band.kcal_per_kg[1]:.0f} kcal per kg a day "
                        f"for {band.bmi_range} before pregnancy. {raw['gdm']['carbohydrate']} "
                        f"{raw['gdm']['meals']}",
                        rule=f"gdm.energy_by_bmi: {sugar}, BMI {her.bmi:.2f} in {band.bmi_range}",
                        source=raw["gdm"]["source"],
                        inputs={"diabetes": sugar, "bmi": round(her.bmi, 2)},
                        reason="diabetes",
                        from_flags=DIABETES_FLAGS,
                        ga_from=lo,
                        ga_to=hi,
                    )
                )
            else:
                items.append(
                    _item(
                        f"energy_{t.value}",
                        f"能量 Energy, {row['label']}: set by the nutritionist",
                        "Her pre-pregnancy BMI is not recorded, so the GDM energy band cannot be "
                        f"chosen; the nutritionist sets it. {raw['gdm']['carbohydrate']}",
                        rule=f"gdm.energy_by_bmi: {sugar}, BMI unknown",
                        source=raw["gdm"]["source"],
                        inputs={"diabetes": sugar, "bmi": None},
                        reason="diabetes",
                        from_flags=DIABETES_FLAGS,
                        ga_from=lo,
                        ga_to=hi,
                    )
                )
        elif sugar and t is Trimester.FIRST:
            minimum = raw["gdm"]["first_trimester_min_kcal"]
            items.append(
                _item(
                    "energy_first",
                    f"能量 Energy, {row['label']}: not below {minimum} kcal a day (diabetes)",
                    f"{raw['gdm']['carbohydrate']} {raw['gdm']['meals']}",
                    rule=f"gdm.first_trimester_min_kcal: {sugar}",
                    source=raw["gdm"]["source"],
                    inputs={"diabetes": sugar},
                    reason="diabetes",
                    from_flags=DIABETES_FLAGS,
                    ga_from=lo,
                    ga_to=hi,
                )
            )
        elif her.twins:
            items.append(
                _item(
                    f"energy_{t.value}",
                    f"能量 Energy, {row['label']}: set by the nutritionist",
                    raw["twins"]["note"],
                    rule="twins: the DRI increments are for a singleton pregnancy",
                    source=raw["twins"]["source"],
                    inputs={"twins": True},
                    reason="twin pregnancy",
                    ga_from=lo,
                    ga_to=hi,
                )
            )
        else:
            extra = int(row["energy_extra_kcal"])
            items.append(
                _item(
                    f"energy_{t.value}",
                    f"能量 Energy, {row['label']}: +{extra} kcal a day over her usual needs",
                    f"Reference: {ref_energy['value']} kcal a day ({ref_energy['what']}), so "
                    f"about {ref_energy['value'] + extra} kcal at light activity.",
                    rule=f"dri.energy_extra[{t.value}]",
                    source=table.edition,
                    inputs={"trimester": t.value},
                    ga_from=lo,
                    ga_to=hi,
                )
            )
        extra_p = int(row["protein_extra_g"])
        items.append(
            _item(
                f"protein_{t.value}",
                f"蛋白质 Protein, {row['label']}: {ref_protein['value'] + extra_p} g a day "
                f"(+{extra_p} g)",
                "Half of it from fish, poultry, eggs, milk, lean meat and soy."
                + (f" {raw['gdm']['protein']}" if sugar else ""),
                rule=f"dri.protein_extra[{t.value}]",
                source=table.edition,
                inputs={"trimester": t.value},
                ga_from=lo,
                ga_to=hi,
            )
        )
        for m in raw["micronutrients"]:
            items.append(
                _item(
                    f"{m['code']}_{t.value}",
                    f"{m['name']}, {row['label']}: {m['rni'][t.value]} {m['unit']}",
                    str(m["advice"]),
                    rule=f"dri.rni[{m['code']}][{t.value}]",
                    source=str(m["source"]),
                    inputs={"trimester": t.value},
                    ga_from=lo,
                    ga_to=hi,
                )
            )
    if her.weight is not None and her.weight.group is not None:
        g = her.weight.group
        note = raw["bmi_groups"].get(g.code)
        if note is not None:
            items.append(
                _item(
                    "bmi_group",
                    f"孕前BMI {g.label_zh} {g.label_en} ({g.bmi_range})",
                    str(note["note"]),
                    rule=f"bmi_groups[{g.code}]: BMI {her.bmi:.2f}"
                    if her.bmi is not None
                    else f"bmi_groups[{g.code}]",
                    source=str(raw["bmi_groups_source"]),
                    inputs={"bmi_group": g.code, "gwg_table": her.weight.table.code},
                    ga_from=her.ga_days,
                    ga_to=LAST_DAY,
                )
            )
    if sugar == "overt_diabetes":
        items.append(
            _item(
                "overt_diabetes",
                "血糖 The doctor manages her glucose",
                str(raw["overt_diabetes"]["note"]),
                rule="flag overt_diabetes",
                source=str(raw["overt_diabetes"]["source"]),
                inputs={"diabetes": sugar},
                reason="diabetes in pregnancy (overt)",
                from_flags=("overt_diabetes",),
                ga_from=her.ga_days,
                ga_to=LAST_DAY,
            )
        )
    return items


def weight_items(her: Her) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Her target gain to term and per week (the table in force), or why there is none."""
    w = her.weight
    if w is None:
        return {"covered": False, "reason": "No weight-gain table was given."}, []
    summary: dict[str, Any] = {
        "table": w.table.code,
        "table_name": f"{w.table.name_zh} {w.table.name_en}",
        "source": w.table.source,
    }
    if her.twins:
        summary |= {"covered": False, "reason": w.table.multiples_note}
        return summary, [
            _item(
                "weight_twins",
                "体重 Weight: the nutritionist sets her targets",
                w.table.multiples_note,
                rule=f"{w.table.code}: twins not covered",
                source=w.table.source,
                inputs={"twins": True},
                reason="twin pregnancy",
                ga_from=her.ga_days,
                ga_to=LAST_DAY,
            )
        ]
    if w.group is None:
        reason = w.not_covered or "Her height and pre-pregnancy weight are not recorded (no BMI)."
        summary |= {"covered": False, "reason": reason}
        return summary, [
            _item(
                "weight_unknown",
                "体重 Weight: record her height and pre-pregnancy weight",
                reason,
                rule=f"{w.table.code}: no BMI group",
                source=w.table.source,
                ga_from=her.ga_days,
                ga_to=LAST_DAY,
                for_butler=True,
            )
        ]
    t = gwg.targets(w.table, w.group)
    today_band = gwg.band(w.table, w.group, her.ga_days)
    summary |= {
        "covered": True,
        "bmi": None if her.bmi is None else round(her.bmi, 2),
        "group": w.group.code,
        "group_label": f"{w.group.label_zh} {w.group.label_en}",
        "total_kg": [t.total.low_kg, t.total.high_kg],
        "first_trimester_kg": [t.first_trimester.low_kg, t.first_trimester.high_kg],
        "weekly_kg": [t.weekly.low_kg, t.weekly.high_kg],
        "weekly_mean_kg": t.weekly_mean_kg,
        "band_today_kg": [round(today_band.low_kg, 2), round(today_band.high_kg, 2)],
        "gain_kg": w.gain_kg,
        "status": w.status,
    }
    rule = f"{w.table.code}[{w.group.code}]" + (
        f": BMI {her.bmi:.2f} ({w.group.bmi_range})" if her.bmi is not None else ""
    )
    items = [
        _item(
            "weight_total",
            f"体重 Total gain to term: {t.total.low_kg:g}-{t.total.high_kg:g} kg",
            f"{w.group.label_zh} {w.group.label_en}, {w.group.bmi_range}.",
            rule=rule,
            source=w.table.source,
            inputs={"bmi_group": w.group.code},
            ga_from=her.ga_days,
            ga_to=LAST_DAY,
        ),
        _item(
            "weight_weekly",
            f"体重 From 14+0: {t.weekly.low_kg:g}-{t.weekly.high_kg:g} kg a week "
            f"(mean {t.weekly_mean_kg:g})",
            f"First trimester: {t.first_trimester.low_kg:g}-{t.first_trimester.high_kg:g} kg "
            "in all. She is weighed at every visit (the vitals station).",
            rule=rule,
            source=w.table.source,
            inputs={"bmi_group": w.group.code},
            ga_from=max(her.ga_days, SECOND_TRIMESTER_DAY),
            ga_to=LAST_DAY,
        ),
    ]
    if w.status in ("below", "above"):
        items.append(
            _item(
                "weight_review",
                "体重 Go over her diet and activity with her",
                f"Gained {w.gain_kg} kg by {format_gestational_age(her.ga_days)}; expected "
                f"{today_band.low_kg:.1f}-{today_band.high_kg:.1f} kg.",
                rule=f"{w.table.code}: status {w.status}",
                source=w.table.source,
                inputs={"gain_kg": w.gain_kg, "status": w.status},
                reason=f"weight gain {w.status} her band",
                ga_from=her.ga_days,
                ga_to=min(her.ga_days + 14, LAST_DAY),
                for_butler=True,
            )
        )
    return summary, items


def fetal_items(her: Her, fetal: FetalTable) -> list[dict[str, Any]]:
    """The fetal-monitoring items she has not passed yet; NST from 32+0 only when high risk."""
    high = is_high_risk(her, fetal)
    return [
        _item(
            i.code,
            i.title,
            i.detail,
            rule=f"{fetal.code}[{i.code}]"
            + (
                f": high risk ({her.risk_grade}, flags {sorted(her.flags)})"
                if i.when != "all"
                else ""
            ),
            source=i.source,
            ga_from=i.ga_from,
            ga_to=i.ga_to,
            repeat_days=i.repeat_days,
            for_butler=i.for_butler,
            inputs={"risk_grade": her.risk_grade, "high_risk": high},
            reason="high risk" if i.when != "all" else None,
        )
        for i in fetal.items
        if i.ga_to >= her.ga_days and (i.when == "all" or high)
    ]


def follow_up_items(her: Her, table: NutritionTable) -> list[dict[str, Any]]:
    """Glucose monitoring for diabetes, iron and a repeat Hb for anaemia, referrals."""
    raw = table.raw
    items: list[dict[str, Any]] = []
    sugar = diabetes(her.flags)
    if sugar or "glucose_monitoring" in her.flags:
        gdm = raw["gdm"]
        items.append(
            _item(
                "glucose_monitoring",
                "血糖监测 Glucose monitoring",
                f"{gdm['monitoring']} {gdm['glucose_targets']}",
                rule=f"flag {sugar or 'glucose_monitoring'}",
                source=gdm["source"],
                inputs={"diabetes": sugar},
                reason="diabetes" if sugar else "glucose monitoring ordered by the rules",
                from_flags=(*DIABETES_FLAGS, "glucose_monitoring"),
                ga_from=her.ga_days,
                ga_to=LAST_DAY,
                repeat_days=int(gdm["monitoring_repeat_days"]),
                for_butler=True,
            )
        )
    if sugar:
        gdm = raw["gdm"]
        items.append(
            _item(
                "nutritionist_consultation",
                "营养门诊 See the nutritionist",
                "Her diet, activity and food diary reviewed with the nutritionist.",
                rule=f"flag {sugar}",
                source=gdm["source"],
                inputs={"diabetes": sugar},
                reason="diabetes: medical nutrition therapy",
                from_flags=DIABETES_FLAGS,
                due_date=her.today + timedelta(days=int(gdm["nutritionist_consultation_days"])),
                for_butler=True,
            )
        )
    grade = her.flags.get("anaemia") if "anaemia" in her.flags else None
    if "anaemia" in her.flags:
        anaemia = raw["anaemia"]
        row = anaemia["grades"].get(grade or "", None)
        if row is None:  # an ungraded flag: the safer reading is the doctor's
            row = anaemia["grades"]["severe"]
        items.append(
            _item(
                "iron_advice",
                "补铁 Iron advice",
                " ".join(str(t) for t in (row["advice"], anaemia.get("diet")) if t),
                rule=f"flag anaemia, grade {grade}",
                source=anaemia["source"],
                inputs={"anaemia_grade": grade},
                reason=f"anaemia, {grade or 'grade not given'}",
                from_flags=("anaemia",),
                ga_from=her.ga_days,
                ga_to=LAST_DAY,
                for_butler=True,
            )
        )
        items.append(
            _item(
                "repeat_hb",
                f"复查血红蛋白 Repeat haemoglobin in {row['repeat_hb_days']} days",
                "A blood count to see whether the iron works (Hb usually rises by about 10 g/L "
                "in 2 weeks).",
                rule=f"flag anaemia, grade {grade}",
                source=anaemia["source"],
                inputs={"anaemia_grade": grade},
                reason=f"anaemia, {grade or 'grade not given'}",
                from_flags=("anaemia",),
                due_date=her.today + timedelta(days=int(row["repeat_hb_days"])),
                for_butler=True,
            )
        )
        if row["doctor_today"]:
            items.append(
                _item(
                    "doctor_anaemia",
                    "医生 The doctor sees her today",
                    str(row["advice"]),
                    rule=f"flag anaemia, grade {grade}",
                    source=anaemia["source"],
                    inputs={"anaemia_grade": grade},
                    reason="severe anaemia",
                    from_flags=("anaemia",),
                    due_date=her.today,
                    for_butler=True,
                )
            )
    review = False
    if her.weight is not None and her.weight.group is not None:
        review = bool(raw["bmi_groups"].get(her.weight.group.code, {}).get("nutritionist_review"))
    if (review or her.twins) and not sugar:
        why = "twin pregnancy" if her.twins else f"BMI group {her.weight.group.code}"  # type: ignore[union-attr]
        items.append(
            _item(
                "nutritionist_review",
                "营养门诊 Nutrition assessment",
                "The nutritionist assesses her diet, activity and weight gain.",
                rule="twins" if her.twins else f"bmi_groups[{why.split()[-1]}].nutritionist_review",
                source=raw["twins"]["source"] if her.twins else str(raw["bmi_groups_source"]),
                inputs={"twins": her.twins},
                reason=why,
                due_date=her.today + timedelta(days=14),
                for_butler=True,
            )
        )
    return items


def generate(her: Her, tables: PlanTables) -> dict[str, Any]:
    """The plan's sections for her, from the tables; a draft for a clinician to sign."""
    weight_summary, weight = weight_items(her)
    return {
        "nutrition": {
            "edition": tables.nutrition.edition,
            "trimester": trimester(her.ga_days).value,
            "items": nutrition_items(her, tables.nutrition),
        },
        "weight": weight_summary | {"items": weight},
        "fetal_monitoring": {
            "source": tables.fetal.source,
            "note": tables.fetal.note,
            "items": fetal_items(her, tables.fetal),
        },
        "follow_ups": {"items": follow_up_items(her, tables.nutrition)},
    }


def inputs(her: Her, tables: PlanTables) -> dict[str, Any]:
    """What a version was generated from: her data and the tables' codes and versions."""
    return her.inputs() | {
        "nutrition_table": f"{tables.nutrition.code}@{tables.nutrition.version}",
        "fetal_monitoring_table": f"{tables.fetal.code}@{tables.fetal.version}",
    }


# Changing a plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemChange:
    """Put an item into a section (a new code adds it, a known code replaces it), or remove it."""

    section: str
    code: str
    remove: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)


def apply_changes(
    sections: Mapping[str, Any], changes: Sequence[ItemChange], *, by: str
) -> dict[str, Any]:
    """A new copy of the sections with the changes made; a changed item names who changed it.

    Raises ChangeError (a ValueError) naming what is wrong and where (``changes.0.set.ga_from``:
    an unknown section, removing an absent item, a new item without a title, a GA range
    backwards)."""
    out: dict[str, Any] = json.loads(json.dumps(sections))  # a copy: the old version stays
    named: set[tuple[str, str]] = set()
    for n, c in enumerate(changes):
        if c.section not in SECTIONS:
            raise ChangeError(
                f"section {c.section!r} is not one of {', '.join(SECTIONS)}",
                index=n,
                field="section",
            )
        if (c.section, c.code) in named:  # remove-then-set or set twice: which one was meant?
            raise ChangeError(
                f"{c.section} item {c.code!r} is named twice in one change", index=n, field="code"
            )
        named.add((c.section, c.code))
        section: dict[str, Any] = out.setdefault(c.section, {})
        items: list[dict[str, Any]] = section.setdefault("items", [])
        at = next((n for n, i in enumerate(items) if i.get("code") == c.code), None)
        if c.remove:
            if c.fields:
                raise ChangeError(
                    f"{c.section} item {c.code!r}: remove it or set it, not both",
                    index=n,
                    field="set",
                )
            if at is None:
                raise ChangeError(
                    f"{c.section} has no item {c.code!r} to remove", index=n, field="code"
                )
            # Kept so that a regeneration does not bring back what a clinician took out.
            section.setdefault("removed", []).append(
                {"code": c.code, "rule": items[at].get("rule"), "by": by}
            )
            del items[at]
            continue
        if section.get("removed"):  # set again: no longer a removal
            section["removed"] = [r for r in section["removed"] if r.get("code") != c.code]
        unknown = set(c.fields) - ITEM_KEYS
        if unknown:
            raise ChangeError(
                f"unknown item fields: {', '.join(sorted(unknown))}",
                index=n,
                field=f"set.{sorted(unknown)[0]}",
            )
        base = dict(items[at]) if at is not None else _item(c.code, "", "", rule="", source="")
        if at is None:
            base["rule"], base["source"] = "added by a clinician", f"clinician: {by}"
        base.update({k: v for k, v in c.fields.items() if k not in ("code", "changed_by")})
        if not str(base.get("title") or "").strip():
            raise ChangeError(
                f"{c.section} item {c.code!r} needs a title", index=n, field="set.title"
            )
        lo, hi = base.get("ga_from"), base.get("ga_to")
        if lo is not None and hi is not None and int(lo) > int(hi):
            # Named by the field the change set (ga_from when it set both, or only it).
            which = "ga_to" if "ga_to" in c.fields and "ga_from" not in c.fields else "ga_from"
            raise ChangeError(
                f"{c.section} item {c.code!r}: ga_from ({lo}) is after ga_to ({hi})",
                index=n,
                field=f"set.{which}",
            )
        if base.get("due_date") is not None:
            try:
                date.fromisoformat(str(base["due_date"]))
            except ValueError as exc:
                raise ChangeError(
                    f"{c.section} item {c.code!r}: due_date is not a date",
                    index=n,
                    field="set.due_date",
                ) from exc
        base["code"], base["changed_by"] = c.code, by
        if at is None:
            items.append(base)
        else:
            items[at] = base
    return out


def replace_section(
    sections: Mapping[str, Any], name: str, section: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of the sections with one replaced (the nutrition assessment's nutrition)."""
    out: dict[str, Any] = json.loads(json.dumps(sections))
    out[name] = json.loads(json.dumps(section))
    return out


def _differs(kept: Mapping[str, Any], fresh: Mapping[str, Any]) -> bool:
    return any(kept.get(k) != fresh.get(k) for k in ("title", "detail", "rule"))


def regenerate(
    previous: Mapping[str, Any],
    fresh: Mapping[str, Any],
    from_version: int,
    *,
    names: Sequence[str] = SECTIONS,
) -> tuple[dict[str, Any], list[str]]:
    """The sections made afresh from the tables (``fresh``) with what a person wrote in
    ``previous`` kept: an item a clinician added or changed (``changed_by``) stands where the
    tables would put theirs, and says what the tables give now (``tables_now``) when that
    differs, so the signer sees both; an item a clinician removed stays out unless her data
    now gives it another rule (a new grade: the safer reading brings it back for the signer);
    the nutrition assessment's record is kept, marked with the version it came from.

    Returns the sections and the kept items (``section.code``). Only ``names`` are refreshed;
    the other sections are copied from ``previous`` as they were."""
    old: dict[str, Any] = json.loads(json.dumps(previous))
    new: dict[str, Any] = json.loads(json.dumps(fresh))
    out: dict[str, Any] = {}
    kept: list[str] = []
    for name in SECTIONS:
        if name not in names:
            if name in old:
                out[name] = old[name]
            elif name in new:
                out[name] = new[name]
            continue
        before = old.get(name) or {}
        section = dict(new.get(name) or {"items": []})
        mine = {
            str(i["code"]): i for i in before.get("items", []) if i.get("changed_by") is not None
        }
        removed = {str(r["code"]): r for r in before.get("removed", [])}
        done = {
            str(i["code"]): i["satisfied"] for i in before.get("items", []) if i.get("satisfied")
        }
        items: list[dict[str, Any]] = []
        for item in section.get("items", []):
            code = str(item["code"])
            if code in mine:
                person = mine.pop(code)
                person.pop("tables_now", None)
                if _differs(person, item):
                    person["tables_now"] = {k: item.get(k) for k in ("title", "detail", "rule")}
                items.append(person)
                kept.append(f"{name}.{code}")
            elif code in removed and removed[code].get("rule") == item.get("rule"):
                continue
            else:
                removed.pop(code, None)
                was = next((i for i in before.get("items", []) if i.get("code") == code), None)
                # Done for the same reason (the assessment answered this referral): still done.
                if code in done and was is not None and was.get("rule") == item.get("rule"):
                    item["satisfied"] = done[code]
                items.append(item)
        for code, person in mine.items():  # a clinician's own item: the tables have none
            person.pop("tables_now", None)
            items.append(person)
            kept.append(f"{name}.{code}")
        section["items"] = items
        still_removed = [r for c, r in removed.items() if c not in {i["code"] for i in items}]
        if still_removed:
            section["removed"] = still_removed
        if "assessment" in before and "assessment" not in section:
            section["assessment"] = before["assessment"] | {
                "kept_from_version": before["assessment"].get("kept_from_version", from_version)
            }
        out[name] = section
    return out, kept


STALE_LABELS = {
    "gdm": "GDM",
    "overt_diabetes": "Overt diabetes",
    "glucose_monitoring": "Glucose monitoring",
    "anaemia": "Anaemia",
    "gwg_outside": "Weight gain outside her band",
    "gestational_hypertension": "Gestational hypertension",
}


def _label(code: str) -> str:
    return STALE_LABELS.get(code, code.replace("_", " ").capitalize())


def stale_reasons(
    made_from: Mapping[str, Any],
    flags: Mapping[str, str | None],
    risk_grade: str,
    *,
    after_signing: Collection[str] = (),
) -> list[str]:
    """What changed in her data since the plan in force was made from ``made_from`` (its
    version's inputs): a flag raised, regraded or gone, a new risk grade. Each one changes
    what the tables would plan for her (the GDM diet, the iron advice, NST when high risk),
    so a clinician reviews the plan; a flag that went is a reason too (her plan may still
    prescribe the diabetes diet)."""
    was: Mapping[str, str | None] = made_from.get("flags") or {}
    out: list[str] = []
    for code in sorted(flags):
        if code not in was:
            grade = f" ({flags[code]})" if flags[code] else ""
            when = "signing" if code in after_signing else "the plan was made"
            out.append(f"{_label(code)}{grade} flagged after {when}")
        elif flags[code] != was[code]:
            out.append(f"{_label(code)} now {flags[code]} (the plan has {was[code]})")
    for code in sorted(set(was) - set(flags)):
        out.append(f"{_label(code)} no longer flagged")
    before = made_from.get("risk_grade")
    if before is not None and before != risk_grade:
        out.append(f"Risk grade now {risk_grade} (the plan has {before})")
    return out


def satisfy(
    sections: Mapping[str, Any], codes: Collection[str], *, by: str, at: datetime, what: str
) -> dict[str, Any]:
    """A copy of the sections with the follow-up items ``codes`` marked done (``satisfied``:
    by whom, when, by what): the nutrition assessment that just happened is the "see the
    nutritionist" item, so her butler is not sent to book what has been done. The item stays
    in the plan (the clinician sees it was planned and answered), off the butler's list."""
    out: dict[str, Any] = json.loads(json.dumps(sections))
    for item in (out.get("follow_ups") or {}).get("items", []):
        if item.get("code") in codes and not item.get("satisfied"):
            item["satisfied"] = {"by": by, "at": at.isoformat(), "what": what}
    return out


_FLAG_RULE = re.compile(r"^flag (\w+)")


def item_flags(item: Mapping[str, Any]) -> list[str]:
    """The rules' flags that justify an item (any one standing keeps it): ``from_flags``, or
    for an item of an older version, the flag its rule names ("flag anaemia, grade mild")."""
    given = item.get("from_flags")
    if given:
        return [str(f) for f in given]
    match = _FLAG_RULE.match(str(item.get("rule") or ""))
    return [match.group(1)] if match else []


# What is due ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueItem:
    section: str
    item: Mapping[str, Any]
    why: str


def items_due(
    sections: Mapping[str, Any],
    *,
    ga_days: int,
    today: date,
    horizon_days: int = 7,
    standing_flags: Collection[str] | None = None,
) -> list[DueItem]:
    """Her butler's items due now: inside their GA range today, or dated within the horizon
    (overdue ones included: a missed item is still due). Only items marked for the butler,
    not those already done (``satisfied``), and, when ``standing_flags`` is given, not those
    put there by a flag that no longer stands (iron advice after the anaemia flag was
    withdrawn: the result was not hers): her butler does not act on a reason that is gone
    until a clinician signs a new version (the safer reading; the plan is stale meanwhile)."""
    out: list[DueItem] = []
    until = today + timedelta(days=horizon_days)
    for name in SECTIONS:
        for item in (sections.get(name) or {}).get("items", []):
            if not item.get("for_butler") or item.get("satisfied"):
                continue
            flags = item_flags(item)
            if standing_flags is not None and flags and not set(flags) & set(standing_flags):
                continue
            due = item.get("due_date")
            lo, hi = item.get("ga_from"), item.get("ga_to")
            if due is not None:
                on = date.fromisoformat(str(due))
                if on <= until:
                    out.append(
                        DueItem(name, item, "overdue" if on < today else f"due {on.isoformat()}")
                    )
            elif lo is not None and int(lo) <= ga_days and (hi is None or ga_days <= int(hi)):
                upto = "" if hi is None else f"-{format_gestational_age(int(hi))}"
                out.append(DueItem(name, item, f"from {format_gestational_age(int(lo))}{upto}"))
    return out


def codes(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(i["code"]) for i in items]
