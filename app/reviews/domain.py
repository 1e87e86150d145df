"""The rules of a doctor's review, as pure functions: which reports may be reviewed, which
observations the lab flagged, when a follow-up is due and what her butler's task says."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from app.reports.domain import READY, ReportStatus

# Only what the lab has released may be reviewed: final, and its later corrections or
# amendments. A preliminary value is not advice-ready; a withdrawn report has nothing to review.
REVIEWABLE: frozenset[ReportStatus] = READY

# HL7 v2 table 0078 (OBX-8) flags that say "not abnormal": N (normal), NEG (negative), NR (non
# reactive), and nothing at all. Every other flag (L, H, LL, HH, A, AA, <, >, POS, R, S …) is
# the lab saying "look at this"; a value on the critical list counts whatever its flag.
NOT_ABNORMAL_FLAGS = frozenset({"", "N", "NEG", "NR"})

# A review that comes after her butler delivered the report: the butler brings the advice
# within a day (the task is then overdue and reminded like any other).
BRING_ADVICE_WITHIN = timedelta(days=1)

# "Repeat in 2 weeks", "call her in 3 days": due at this local time on that date. The settings
# name no clinic opening hour (clinic sessions are booked per day); 09:00 is within every
# session a clinic opens in the morning, and a reminder before it would come at night.
FOLLOW_UP_AT = time(9, 0)


class FollowUpKind(StrEnum):
    REPEAT_TEST = "repeat_test"
    SEE_NUTRITIONIST = "see_nutritionist"
    CALL_MOTHER = "call_mother"
    SEE_DOCTOR = "see_doctor"
    OTHER = "other"


class AbnormalSource(StrEnum):
    LAB_FLAGS = "lab_flags"  # the doctor took the lab's flags as they came
    DOCTOR = "doctor"  # the doctor chose the items


@dataclass(frozen=True, slots=True)
class Observation:
    """What the review reads of one lab observation."""

    seq: int
    code: str
    display: str | None
    value: str | None
    unit: str | None
    flag: str | None
    critical_reason: str | None


@dataclass(frozen=True, slots=True)
class AbnormalItem:
    seq: int
    code: str
    display: str | None
    value: str | None
    unit: str | None
    flag: str | None
    why: str

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "code": self.code,
            "display": self.display,
            "value": self.value,
            "unit": self.unit,
            "flag": self.flag,
            "why": self.why,
        }


def lab_flag_reason(obs: Observation) -> str | None:
    """Why the lab's own message marks this observation, or None when it does not."""
    if obs.critical_reason:
        return f"critical value: {obs.critical_reason}"
    flag = (obs.flag or "").strip().upper()
    if flag not in NOT_ABNORMAL_FLAGS:
        return f"flagged {flag} by the lab"
    return None


def lab_flagged(observations: Iterable[Observation]) -> list[AbnormalItem]:
    """The default highlighted items: every observation the lab flagged, in report order."""
    items = []
    for obs in sorted(observations, key=lambda o: o.seq):
        why = lab_flag_reason(obs)
        if why is not None:
            items.append(_item(obs, why))
    return items


def chosen(
    observations: Sequence[Observation], picks: Sequence[tuple[int, str | None]]
) -> list[AbnormalItem]:
    """The doctor's own selection (seq, why). An unknown seq raises KeyError with its index.
    Without a why, the lab's reason is kept, else "highlighted by the doctor"."""
    by_seq = {o.seq: o for o in observations}
    items = []
    for index, (seq, why) in enumerate(picks):
        obs = by_seq.get(seq)
        if obs is None:
            raise KeyError(index)
        items.append(_item(obs, why or lab_flag_reason(obs) or "highlighted by the doctor"))
    return items


def _item(obs: Observation, why: str) -> AbnormalItem:
    return AbnormalItem(
        seq=obs.seq,
        code=obs.code,
        display=obs.display,
        value=obs.value,
        unit=obs.unit,
        flag=obs.flag,
        why=why,
    )


def is_abnormal(observations: Iterable[Observation], *, critical: bool) -> bool:
    """A report the doctor should see first: a critical value or anything the lab flagged."""
    return critical or any(lab_flag_reason(o) is not None for o in observations)


