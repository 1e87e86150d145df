"""The clinical rules of ``rules.json`` as pure functions: no ORM, no I/O beyond loading.

Each evaluation returns ``Finding``s: the rule, its outcome, the inputs that fired it and an
explanation naming the threshold, so a firing can be recorded and explained as it happened.
What a finding then does (a flag, a worklist item, a task, a critical alert) is the service's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.clinical.gwg import GwgStatus

BUILT_IN = Path(__file__).with_name("rules.json")


class FiringState(StrEnum):
    SUGGESTED = "suggested"  # a clinician decides
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    RECORDED = "recorded"  # a rule that acts by itself (its effects need no decision)
    WITHDRAWN = "withdrawn"  # what fired it was corrected or amended away


LIVE_STATES = frozenset({FiringState.SUGGESTED, FiringState.CONFIRMED, FiringState.RECORDED})
KINDS = frozenset(
    {"glucose", "bp_repeat", "bp_single", "haemoglobin", "fetal_heart_rate", "nst", "weight_gain"}
)
EFFECTS = frozenset(
    {"nutritionist_consultation", "doctor_alert", "critical_alert", "nutritionist_referral"}
)
FLAGS = frozenset(
    {
        "gdm",
        "glucose_monitoring",
        "overt_diabetes",
        "gestational_hypertension",
        "anaemia",
        "gwg_outside",
    }
)
GRADES = ("green", "yellow", "orange", "red")  # the colours' order (NHFPC 2017)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    title: str
    source: str
    year: int
    state: FiringState
    flags: tuple[str, ...]
    effects: tuple[str, ...]
    params: Mapping[str, Any]
    risk_grade: str | None = None
    risk_source: str | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    rules: Mapping[str, Rule]

    def of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules.values() if r.kind == kind]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: Rule
    outcome: str
    explanation: str
    inputs: dict[str, Any]
    grade: str | None = None
    doctor_alert: bool = False
    measurement_ids: tuple[str, ...] = field(default=())
    priority: int | None = None  # the doctor's item's priority when the grade sets it
    risk_grade: str | None = None  # a grade's own risk colour, above the rule's (anaemia)
    alert_reason: str | None = None  # a critical alert's short reason: the reading, no diagnosis
    risk_source: str | None = None

    @property
    def suggested_grade(self) -> str | None:
        """The risk colour this finding suggests: its grade's own, else the rule's."""
        return self.risk_grade or self.rule.risk_grade

    @property
    def suggested_source(self) -> str | None:
        return self.risk_source or self.rule.risk_source

    @property
    def key(self) -> tuple[str, str]:
        """What makes two evaluations the same firing (an unchanged amendment fires nothing)."""
        return (self.rule.id, self.outcome)


def _number(raw: Mapping[str, Any], key: str, rule_id: str) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"rule {rule_id}: {key} must be a number")
    return float(value)


_REQUIRED: dict[str, tuple[str, ...]] = {
    "glucose": ("at_or_above",),
    "bp_repeat": ("systolic_at_or_above", "diastolic_at_or_above", "min_hours_apart"),
    "bp_single": ("systolic_at_or_above", "diastolic_at_or_above"),
    "haemoglobin": ("below", "grades"),
    "fetal_heart_rate": ("normal_from", "normal_to"),
    "nst": ("results",),
    "weight_gain": ("consecutive",),
}
_COMMON = frozenset(
    {"id", "kind", "title", "source", "year", "state", "flags", "effects", "risk_grade"}
    | {"risk_source"}
)


def load_rules(raw: Mapping[str, Any]) -> Rules:
    """Rules from their JSON form, checked: a rule without a source, an unknown kind, flag or
    effect, or a missing threshold stops start-up instead of switching a rule off."""
    rules: dict[str, Rule] = {}
    for item in raw["rules"]:
        rule_id = str(item["id"])
        kind = str(item["kind"])
        if kind not in KINDS:
            raise ValueError(f"rule {rule_id}: unknown kind {kind!r}")
        if rule_id in rules:
            raise ValueError(f"rule {rule_id} is listed twice")
        if not str(item.get("source", "")).strip() or not isinstance(item.get("year"), int):
            raise ValueError(f"rule {rule_id}: a rule names its source and year")
        missing = [k for k in _REQUIRED[kind] if k not in item]
        if missing:
            raise ValueError(f"rule {rule_id}: missing {', '.join(missing)}")
        flags = tuple(str(f) for f in item.get("flags", ()))
        effects = tuple(str(e) for e in item.get("effects", ()))
        if not set(flags) <= FLAGS:
            raise ValueError(f"rule {rule_id}: flags must be among {sorted(FLAGS)}")
        if not set(effects) <= EFFECTS:
            raise ValueError(f"rule {rule_id}: effects must be among {sorted(EFFECTS)}")
        risk_grade = item.get("risk_grade")
        if risk_grade is not None and risk_grade not in GRADES:
            raise ValueError(f"rule {rule_id}: risk_grade must be among {GRADES}")
        state = FiringState(item["state"])
        if state not in (FiringState.SUGGESTED, FiringState.RECORDED):
            raise ValueError(f"rule {rule_id}: a rule fires suggested or recorded")
        params = {k: v for k, v in item.items() if k not in _COMMON}
        for key in _REQUIRED[kind]:
            if key in ("at_or_above", "grades", "results"):
                continue
            _number(params, key, rule_id)
        if kind == "glucose":
            for key in ("at_or_above", "at_or_above_mg_dl"):
                for lab in params.get(key, {}):
                    if lab not in ("glucose_fasting", "ogtt_1h", "ogtt_2h"):
                        raise ValueError(f"rule {rule_id}: unknown glucose value {lab!r}")
                    _number(params[key], lab, rule_id)
            if not set(params.get("at_or_above_mg_dl", {})) <= set(params["at_or_above"]):
                raise ValueError(f"rule {rule_id}: a mg/dL threshold needs its mmol/L one")
        for step in params.get("risk_grades", []):
            _number(step, "at_or_below", rule_id)
            if step.get("risk_grade") not in GRADES or not str(step.get("risk_source", "")):
                raise ValueError(
                    f"rule {rule_id}: each of risk_grades names a risk_grade among {GRADES} "
                    "and its risk_source"
                )
        rules[rule_id] = Rule(
            id=rule_id,
            kind=kind,
            title=str(item["title"]),
            source=str(item["source"]),
            year=int(item["year"]),
            state=state,
            flags=flags,
            effects=effects,
            params=params,
            risk_grade=risk_grade,
            risk_source=item.get("risk_source"),
        )
    return Rules(version=str(raw["version"]), rules=rules)


@lru_cache(maxsize=4)
def rules(path: str | None = None) -> Rules:
    """The built-in rules, or the hospital's own file (CLINICAL_RULES_FILE)."""
    source = Path(path) if path else BUILT_IN
    try:
        return load_rules(json.loads(source.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"clinical rules {source.name} are invalid: {exc}") from exc


def _fmt(x: float) -> str:
    return f"{x:g}"


def ga_text(days: int | None) -> str:
    return "GA unknown" if days is None else f"{days // 7}+{days % 7}"


# Glucose ------------------------------------------------------------------------------------

_GLUCOSE_NAMES = {"glucose_fasting": "fasting", "ogtt_1h": "1 h", "ogtt_2h": "2 h"}


def evaluate_glucose(
    table: Rules,
    values: Mapping[str, float],
    *,
    ga_days: int | None,
    mg_dl: Mapping[str, float] | None = None,
) -> list[Finding]:
    """One report's fasting / 1 h / 2 h glucose. ``values``: in mmol/L, converted but never
    rounded; ``mg_dl``: those the lab sent in mg/dL, as sent. A value sent in mg/dL is compared
    with the rule's mg/dL threshold as the guideline writes it (IADPSG 2010: 92 / 180 / 153),
    not with its conversion (180 mg/dL is 9.99 mmol/L, yet it is the threshold); one sent in
    mmol/L with the mmol/L threshold; a mg/dL value whose conversion reaches the mmol/L one
    fires too (the safer of the two). Every value at or above its threshold is named in the
    explanation; one is enough."""
    sent_mg = dict(mg_dl or {})
    found = []
    for rule in table.of_kind("glucose"):
        limits: Mapping[str, float] = rule.params["at_or_above"]
        limits_mg: Mapping[str, float] = rule.params.get("at_or_above_mg_dl", {})
        present = {k: v for k, v in values.items() if k in limits}
        if not present:
            continue
        alone_from = rule.params.get("fasting_alone_from_ga_days")
        timed = any(k in values for k in ("ogtt_1h", "ogtt_2h"))
        if alone_from is not None and not timed and (ga_days is None or ga_days < int(alone_from)):
            continue  # a fasting glucose alone before the OGTT window
        over: dict[str, float] = {}
        why_parts = []
        for k, v in sorted(present.items()):
            if k in sent_mg and k in limits_mg:
                # As written in mg/dL, or by its conversion: either reaching it fires (the
                # safer reading: 91.9 mg/dL is 5.101 mmol/L, and 5.1 mmol/L fires).
                if sent_mg[k] >= float(limits_mg[k]) or v >= float(limits[k]):
                    over[k] = v
                    why_parts.append(
                        f"{_GLUCOSE_NAMES[k]} {_fmt(sent_mg[k])} >= "
                        f"{_fmt(float(limits_mg[k]))} mg/dL"
                    )
            elif v >= float(limits[k]):
                over[k] = v
                why_parts.append(
                    f"{_GLUCOSE_NAMES[k]} {_fmt(v)} >= {_fmt(float(limits[k]))} mmol/L"
                )
        if not over:
            continue
        inputs: dict[str, Any] = {"values_mmol_l": dict(values), "over": over, "ga_days": ga_days}
        if sent_mg:
            inputs["values_mg_dl"] = sent_mg
        found.append(
            Finding(
                rule=rule,
                outcome=rule.flags[0] if rule.flags else rule.id,
                explanation=(
                    f"{rule.title}: {', '.join(why_parts)} ({ga_text(ga_days)}; {rule.source})"
                ),
                inputs=inputs,
                doctor_alert="doctor_alert" in rule.effects,
            )
        )
    return found


# Blood pressure -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BpReading:
    id: str
    systolic: float
    diastolic: float
    measured_at: datetime
    ga_days: int | None


def _raised(rule: Rule, r: BpReading) -> bool:
    return r.systolic >= float(rule.params["systolic_at_or_above"]) or r.diastolic >= float(
        rule.params["diastolic_at_or_above"]
    )


def _bp(r: BpReading) -> str:
    return f"{_fmt(r.systolic)}/{_fmt(r.diastolic)} mmHg"


def evaluate_bp_single(table: Rules, reading: BpReading) -> list[Finding]:
    """A severe-range reading: at or above the systolic or the diastolic limit, any GA."""
    return [
        Finding(
            rule=rule,
            outcome="severe",
            explanation=(
                f"{rule.title}: {_bp(reading)} at {ga_text(reading.ga_days)} "
                f"(>= {_fmt(float(rule.params['systolic_at_or_above']))}/"
                f"{_fmt(float(rule.params['diastolic_at_or_above']))}; {rule.source})"
            ),
            inputs={
                "systolic": reading.systolic,
                "diastolic": reading.diastolic,
                "measured_at": reading.measured_at.isoformat(),
                "ga_days": reading.ga_days,
            },
            measurement_ids=(reading.id,),
            alert_reason=(
                f"血压 Blood pressure {_bp(reading)} "
                f"(>= {_fmt(float(rule.params['systolic_at_or_above']))}/"
                f"{_fmt(float(rule.params['diastolic_at_or_above']))} mmHg)"
            ),
        )
        for rule in table.of_kind("bp_single")
        if _raised(rule, reading)
    ]


def evaluate_bp_repeat(table: Rules, readings: Sequence[BpReading]) -> list[Finding]:
    """Two raised readings at least ``min_hours_apart`` apart, both from ``from_ga_days``
    (20+0): the earliest such reading and the latest one far enough after it."""
    found = []
    for rule in table.of_kind("bp_repeat"):
        from_ga = rule.params.get("from_ga_days")
        apart = timedelta(hours=float(rule.params["min_hours_apart"]))
        raised = sorted(
            (
                r
                for r in readings
                if _raised(rule, r)
                and (from_ga is None or (r.ga_days is not None and r.ga_days >= int(from_ga)))
            ),
            key=lambda r: r.measured_at,
        )
        if len(raised) < 2:
            continue
        first, last = raised[0], raised[-1]
        if last.measured_at - first.measured_at < apart:
            continue
        hours = (last.measured_at - first.measured_at).total_seconds() / 3600
        found.append(
            Finding(
                rule=rule,
                outcome=rule.flags[0] if rule.flags else rule.id,
                explanation=(
                    f"{rule.title}: {_bp(first)} at {ga_text(first.ga_days)} and {_bp(last)} "
                    f"{hours:.1f} h later ({rule.source})"
                ),
                inputs={
                    "readings": [
                        {
                            "id": r.id,
                            "systolic": r.systolic,
                            "diastolic": r.diastolic,
                            "measured_at": r.measured_at.isoformat(),
                            "ga_days": r.ga_days,
                        }
                        for r in (first, last)
                    ],
                    "hours_apart": round(hours, 2),
                },
                doctor_alert="doctor_alert" in rule.effects,
                measurement_ids=(first.id, last.id),
            )
        )
    return found


# Haemoglobin, the fetal heart ---------------------------------------------------------------


def evaluate_haemoglobin(table: Rules, g_per_l: float, *, ga_days: int | None) -> list[Finding]:
    found = []
    for rule in table.of_kind("haemoglobin"):
        below = float(rule.params["below"])
        if g_per_l >= below:
            continue
        grade = rule.params["grades"][-1]
        for candidate in rule.params["grades"]:
            floor = candidate.get("at_or_above")
            if floor is None or g_per_l >= float(floor):
                grade = candidate
                break
        found.append(
            Finding(
                rule=rule,
                outcome=rule.flags[0] if rule.flags else rule.id,
                grade=str(grade["grade"]),
                explanation=(
                    f"{rule.title}: Hb {_fmt(g_per_l)} g/L < {_fmt(below)}, "
                    f"{grade['grade']} ({ga_text(ga_days)}; {rule.source})"
                ),
                inputs={"haemoglobin_g_l": g_per_l, "ga_days": ga_days},
                doctor_alert=bool(grade.get("doctor_alert", False)),
                priority=(
                    None if grade.get("doctor_priority") is None else int(grade["doctor_priority"])
                ),
                **_hb_risk(rule, g_per_l),
            )
        )
    return found


def _hb_risk(rule: Rule, g_per_l: float) -> dict[str, Any]:
    """The first of the rule's ``risk_grades`` (most severe first) her Hb is at or below."""
    for step in rule.params.get("risk_grades", []):
        if g_per_l <= float(step["at_or_below"]):
            return {"risk_grade": str(step["risk_grade"]), "risk_source": str(step["risk_source"])}
    return {}


def evaluate_fhr(
    table: Rules, bpm: float, *, measurement_id: str, ga_days: int | None
) -> list[Finding]:
    found = []
    for rule in table.of_kind("fetal_heart_rate"):
        low, high = float(rule.params["normal_from"]), float(rule.params["normal_to"])
        if low <= bpm <= high:
            continue
        side = "below" if bpm < low else "above"
        found.append(
            Finding(
                rule=rule,
                outcome=f"fhr_{side}",
                explanation=(
                    f"{rule.title}: {_fmt(bpm)} bpm is {side} {_fmt(low)}-{_fmt(high)} "
                    f"({ga_text(ga_days)}; {rule.source})"
                ),
                inputs={"fetal_heart_rate_bpm": bpm, "ga_days": ga_days},
                doctor_alert=True,
                measurement_ids=(measurement_id,),
            )
        )
    return found


def evaluate_nst(
    table: Rules, result: str, *, measurement_id: str, ga_days: int | None
) -> list[Finding]:
    return [
        Finding(
            rule=rule,
            outcome=f"nst_{result}",
            explanation=f"{rule.title}: NST {result} ({ga_text(ga_days)}; {rule.source})",
            inputs={"nst": result, "ga_days": ga_days},
            doctor_alert=True,
            measurement_ids=(measurement_id,),
        )
        for rule in table.of_kind("nst")
        if result in rule.params["results"]
    ]


# Weight gain --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GainReading:
    id: str
    ga_days: int
    gain_kg: float
    low_kg: float
    high_kg: float
    status: GwgStatus


def evaluate_weight_gain(
    table: Rules, readings: Sequence[GainReading], *, table_code: str
) -> list[Finding]:
    """The last ``consecutive`` readings (in order) all outside her band."""
    found = []
    for rule in table.of_kind("weight_gain"):
        n = int(rule.params["consecutive"])
        last = list(readings[-n:])
        if len(last) < n or any(r.status is GwgStatus.WITHIN for r in last):
            continue
        why = "; ".join(
            f"{ga_text(r.ga_days)}: +{r.gain_kg:.1f} kg, {r.status.value} "
            f"{r.low_kg:.1f}-{r.high_kg:.1f}"
            for r in last
        )
        found.append(
            Finding(
                rule=rule,
                outcome="gwg_outside",
                explanation=f"{rule.title} ({table_code}): {why}",
                inputs={
                    "table": table_code,
                    "readings": [
                        {
                            "id": r.id,
                            "ga_days": r.ga_days,
                            "gain_kg": round(r.gain_kg, 2),
                            "low_kg": round(r.low_kg, 2),
                            "high_kg": round(r.high_kg, 2),
                            "status": r.status.value,
                        }
                        for r in last
                    ],
                },
                measurement_ids=tuple(r.id for r in last),
            )
        )
    return found


def worse_grade(rule: Rule, new: str | None, old: str | None) -> bool:
    """The new grade comes later in the rule's grades than the old one (mild → moderate)."""
    order = [str(g["grade"]) for g in rule.params.get("grades", ())]
    if new not in order:
        return False
    return old not in order or order.index(new) > order.index(old)


def rank(grade: str | None) -> int:
    return GRADES.index(grade) if grade in GRADES else -1


def suggests_higher(finding: Finding, current: str | None) -> bool:
    """The rule suggests a grade above hers (a doctor then confirms or dismisses it)."""
    grade = finding.suggested_grade
    return grade is not None and rank(grade) > rank(current)
