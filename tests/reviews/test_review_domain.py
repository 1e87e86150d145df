"""The review's rules as pure functions: which flags the lab means as abnormal (HL7 v2 table
0078), which reports may be reviewed, when a follow-up is due, what her butler's task says."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.reports.domain import ReportStatus
from app.reviews import domain
from app.reviews.domain import FollowUpKind, Observation

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def obs(seq: int, flag: str | None, critical: str | None = None) -> Observation:
    return Observation(
        seq=seq,
        code="718-7",
        display="Hb",
        value="105",
        unit="g/L",
        flag=flag,
        critical_reason=critical,
    )


@pytest.mark.parametrize("flag", [None, "", "N", "n", " N ", "NEG", "NR"])
def test_normal_negative_non_reactive_or_no_flag_is_not_highlighted(flag: str | None) -> None:
    assert domain.lab_flag_reason(obs(1, flag)) is None
    assert domain.lab_flagged([obs(1, flag)]) == []


@pytest.mark.parametrize("flag", ["L", "H", "LL", "HH", "A", "AA", "<", ">", "POS", "R", "W"])
def test_every_other_flag_is_the_lab_saying_look(flag: str) -> None:
    assert domain.lab_flag_reason(obs(1, flag)) == f"flagged {flag} by the lab"


def test_a_value_on_the_critical_list_counts_whatever_its_flag() -> None:
    (item,) = domain.lab_flagged([obs(1, "N", critical="haemoglobin 58 g/L < 70")])
    assert item.why == "critical value: haemoglobin 58 g/L < 70"
    assert domain.is_abnormal([obs(1, "N")], critical=True)
    assert not domain.is_abnormal([obs(1, "N"), obs(2, None)], critical=False)


def test_the_flagged_items_come_in_report_order() -> None:
    assert [i.seq for i in domain.lab_flagged([obs(3, "H"), obs(1, "L"), obs(2, "N")])] == [1, 3]


def test_the_doctors_choice_names_an_unknown_observation_by_its_index() -> None:
    with pytest.raises(KeyError) as raised:
        domain.chosen([obs(1, "L")], [(1, None), (7, None)])
    assert raised.value.args == (1,)
    (item,) = domain.chosen([obs(1, "L")], [(1, None)])
    assert item.why == "flagged L by the lab"


@pytest.mark.parametrize(
    ("status", "reviewable"),
    [
        (ReportStatus.FINAL, True),
        (ReportStatus.CORRECTED, True),
        (ReportStatus.AMENDED, True),
        (ReportStatus.APPENDED, True),
        (ReportStatus.PRELIMINARY, False),
        (ReportStatus.PARTIAL, False),
        (ReportStatus.REGISTERED, False),
        (ReportStatus.CANCELLED, False),
        (ReportStatus.ENTERED_IN_ERROR, False),
    ],
)
def test_only_a_released_report_is_reviewed(status: ReportStatus, reviewable: bool) -> None:
    assert (status in domain.REVIEWABLE) is reviewable


SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_in_n_weeks_or_days_is_due_at_the_clinics_morning_hour_on_that_local_date() -> None:
    # Reviewed at 10:00 on the 28th in Shanghai: due at 09:00 local (01:00 UTC) on the day.
    assert domain.due_at(now=NOW, tz=SHANGHAI, in_days=None, in_weeks=2, at=None) == datetime(
        2026, 12, 12, 1, 0, tzinfo=UTC
    )
    assert domain.due_at(now=NOW, tz=SHANGHAI, in_days=3, in_weeks=None, at=None) == datetime(
        2026, 12, 1, 1, 0, tzinfo=UTC
    )
    at = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
    assert domain.due_at(now=NOW, tz=SHANGHAI, in_days=None, in_weeks=None, at=at) == at


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # 23:30 on the 28th in Shanghai (15:30 UTC): three days on is the 1st.
        (datetime(2026, 11, 28, 15, 30, tzinfo=UTC), datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
        # 00:30 on the 29th in Shanghai, still the 28th in UTC: the local date counts.
        (datetime(2026, 11, 28, 16, 30, tzinfo=UTC), datetime(2026, 12, 2, 1, 0, tzinfo=UTC)),
    ],
)
def test_the_local_date_counts_at_midnight(now: datetime, due: datetime) -> None:
    assert domain.due_at(now=now, tz=SHANGHAI, in_days=3, in_weeks=None, at=None) == due


def test_the_task_says_what_to_do_never_the_result() -> None:
    assert (
        domain.task_title(FollowUpKind.REPEAT_TEST, exam="cbc")
        == "Book the repeat test the doctor ordered: cbc"
    )
    assert domain.task_title(FollowUpKind.CALL_MOTHER, exam=None) == (
        "Call her: the doctor's follow-up"
    )
    assert domain.task_title(FollowUpKind.OTHER, exam=None) == (
        "The doctor's follow-up: see the doctor's note"
    )
    assert len(domain.task_title(FollowUpKind.REPEAT_TEST, exam="x" * 400)) == 300


def test_an_exam_is_named_chinese_first_as_the_catalogue_names_it() -> None:
    # The catalogue's two names (exam_types.name and name_zh, migration 0027).
    label = domain.exam_label("cbc", ("Complete blood count", "血常规"))
    assert label == "血常规 Complete blood count"
    # An admin who wrote the Chinese into the catalogue's name: taken as it is.
    assert domain.exam_label("cbc", ("血常规 Blood count", "血常规")) == "血常规 Blood count"
    # A catalogue exam with no Chinese name set, and a code the catalogue lacks.
    assert domain.exam_label("new_exam", ("A new exam", None)) == "A new exam"
    assert domain.exam_label("LOINC-1", None) == "LOINC-1"