def due_at(
    *,
    now: datetime,
    tz: ZoneInfo,
    in_days: int | None,
    in_weeks: int | None,
    at: datetime | None,
) -> datetime:
    """When a follow-up is due: "in N days" / "in N weeks" is that many days after the
    review's *local* date, at the clinic's morning hour (FOLLOW_UP_AT, 09:00 in the clinic's
    time zone): a review at 23:30 on the 28th with "call her in 3 days" is due at 09:00 on the
    1st, not at 23:30, and one at 00:30 on the 29th at 09:00 on the 2nd. A butler books or
    calls in clinic hours; a time to the second of the review would remind her at night.
    Exactly one of the three is given (checked by the service); ``at`` is taken as given."""
    if at is not None:
        return at
    days = in_weeks * 7 if in_weeks is not None else in_days
    assert days is not None
    local = now.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(local, FOLLOW_UP_AT, tzinfo=tz).astimezone(UTC)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def exam_label(code: str, names: tuple[str, str | None] | None) -> str:
    """How her butler's task names an exam: the catalogue's Chinese name first, then its
    English one ("血常规 Complete blood count"); without a Chinese name (or with a name that
    carries Chinese already) the catalogue's name; an exam the catalogue does not have, by
    its code."""
    if names is None:
        return code
    name, name_zh = names
    if not name_zh or _has_cjk(name) or name_zh == name:
        return name
    return f"{name_zh} {name}"


def task_title(kind: FollowUpKind, *, exam: str | None) -> str:
    """What her butler's task says: the action, never the result or a diagnosis. The doctor's
    note is free text that may name a condition ("after two weeks of iron for anaemia"): it
    stays on the follow-up order (GET /v1/reports/{id}/reviews), never in the title the
    butler's phone shows; the exam to repeat is named as the catalogue names it (exam_label),
    an action."""
    return {
        FollowUpKind.REPEAT_TEST: f"Book the repeat test the doctor ordered: {exam}"
        if exam
        else "Book the repeat test the doctor ordered",
        FollowUpKind.SEE_NUTRITIONIST: "Book her a consultation with the nutritionist "
        "(the doctor's follow-up)",
        FollowUpKind.CALL_MOTHER: "Call her: the doctor's follow-up",
        FollowUpKind.SEE_DOCTOR: "Book her to see the doctor (the doctor's follow-up)",
        FollowUpKind.OTHER: "The doctor's follow-up: see the doctor's note",
    }[kind][:300]


def bring_advice_title(report_title: str) -> str:
    return f"Bring her the doctor's advice on {report_title}"[:300]


def withdrawn_advice_title(*, delivered: bool) -> str:
    """Her butler's task when a review's advice she had is withdrawn (the report was not hers
    or was cancelled): what to do, neutral: neither the result nor a diagnosis, nor the
    desk's reason (which may name the other patient)."""
    if delivered:
        return (
            "The results you brought her were withdrawn: do not repeat the advice; "
            "the doctor will contact her"
        )
    return (
        "The doctor's advice you were shown on her results was withdrawn: do not pass it on; "
        "the doctor will contact her"
    )


def withdrawn_item_title(*, delivered: bool, butler_told: bool, tasks_withdrawn: int) -> str:
    """The doctors' item when a reviewed report is withdrawn or detached from her: whether
    the advice had been delivered to her (then she may act on it: contact her), and what was
    done on the butler's side."""
    reached = (
        "the advice given on it had been delivered to her"
        if delivered
        else "the advice given on it had reached her butler (not delivered to her yet)"
    )
    butler = (
        "her butler is told not to repeat it and that a doctor will contact her"
        if butler_told
        else "she has no primary butler to tell"
    )
    return (
        f"A reviewed report was withdrawn or detached: {reached}; {butler}; "
        f"{tasks_withdrawn} open follow-up task(s) were withdrawn; contact her and review "
        "her care"
    )[:300]


def revised_reason(reviewer_name: str) -> str:
    """The earlier review a doctor replaced: who revised it (when is superseded_at)."""
    return f"revised by {reviewer_name}"[:300]


# A withdrawn review's superseded_reason: the why is in withdrawn_reason.
WITHDRAWN_REASON = "withdrawn"


def superseded_reason(status: ReportStatus, version: int) -> str:
    return f"the lab sent a {status.value} report since (report version {version})"


def report_title(display: str | None, code: str | None) -> str:
    return display or code or "her lab report"
