"""The README's walk-through runs as written against a freshly seeded server."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.helpers.servers import ROOT, run_demo_server


def walkthrough(heading: str = "## A walk through the API") -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the walk-through has no sh block"
    return match.group(1)


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    with run_demo_server(tmp_path) as base:
        yield base


def test_the_walkthrough_runs(demo_server: str) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        env={**os.environ, "API": demo_server},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The enrolled mother's gestational age from her LMP of 2026-06-01, on the clinic's today.
    days = (datetime.now(Settings().tz).date() - date(2026, 6, 1)).days
    assert f'"display": "{days // 7}+{days % 7}"' in out
    assert "**************0021" in out  # masked in the list: the last four only (issue 18)
    assert "\n李小红\nMRN0099\nnmae\n" in out  # the search box: initials, MRN; a typo refused
    assert "'risk_grade': 'orange'" in out  # the doctor's change
    assert '"field": "national_id"' in out  # the bad check digit
    assert '"action": "mother.create"' in out
    assert "checked_in ['vitals', 'consultation'" in out  # the day's orders, plan first
    late = next(line for line in out.splitlines() if line.startswith("late booker:"))
    for code in ("syphilis", "hbsag", "abo_rh", "cbc", "liver_kidney", "urine", "ogtt", "nst"):
        assert f"'{code}'" in late, code  # the booking panel at 34+2, the catch-up, the NST
    assert "'hiv'" not in late  # recorded elsewhere
    assert "'nipt'" not in late  # offered, not chosen
    assert "hiv recorded_elsewhere - recorded_elsewhere at" in out
    assert "\nTrue\n" in out  # the second scan
    assert "'checked_in': 1" in out  # the board
    assert "VIT-001 waiting 1 0 ['Weight and blood pressure']" in out  # her queues
    assert "later: consultation" in out  # the doctor last
    assert "\nin_service\ndone\n" in out  # the blood-draw room served her
    assert "chosen by the front desk" in out  # the assignment explained
    assert "MRN0099 primary" in out  # the butler's own list
    assert "MSA|AA|DEMO-" in out  # the lab's result was accepted
    assert "\npicked_up\ndelivered\n" in out  # and the butler brought it
    assert "\n304\n" in out  # an unchanged list costs nothing
    assert "task | Help with the admission paperwork" in out  # the long-poll woke up
    assert "\nid: 1\nevent: feed\n" in out  # the feed as Server-Sent Events
    assert out.rstrip().endswith("401")  # the revoked butler token


def test_the_settings_table_lists_every_setting() -> None:
    text = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in text, name


def test_the_health_management_walkthrough_runs(demo_server: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough("## Her health-management plan, with curl")],
        env={**os.environ, "API": demo_server},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "'nutrition_assessment'" in out  # the desk added the nutritionist's exam
    assert "422 [('readings.0.value', 'weight 605 kg is outside" in out  # the typo refused
    assert "wst-801-2022 normal 21.5" in out  # her BMI group by the default table
    assert out.split("wst-801-2022 normal 21.5", 1)[1].split("\n", 1)[0].endswith("within")
    assert "MSA|AA|OGTT-" in out
    assert "flags ['gdm', 'glucose_monitoring']" in out
    assert "ogtt.gdm recorded {'ogtt_1h': 10.6}" in out  # the inputs that fired it
    assert "nutritionist: clinical.nutrition_consult" in out
    assert "normal within gdm plan v1 signed True" in out  # the assessment, signed
    assert "(diabetes)" in out  # energy adjusted for GDM
    assert "v2 changed doctor | signed by doctor" in out  # every version kept
    assert "due: glucose_monitoring" in out  # her butler's view of the signed plan
    assert "task: Call her about her food diary" in out
    assert "task: Book her nutritionist" not in out  # answered by the assessment
    assert "alert: 血压 Blood pressure 165/112 mmHg" in result.stderr  # the reading, no diagnosis
    assert "\ndoctor:doctor\n" in out  # closed by a doctor
    assert "[('repeat_test'," in out
    assert "report_pickup | 饮食控制" in out  # the advice on the pick-up
    assert "200 image/png" in out
    assert "200 image/svg+xml" in out
    assert (tmp_path / "weight-gain.png").read_bytes().startswith(b"\x89PNG")
