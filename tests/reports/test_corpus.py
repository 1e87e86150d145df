"""The lab message corpus (fixtures/corpus): each case is posted through the real intake, over
HTTP or MLLP, step by step, and its answer and the database after it are checked against the
case's expectations in manifest.json. See fixtures/corpus/README.md for the cases."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.reports import mllp, models
from app.reports.intake import IntakeContext, thresholds_from
from app.reports.models import CriticalAlert, InboundMessage, LabObservation, LabReport
from tests.helpers.api import Api
from tests.helpers.factories import LAB_KEY
from tests.helpers.lab import FHIR, HL7
from tests.helpers.messages import signed
from tests.helpers.visits import checked_in_mother, order_number

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
BOM = b"\xef\xbb\xbf"
# Who reads a worklist audience (the token of that role sees the items meant for it).
AUDIENCE_READER = {"front_desk": "frontdesk", "doctor": "doctor", "admin": "admin"}


def fill(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def encode(template: str, step: dict[str, Any], values: dict[str, str]) -> bytes:
    """The bytes a sender would put on the wire for this step."""
    text = fill(template, values)
    if step["channel"] in ("hl7v2", "mllp"):
        text = text.replace("\n", step["separator"])
    raw = text.encode(step.get("encoding", "utf-8"))
    return BOM + raw if step.get("bom") else raw


def msa_fields(ack: str) -> list[str] | None:
    segments = [s for s in re.split(r"[\r\n]+", ack.strip("\x0b\x1c\r\n")) if s]
    separator = segments[0][3] if segments and len(segments[0]) > 3 else "|"
    return next((s.split(separator) for s in segments if s.startswith("MSA")), None)


@dataclass
class Snapshot:
    """Everything the corpus checks, as it stood at one moment."""

    messages: list[InboundMessage]
    reports: dict[uuid.UUID, LabReport]
    observations: dict[uuid.UUID, list[LabObservation]]
    attachments: dict[uuid.UUID, list[Any]]
    alerts: list[CriticalAlert]

    def fingerprint(self, report_id: uuid.UUID) -> tuple[Any, ...]:
        r = self.reports[report_id]
        results = tuple(
            (o.seq, o.code, o.value, o.numeric, o.unit, o.flag, o.status)
            for o in self.observations.get(report_id, [])
        )
        return (
            r.status,
            r.version,
            r.last_message_id,
            r.mother_id,
            r.updated_at,
            r.critical,
            results,
            len(self.attachments.get(report_id, [])),
        )

    def fingerprints(self) -> dict[uuid.UUID, tuple[Any, ...]]:
        return {rid: self.fingerprint(rid) for rid in self.reports}


async def snapshot(factory: async_sessionmaker[AsyncSession]) -> Snapshot:
    attachment_model = getattr(models, "LabAttachment", None)
    async with factory() as session:
        messages = list(await session.scalars(select(InboundMessage)))
        reports = {r.id: r for r in await session.scalars(select(LabReport))}
        observations: dict[uuid.UUID, list[LabObservation]] = {}
        for o in await session.scalars(select(LabObservation).order_by(LabObservation.seq)):
            observations.setdefault(o.report_id, []).append(o)
        attachments: dict[uuid.UUID, list[Any]] = {}
        if attachment_model is not None:
            for a in await session.scalars(select(attachment_model)):
                attachments.setdefault(a.report_id, []).append(a)
        alerts = list(await session.scalars(select(CriticalAlert)))
    return Snapshot(messages, reports, observations, attachments, alerts)


MISSING = object()


def column(problems: list[str], obj: Any, name: str, where: str) -> Any:
    """A column the contract names; said plainly when the model does not have it yet."""
    if not hasattr(obj, name):
        problems.append(f"{where}: {type(obj).__name__}.{name} does not exist (not built yet)")
        return MISSING
    return getattr(obj, name)


def expect_equal(problems: list[str], where: str, what: str, got: Any, wanted: Any) -> None:
    if got is not MISSING and got != wanted:
        problems.append(f"{where}: {what} is {got!r}, expected {wanted!r}")


@dataclass
class Runner:
    api: Api
    app: FastAPI
    clock: FrozenClock
    factory: async_sessionmaker[AsyncSession]
    mother_id: str
    values: dict[str, str]
    answers: list[str] = field(default_factory=list)
    messages: list[InboundMessage | None] = field(default_factory=list)

    # Sending ----------------------------------------------------------------------------

    async def send(self, channel: str, raw: bytes) -> tuple[int, str]:
        if channel == "mllp":
            lab = self.api.staff.lab_client
            assert lab is not None
            settings = self.app.state.settings
            context = IntakeContext(
                tz=settings.tz,
                thresholds=thresholds_from(settings.critical_values_file),
                ack_within=timedelta(minutes=settings.critical_ack_minutes),
            )
            answer = await mllp.take(
                raw,
                factory=self.factory,
                client_id=lab.id,
                client_name=lab.name,
                context=context,
                now=self.clock.now(),
            )
            return 200, answer
        headers = {
            "X-API-Key": LAB_KEY,
            **signed(raw, at=int(self.clock.now().timestamp())),
            "content-type": "application/hl7-v2" if channel == "hl7v2" else "application/fhir+json",
        }
        response = await self.api.client.post(
            HL7 if channel == "hl7v2" else FHIR, content=raw, headers=headers
        )
        return response.status_code, response.content.decode("utf-8", errors="replace")

    # One step ---------------------------------------------------------------------------

    async def step(self, number: int, step: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        values = {**self.values, "{CONTROL}": f"{number}{uuid.uuid4().hex[:12].upper()}"}
        template = (CORPUS / step["file"]).read_text(encoding="utf-8")
        raw = encode(template, step, values)
        expect: dict[str, Any] = {
            k: fill(v, values) if isinstance(v, str) else v for k, v in step["expect"].items()
        }
        before = await snapshot(self.factory)
        status, answer = await self.send(step["channel"], raw)
        after = await snapshot(self.factory)
        self.answers.append(answer)

        if step["channel"] == "fhir":
            self.check_outcome(problems, status, answer, expect)
        else:
            self.check_ack(problems, status, answer, expect)
        if "same_answer_as" in expect and answer != self.answers[expect["same_answer_as"] - 1]:
            problems.append(
                f"answer differs from step {expect['same_answer_as']}'s: {answer!r} against "
                f"{self.answers[expect['same_answer_as'] - 1]!r}"
            )
        message = self.check_message(problems, step, expect, raw, before, after)
        self.messages.append(message)

        old, new = before.fingerprints(), after.fingerprints()
        if "reports_changed" in expect and (old != new) != expect["reports_changed"]:
            problems.append(
                f"lab_reports {'changed' if old != new else 'did not change'}, expected "
                f"{'a change' if expect['reports_changed'] else 'no change'}"
            )
        if step.get("earlier_unchanged"):
            for rid, fingerprint in old.items():
                if new.get(rid) != fingerprint:
                    problems.append(
                        f"the earlier report {rid} changed: {fingerprint} -> {new.get(rid)}"
                    )
        touched = sorted(
            (
                r
                for r in after.reports.values()
                if r.id not in before.reports
                or (message is not None and r.last_message_id == message.id)
            ),
            key=lambda r: r.id.int,  # UUIDv7: creation order, which is OBR order
        )
        if "reports" in step:
            self.check_reports(problems, step["reports"], touched, before, after)
        if "alerts" in step:
            matched = sum(1 for a in after.alerts if a.mother_id is not None)
            unmatched = sum(1 for a in after.alerts if a.mother_id is None)
            expect_equal(
                problems,
                "critical_alerts",
                "(matched, unmatched)",
                (matched, unmatched),
                (step["alerts"]["matched"], step["alerts"]["unmatched"]),
            )
        if "worklist" in step or "worklist_absent" in step:
            await self.check_worklist(problems, step)
        return list(dict.fromkeys(problems))  # a missing column is said once

    # Answers ----------------------------------------------------------------------------

    def check_ack(self, problems: list[str], status: int, ack: str, expect: dict[str, Any]) -> None:
        if status != 200:
            problems.append(f"HTTP {status}, expected 200 with an ACK: {ack[:300]!r}")
            return
        msa = msa_fields(ack)
        if msa is None:
            problems.append(f"no MSA segment in the answer {ack[:300]!r}")
            return
        msa += [""] * (4 - len(msa))
        expect_equal(problems, "ACK", "MSA-1", msa[1], expect["ack"])
        if "msa2" in expect:
            expect_equal(problems, "ACK", "MSA-2", msa[2] or None, expect["msa2"])
        if "text_contains" in expect and expect["text_contains"] not in msa[3]:
            problems.append(f"ACK: MSA-3 {msa[3]!r} does not name {expect['text_contains']!r}")

    def check_outcome(
        self, problems: list[str], status: int, body: str, expect: dict[str, Any]
    ) -> None:
        expect_equal(problems, "FHIR answer", "HTTP status", status, expect["http_status"])
        try:
            outcome = json.loads(body)
        except json.JSONDecodeError:
            problems.append(f"FHIR answer is not JSON: {body[:300]!r}")
            return
        if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
            problems.append(f"FHIR answer is not an OperationOutcome: {body[:300]!r}")
            return
        issues = outcome.get("issue") or []
        severities = {i.get("severity") for i in issues}
        if expect["severity"] == "error":
            if not severities & {"error", "fatal"}:
                problems.append(f"OperationOutcome severities {severities}, expected an error")
        elif expect["severity"] not in severities or severities & {"error", "fatal"}:
            problems.append(f"OperationOutcome severities {severities}, expected information")
        wanted = expect.get("diagnostics_contains")
        if wanted and not any(wanted in (i.get("diagnostics") or "") for i in issues):
            problems.append(f"no OperationOutcome diagnostics names {wanted!r}: {body[:300]!r}")

    # The stored message ------------------------------------------------------------------

    def check_message(
        self,
        problems: list[str],
        step: dict[str, Any],
        expect: dict[str, Any],
        raw: bytes,
        before: Snapshot,
        after: Snapshot,
    ) -> InboundMessage | None:
        known = {m.id for m in before.messages}
        new = [m for m in after.messages if m.id not in known]
        if not expect.get("stored", True):
            if new:
                problems.append(f"{len(new)} inbound message(s) stored, expected none (a replay)")
            return None
        if len(new) != 1:
            problems.append(f"{len(new)} inbound messages stored, expected one")
            return None
        (message,) = new
        where = "inbound_messages"
        expect_equal(problems, where, "channel", message.channel, step["channel"])
        if message.body != raw:
            problems.append(f"{where}: body is not the bytes sent ({message.body[:60]!r}...)")
        if "message_state" in expect:
            expect_equal(problems, where, "state", message.state, expect["message_state"])
        if "ack" in expect:
            expect_equal(problems, where, "ack_code", message.ack_code, expect["ack"])
        if "reused_key_of" in expect:
            earlier = self.messages[expect["reused_key_of"] - 1]
            got = column(problems, message, "reused_key_of", where)
            expect_equal(problems, where, "reused_key_of", got, earlier.id if earlier else None)
        return message

    # Reports ----------------------------------------------------------------------------

    def check_reports(
        self,
        problems: list[str],
        wanted: list[dict[str, Any]],
        touched: list[LabReport],
        before: Snapshot,
        after: Snapshot,
    ) -> None:
        if len(touched) != len(wanted):
            seen = [(r.source_key, str(r.status), r.mother_id is not None) for r in touched]
            problems.append(f"{len(touched)} report(s) written, expected {len(wanted)}: {seen}")
            return
        for n, (report, exp) in enumerate(zip(touched, wanted, strict=True), start=1):
            where = f"report {n} ({report.source_key})"
            results = after.observations.get(report.id, [])
            files = after.attachments.get(report.id, [])
            if "status" in exp:
                expect_equal(problems, where, "status", str(report.status), exp["status"])
            if "attached" in exp:
                attached = str(report.mother_id) if report.mother_id else None
                wanted_mother = self.mother_id if exp["attached"] else None
                expect_equal(problems, where, "mother_id", attached, wanted_mother)
            if "critical" in exp:
                expect_equal(problems, where, "critical", report.critical, exp["critical"])
            if "observations" in exp:
                expect_equal(problems, where, "observations", len(results), exp["observations"])
            if "comments" in exp:
                got = column(problems, report, "comments", where)
                if got is not MISSING:
                    expect_equal(problems, where, "comments present", bool(got), exp["comments"])
            if "comments_contains" in exp:
                got = column(problems, report, "comments", where)
                if got is not MISSING and exp["comments_contains"] not in (got or ""):
                    problems.append(f"{where}: comments {got!r} lack {exp['comments_contains']!r}")
            if "observation_comments" in exp:
                with_notes = [column(problems, o, "comments", where) for o in results]
                if MISSING not in with_notes:
                    got_n = sum(1 for c in with_notes if c)
                    expect_equal(
                        problems,
                        where,
                        "observations with comments",
                        got_n,
                        exp["observation_comments"],
                    )
            if "needs_review" in exp:
                got = column(problems, report, "needs_review", where)
                expect_equal(problems, where, "needs_review", got, exp["needs_review"])
                reasons = [column(problems, o, "review_reason", where) for o in results]
                if MISSING not in reasons and any(reasons) != exp["needs_review"]:
                    problems.append(f"{where}: observation review reasons {reasons}")
            if "value_contains" in exp and not any(
                exp["value_contains"] in (o.value or "") for o in results
            ):
                values = [o.value for o in results]
                problems.append(f"{where}: no value contains {exp['value_contains']!r}: {values}")
            if "value_longer_than" in exp:
                longest = max((len(o.value or "") for o in results), default=0)
                if longest <= exp["value_longer_than"]:
                    problems.append(f"{where}: the longest value has {longest} characters")
            if "patient_name_contains" in exp:
                got = column(problems, report, "patient_name", where)
                if got is not MISSING and exp["patient_name_contains"] not in (got or ""):
                    problems.append(
                        f"{where}: patient_name {got!r} lacks {exp['patient_name_contains']!r}"
                    )
            if "conflict" in exp:
                got = column(problems, report, "conflict_of", where)
                if got is not MISSING:
                    expect_equal(
                        problems, where, "held as a conflict", got is not None, exp["conflict"]
                    )
                    if exp["conflict"] and got is not None and got not in before.reports:
                        problems.append(f"{where}: conflict_of {got} is not an earlier report")
            self.check_attachments(problems, where, exp, files)

    def check_attachments(
        self, problems: list[str], where: str, exp: dict[str, Any], files: list[Any]
    ) -> None:
        keys = {"attachments", "attachment_kinds", "attachment_media"} & exp.keys()
        if not keys:
            return
        if getattr(models, "LabAttachment", None) is None:
            problems.append(
                f"{where}: app.reports.models.LabAttachment does not exist (not built yet)"
            )
            return
        if "attachments" in exp:
            expect_equal(problems, where, "attachments", len(files), exp["attachments"])
        if "attachment_kinds" in exp:
            kinds = sorted(a.kind for a in files)
            expect_equal(
                problems, where, "attachment kinds", kinds, sorted(exp["attachment_kinds"])
            )
        if "attachment_media" in exp:
            media = sorted(str(a.media_type) for a in files)
            expect_equal(
                problems, where, "attachment media types", media, sorted(exp["attachment_media"])
            )
        for a in files:
            if a.kind in ("ED", "FHIR") and (not a.data or a.size != len(a.data)):
                problems.append(f"{where}: attachment {a.kind} has no data or a wrong size")
            if (
                a.kind == "ED"
                and a.media_type == "application/pdf"
                and not a.data.startswith(b"%PDF")
            ):
                problems.append(f"{where}: the PDF attachment is not the decoded document")
            if a.kind == "RP" and not a.pointer:
                problems.append(f"{where}: the RP attachment has no pointer")

    # Worklist ---------------------------------------------------------------------------

    async def worklist(self, problems: list[str], who: str) -> list[dict[str, Any]]:
        response = await self.api.client.get("/v1/worklist", headers=self.api.auth(who))
        if response.status_code != 200:
            problems.append(
                f"GET /v1/worklist as {who}: {response.status_code} {response.text[:200]}"
            )
            return []
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def check_worklist(self, problems: list[str], step: dict[str, Any]) -> None:
        everything = await self.worklist(problems, "admin")
        if problems and not everything:
            return
        for wanted in step.get("worklist", []):
            kind, _, audience = wanted.partition("@")
            items = (
                await self.worklist(problems, AUDIENCE_READER[audience]) if audience else everything
            )
            if not any(
                i.get("kind") == kind and (not audience or i.get("audience") == audience)
                for i in items
            ):
                seen = sorted({(i.get("kind"), i.get("audience")) for i in everything})
                problems.append(f"worklist: no {wanted} item; there are {seen}")
        for kind in step.get("worklist_absent", []):
            if any(i.get("kind") == kind for i in everything):
                problems.append(f"worklist: an unexpected {kind} item")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_corpus_case(
    case: dict[str, Any],
    api: Api,
    app: FastAPI,
    clock: FrozenClock,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    mother, visit = await checked_in_mother(api)
    runner = Runner(
        api=api,
        app=app,
        clock=clock,
        factory=session_factory,
        mother_id=mother["id"],
        values={
            "{MRN}": mother["mrn"],
            "{ORDER}": order_number(visit, "cbc"),
            "{ORDER2}": order_number(visit, "ogtt"),
            "{ORDER3}": order_number(visit, "urine"),
            "{OTHER_MRN}": f"OT{uuid.uuid4().hex[:8].upper()}",  # nobody's
        },
    )
    for number, step in enumerate(case["steps"], start=1):
        if number > 1:
            clock.advance(timedelta(minutes=1))
        problems = await runner.step(number, step)
        assert not problems, f"step {number} ({step['file']}):\n  " + "\n  ".join(problems)


# The corpus itself ----------------------------------------------------------------------

CASE_KEYS = {"name", "source", "quirks", "steps"}
STEP_KEYS = {
    "file",
    "channel",
    "encoding",
    "bom",
    "separator",
    "expect",
    "reports",
    "alerts",
    "worklist",
    "worklist_absent",
    "earlier_unchanged",
}
COMMON_EXPECT = {"message_state", "reports_changed", "stored", "same_answer_as", "reused_key_of"}
HL7_EXPECT = {"ack", "msa2", "text_contains"} | COMMON_EXPECT
FHIR_EXPECT = {"http_status", "severity", "diagnostics_contains"} | COMMON_EXPECT
REPORT_KEYS = {
    "status",
    "attached",
    "critical",
    "observations",
    "comments",
    "comments_contains",
    "observation_comments",
    "attachments",
    "attachment_kinds",
    "attachment_media",
    "needs_review",
    "value_contains",
    "value_longer_than",
    "patient_name_contains",
    "conflict",
}
SAMPLE = {
    "{MRN}": "MRN0000001",
    "{ORDER}": "ORD-1",
    "{ORDER2}": "ORD-2",
    "{ORDER3}": "ORD-3",
    "{OTHER_MRN}": "OT0000001",
    "{CONTROL}": "C1",
}


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".hl7", ".json"))


def test_the_corpus_is_large_enough_and_every_file_is_used() -> None:
    files = [f for f in corpus_files() if f != "manifest.json"]
    used = {step["file"] for case in CASES for step in case["steps"]}
    assert sorted(set(files) - used) == [], "files no case uses"
    assert sorted(used - set(files)) == [], "files the manifest names that do not exist"
    assert len([f for f in files if f.endswith(".hl7")]) >= 30
    assert len([f for f in files if f.endswith(".json")]) >= 10
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert [n for n in names if f"`{n}`" not in readme] == [], "cases missing from the README"


def test_the_manifest_says_only_what_the_runner_checks() -> None:
    """A misspelt key would silently check nothing."""
    for case in CASES:
        assert set(case) == CASE_KEYS, case["name"]
        assert case["source"], case["name"]
        assert case["quirks"], case["name"]
        for step in case["steps"]:
            where = f"{case['name']}: {step['file']}"
            assert set(step) <= STEP_KEYS, where
            if step["channel"] == "fhir":
                assert step["file"].endswith(".json"), where
                assert set(step["expect"]) <= FHIR_EXPECT, where
                assert {"http_status", "severity"} <= set(step["expect"]), where
            else:
                assert step["channel"] in ("hl7v2", "mllp"), where
                assert step["file"].endswith(".hl7"), where
                assert step["separator"] in ("\r", "\n", "\r\n"), where
                assert step["encoding"] in ("utf-8", "gb18030", "latin-1"), where
                assert isinstance(step["bom"], bool), where
                assert set(step["expect"]) <= HL7_EXPECT, where
                assert "ack" in step["expect"], where
            for report in step.get("reports", []):
                assert set(report) <= REPORT_KEYS, where
            for entry in step.get("worklist", []):
                assert entry.partition("@")[2] in ("", *AUDIENCE_READER), where
            if step.get("encoding", "utf-8") != "utf-8":
                raw = encode((CORPUS / step["file"]).read_text(encoding="utf-8"), step, SAMPLE)
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")  # else the case would not test the decoding
