"""Parsing lab messages in the shapes real senders produce: HL7 v2.2 to v2.6 from several
kinds of LIS (sparse MSH, ORC before OBR, NTE comments, GB 18030, escapes, ED/RP documents),
FHIR R4 Bundles with panels and Patients, and the critical-value assessment of what they
carry. Pure: no database. The messages are written for these tests, after public samples
(HL7 v2.5.1 LRI/NIST test messages, HAPI and LIS vendor examples)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.reports import domain, fhir, hl7v2
from app.reports.domain import ParsedObservation, ParsedReport, ReportStatus

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def hl7(*segments: str, sep: str = "\r") -> str:
    return sep.join(segments) + sep


def reports_of(text: str) -> list[ParsedReport]:
    return hl7v2.parse_oru(hl7v2.parse_message(text), tz=TZ)[1]


def one_report(text: str) -> ParsedReport:
    (report,) = reports_of(text)
    return report


MSH_251 = (
    "MSH|^~\\&|LIS^2.16.840.1.113883.3.72.7.1^ISO|LAB^2.16.840.1.113883.3.72.7.2^ISO|PB|VIP|"
    "20261128093000+0800||ORU^R01^ORU_R01|LRI-0001|P|2.5.1|||NE|NE|CHN||||"
    "LRI_Common_Component^^2.16.840.1.113883.9.16^ISO"
)
PID_251 = (
    "PID|1||MRN-7001^^^HOSP&2.16.840.1.113883.19.3.2.1&ISO^MR~320102199004121234^^^CHN^NNCHN||"
    "EVERYWOMAN^EVE^E^^^^L~EVE^EVE^^^^^A||19900412|F|||1 Main St^^Nanjing^JS^210000^CHN"
)


def obx(n: int, kind: str, code: str, value: str, unit: str = "", status: str = "F") -> str:
    return f"OBX|{n}|{kind}|{code}||{value}|{unit}|||||{status}"


def simple(*obxs: str, obr25: str = "F", msh: str = MSH_251) -> str:
    return hl7(
        msh,
        PID_251,
        "ORC|RE|ORD-1^PB|LAB-1^LIS",
        f"OBR|1|ORD-1^PB|LAB-1^LIS|24317-0^CBC^LN|||20261128080000|||||||||||||||20261128092500|||{obr25}",
        *obxs,
    )


# Reading MSH-10 and the bytes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "control_id"),
    [
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01|C-1|P|2.5\rPID|1", "C-1"),
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01|C-2|P|2.5\nPID|1", "C-2"),
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01|C-3|P|2.5\r\nPID|1", "C-3"),
        ("\ufeffMSH|^~\\&|A|B|C|D|2026||ORU^R01|C-4|P|2.5", "C-4"),
        ("MSH#^~\\&#A#B#C#D#2026##ORU^R01#C-5#P#2.5", "C-5"),  # MSH-1 is whatever follows MSH
        ("\x0bMSH|^~\\&|A|B|C|D|2026||ORU^R01|C-6\x1c\r", "C-6"),  # MLLP framing left on
        ("junk\rMSH|^~\\&|A|B|C|D|2026||ORU^R01|C-7|P", "C-7"),  # the first MSH segment
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01||P|2.5", None),
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01", None),  # cut before MSH-10
        ("MSH|^~\\&|A|B|C|D|2026||ORU^R01|" + "9" * 200 + "|P", None),
        ("PID|1||X", None),
        ("", None),
    ],
)
def test_control_id_of_rough_text(text: str, control_id: str | None) -> None:
    assert hl7v2.control_id_of(text) == control_id


def test_the_exceptions_carry_the_control_id() -> None:
    assert hl7v2.Hl7Rejected("no", control_id="C9").control_id == "C9"
    assert hl7v2.Hl7Unprocessable("no", "C9").control_id == "C9"
    assert hl7v2.Hl7Rejected("no").control_id is None
    assert str(hl7v2.Hl7Unprocessable("why", control_id="C9")) == "why"


GB_MSH = "MSH|^~\\&|LIS|{facility}|PB|VIP|20261128093000||ORU^R01|{cid}|P|2.4||||||{charset}"


def gb_message(charset: str, cid: str = "GB-1", facility: str = "HOSP") -> str:
    return hl7(
        GB_MSH.format(facility=facility, cid=cid, charset=charset),
        "PID|1||MRN-88^^^HOSP^MR||王^芳||19950301|F",
        "OBR|1|ORD-88|LAB-88|CBC^血常规^L|||20261128080000||||||||||||||||||F",
        "NTE|1|L|标本轻度溶血",
        "OBX|1|NM|HGB^血红蛋白^L||65|g/L|110-150|L|||F",
        "OBX|2|ST|COMMENT^备注^L||请复查||||||F",
    )


@pytest.mark.parametrize("charset", ["GB 18030-2000", "GB18030", "GBK", "GB2312", "CP936"])
def test_a_chinese_lis_in_gb18030(charset: str) -> None:
    raw = gb_message(charset).encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the test is about bytes that are not UTF-8
    report = one_report(hl7v2.decode(raw))
    assert report.patient is not None
    assert report.patient.name == "王芳"  # a Chinese name: family + given, no space
    assert report.display == "血常规"
    assert report.comments == "标本轻度溶血"
    assert [(o.display, o.value) for o in report.observations] == [
        ("血红蛋白", "65"),
        ("备注", "请复查"),
    ]


def test_gbk_bytes_that_read_as_a_bar_before_msh18() -> None:
    """瑋 is 0xAC 0x7C in GBK: read as ASCII, the hospital's name holds a '|'."""
    assert "瑋".encode("gb18030")[1:] == b"|"
    raw = gb_message("GB 18030-2000", facility="瑋康妇产医院").encode("gb18030")
    text = hl7v2.decode(raw)
    assert "瑋康妇产医院" in text
    assert one_report(text).patient == domain.PatientIdentity(
        "MRN-88", "王芳", date(1995, 3, 1), "F"
    )


def test_gb18030_without_msh18_is_refused_not_guessed() -> None:
    raw = gb_message("").encode("gb18030")
    with pytest.raises(hl7v2.Hl7Rejected) as caught:
        hl7v2.decode(raw)
    assert "not UTF-8 and MSH-18 names no character set" in str(caught.value)
    assert caught.value.control_id == "GB-1"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\xef\xbb\xbfMSH|^~\\&|A", "MSH|^~\\&|A"),  # a BOM, from a Windows LIS
        ("MSH|^~\\&|A|Zoë".encode(), "MSH|^~\\&|A|Zoë"),  # no MSH-18: UTF-8
        (
            ("MSH|^~\\&|A|Zoë" + "|" * 14 + "UNICODE UTF-8").encode(),
            "MSH|^~\\&|A|Zoë" + "|" * 14 + "UNICODE UTF-8",
        ),
        (
            ("MSH|^~\\&|A|Zoë" + "|" * 14 + "8859/1").encode("latin-1"),
            "MSH|^~\\&|A|Zoë" + "|" * 14 + "8859/1",
        ),
        (
            ("MSH|^~\\&|A|Łódź" + "|" * 14 + "8859/2").encode("iso8859-2"),
            "MSH|^~\\&|A|Łódź" + "|" * 14 + "8859/2",
        ),
        (b"MSH|^~\\&|A|B" + b"|" * 14 + b"ASCII", "MSH|^~\\&|A|B" + "|" * 14 + "ASCII"),
        # The bare, deprecated UNICODE that analysers send with UTF-8 bytes.
        (
            ("MSH|^~\\&|迈瑞|B" + "|" * 14 + "UNICODE").encode(),
            "MSH|^~\\&|迈瑞|B" + "|" * 14 + "UNICODE",
        ),
    ],
)
def test_decode_honours_msh18(raw: bytes, text: str) -> None:
    assert hl7v2.decode(raw) == text


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("MSH|^~\\&|A|王|||||ORU^R01|E-1|P|2.5||||||UNICODE".encode("gb18030"), "not valid"),
        (b"MSH|^~\\&|A|B|||||ORU^R01|E-1|P|2.5||||||UNICODE UTF-16", "not supported"),
        (b"MSH|^~\\&|A|B|||||ORU^R01|E-1|P|2.5||||||KLINGON-8", "'KLINGON-8'"),
        ("MSH|^~\\&|A|Zoë|||||ORU^R01|E-1|P|2.5||||||ASCII".encode(), "not valid ASCII"),
        ("MSH|^~\\&|A|B|||||ORU^R01|E-1|P|2.5\rPID|1||\xff".encode("latin-1"), "byte 0xFF"),
        (b"MSH|^~\\&|A|B|||||ORU^R01|E-1|P|2.5\rPID|1\x00|", "NUL byte"),
    ],
)
def test_decode_refuses_what_it_cannot_read_and_echoes_msh10(raw: bytes, said: str) -> None:
    with pytest.raises(hl7v2.Hl7Rejected) as caught:
        hl7v2.decode(raw)
    assert said in str(caught.value)
    assert caught.value.control_id == "E-1"


def test_a_bom_is_stripped_from_text_too() -> None:
    text = "\ufeff" + simple(obx(1, "NM", "718-7^Hgb^LN", "120", "g/L"))
    header, (report,) = hl7v2.parse_oru(hl7v2.parse_message(text), tz=TZ)
    assert header.control_id == "LRI-0001"
    assert report.observations[0].numeric == 120.0


def test_wrong_separators_are_named_and_stay_readable_in_the_ack() -> None:
    with pytest.raises(hl7v2.Hl7Rejected) as caught:
        hl7v2.parse_message("MSH|^~\\#|LIS|H|PB|VIP|2026||ORU^R01|SEP-1|P|2.5\r")
    text = str(caught.value)
    assert "MSH-1 must be '|' and MSH-2 '^~\\&'" in text
    assert caught.value.control_id == "SEP-1"
    msa = hl7v2.ack(None, "AR", text, now=NOW, control_id=caught.value.control_id).split("\r")[1]
    code, echoed, sent = msa.split("|")[1:]
    assert (code, echoed) == ("AR", "SEP-1")
    assert hl7v2.unescape(sent) == text[:200]  # a receiver reads back exactly what we said


# The ACK -----------------------------------------------------------------------------------


def test_the_ack_escapes_cuts_and_echoes() -> None:
    msa = hl7v2.ack(None, "AE", "a|b^c~d\\e&f\r\ng", now=NOW, control_id="X-1").split("\r")[1]
    assert msa == "MSA|AE|X-1|a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f  g"
    long = hl7v2.ack(None, "AE", "x" * 198 + "|tail", now=NOW).split("\r")[1]
    assert long.split("|", 3)[3] == "x" * 198  # \F\ would pass 200: never cut inside it
    framed = hl7v2.ack(None, "AE", "bad \x0b\x1c byte", now=NOW)
    assert "\x0b" not in framed
    assert "\x1c" not in framed  # MLLP framing in a text would end the frame


def test_the_ack_echoes_msh10_of_a_parsed_and_of_a_sparse_message() -> None:
    full = hl7v2.parse_message(simple(obx(1, "NM", "718-7^Hgb^LN", "120", "g/L")))
    msh, msa = hl7v2.ack(full, "AA", "ok", now=NOW).strip("\r").split("\r")
    assert msa == "MSA|AA|LRI-0001|ok"
    assert msh.startswith("MSH|^~\\&|PREGNANCY-BUTLER|VIP-CLINIC|")
    sparse = hl7v2.parse_message("MSH|^~\\&|LCS|LCA|PB|VIP|199807311532||ORU|3630\r")
    msh, msa = hl7v2.ack(sparse, "AE", "no OBR", now=NOW).strip("\r").split("\r")
    assert msa == "MSA|AE|3630|no OBR"
    assert msh.split("|")[4:6] == ["LCS", "LCA"]


def test_the_ack_falls_back_to_the_given_control_id() -> None:
    parsed = hl7v2.parse_message("MSH|^~\\&|LIS|H|PB|VIP|2026||ORU^R01||P|2.5\r")
    msa = hl7v2.ack(parsed, "AR", "no id", now=NOW, control_id="ROUGH-1").split("\r")[1]
    assert msa == "MSA|AR|ROUGH-1|no id"


# Shapes of ORU^R01 -------------------------------------------------------------------------


def test_v22_sparse_msh_orc_placer_and_ntes() -> None:
    """A v2.2 reference-lab shape: MSH stops at MSH-12, MSH-9 without a structure, PID-3
    without an identifier type, CE results with NTE lines under them."""
    text = hl7(
        "MSH|^~\\&|LCS|LCA|LIS|TEST9999|199807311532||ORU^R01|3630|P|2.2",
        "PID|3|2161348473|20923085580|01572633|TESTPAT^JANE||19730204|F",
        "ORC|NW|8642753100013^LIS|20923085580^LCS||||||19980728000000",
        "OBR|1|8642753100013^LIS|20923085580^LCS|083824^PANEL 083824^L|||19980728083600||||||"
        "|19980728000000||||||20923085580||19980730041800|||F",
        "OBX|1|CE|001719^HIV-1 ABS, SEMI-QN^L||NEG^Negative^L||||||F",
        "NTE|1|L|Result: NEGATIVE by EIA screen.",
        "NTE|2|L|No antibodies to HIV-1 detected.",
        "OBX|2|CE|169999^.^L||SPRCS|||||N|F",
        "NTE|1|L|NOTE: Submission of serum",
        "NTE|2|L|separator tube recommended.",
        sep="\n",
    )
    header, (report,) = hl7v2.parse_oru(hl7v2.parse_message(text), tz=TZ)
    assert (header.version, header.message_type) == ("2.2", "ORU^R01")
    assert (report.placer_order, report.filler_order) == ("8642753100013", "20923085580")
    assert report.patient_mrn == "20923085580"  # PID-3 (v2.2: internal id), not PID-2
    assert report.patient == domain.PatientIdentity(
        "20923085580", "TESTPAT JANE", date(1973, 2, 4), "F"
    )
    first, second = report.observations
    assert first.value == "Negative (NEG)"
    assert first.comments == "Result: NEGATIVE by EIA screen.\nNo antibodies to HIV-1 detected."
    assert second.comments == "NOTE: Submission of serum\nseparator tube recommended."
    assert report.comments is None
    assert report.status.status is ReportStatus.FINAL


def test_v22_without_a_trigger_event_and_without_msh11() -> None:
    report = one_report(
        hl7(
            "MSH|^~\\&|LAB||PB||19990101||ORU|M-22",
            "PID|1||A-1",
            "OBR|1|ORD-22||GLU^Glucose^L",
            "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F",
        )
    )
    assert (report.placer_order, report.observations[0].numeric) == ("ORD-22", 5.4)


def test_v231_identifiers_units_and_sn() -> None:
    report = one_report(
        hl7(
            "MSH|^~\\&|LAB|HOSP|PB|VIP|20261128093000||ORU^R01|V231-1|P|2.3.1",
            "PID|1|X-9|555-44-4444^^^SSA^SS~M-231^^^HOSP^MR||DOE^JANE^Q||19870615|F",
            "OBR|1|ORD-231|LAB-231|GLU^Glucose^L|||20261128070000",
            "OBX|1|SN|1554-5^GLUCOSE^LN||^182|mg/dl^^ISO+|70_105|H|||F",
            "OBX|2|SN|5000-1^TITRE^LN||^1^:^128||||||F",
            "OBX|3|SN|5001-1^RANGE^LN||^10^-^20|/HPF|||||F",
        )
    )
    assert report.patient_mrn == "M-231"  # the MR repetition, not the first
    assert report.patient is not None
    assert report.patient.name == "DOE JANE Q"
    glucose, titre, cells = report.observations
    assert (glucose.numeric, glucose.unit, glucose.unit_code) == (182.0, "mg/dl", None)
    assert (titre.value, titre.numeric) == ("1:128", None)
    assert (cells.value, cells.numeric) == ("10-20", None)


def test_v251_orc_supplies_the_order_numbers_and_notes_go_where_they_belong() -> None:
    text = hl7(
        MSH_251,
        "SFT|NIST Lab, Inc.^L^^^^NIST&2.16.840.1.113883.3.987.1&ISO^XX^^^123544|3.6.23|A-1 Lab",
        PID_251,
        "NTE|1||Patient fasting since 22:00.",
        "ORC|RE|ORD-7788^PB^2.16.840.1.113883.19.3.1^ISO|LAB-55^LIS^2.16.840.1.113883.19.3.2^ISO",
        "NTE|1||Ordered as urgent.",
        "OBR|1|||24317-0^Hemogram^LN|||20261128080000|||||||||||||||20261128092500|||F",
        "NTE|1||Sample slightly haemolysed.~Values may be affected.",
        "OBX|1|NM|718-7^Hemoglobin^LN||6.5|g/dL^gram per deciliter^UCUM|11.0-15.0|LL|||F",
        "NTE|1||Called to Dr Wang at 09:40.",
        "NTE|2||Read back confirmed.",
        "OBX|2|NM|777-3^Platelets^LN||210|10*9/L^^UCUM|125-350|N|||F",
        "SPM|1|S-1||BLD^Whole blood^HL70487|||||||P||||||20261128073000|20261128075000",
    )
    report = one_report(text)
    assert (report.placer_order, report.filler_order) == ("ORD-7788", "LAB-55")
    assert report.source_key == "LAB-55:24317-0"
    assert report.comments == (
        "Patient fasting since 22:00.\nOrdered as urgent.\n"
        "Sample slightly haemolysed.\nValues may be affected."
    )
    hgb, plt = report.observations
    assert hgb.comments == "Called to Dr Wang at 09:40.\nRead back confirmed."
    assert plt.comments is None
    assert (hgb.unit, hgb.unit_code) == ("gram per deciliter", "g/dL")
    assert (plt.unit, plt.unit_code) == ("10*9/L", "10*9/L")
    assert report.patient == domain.PatientIdentity(
        "MRN-7001", "EVERYWOMAN EVE E", date(1990, 4, 12), "F"
    )


def test_an_orc_belongs_to_the_obr_after_it() -> None:
    reports = reports_of(
        hl7(
            MSH_251,
            PID_251,
            "ORC|RE|P-1|F-1",
            "OBR|1|||A^Panel A^L",
            "OBX|1|NM|X^x^L||1||||||F",
            "ORC|RE|P-2|F-2",
            "OBR|2|OBR-P-2||B^Panel B^L",
            "OBX|1|NM|Y^y^L||2||||||F",
            "OBR|3|||C^Panel C^L",
            "OBX|1|NM|Z^z^L||3||||||F",
        )
    )
    assert [(r.placer_order, r.filler_order) for r in reports] == [
        ("P-1", "F-1"),
        ("OBR-P-2", "F-2"),  # OBR-2 wins; ORC-3 fills the empty OBR-3
        (None, None),  # no ORC of its own: nothing borrowed from the one before
    ]


def test_v26_documents_ed_and_rp() -> None:
    data = base64.b64encode(PDF).decode()
    report = one_report(
        hl7(
            "MSH|^~\\&|LIS|HOSP|PB|VIP|20261128093000||ORU^R01^ORU_R01|V26-1|P|2.6",
            "PID|1||M-26^^^HOSP^MR||LI^NA",
            "OBR|1|ORD-26|LAB-26|11502-2^Laboratory report^LN||||||||||||||||||20261128092500|||F",
            f"OBX|1|ED|11502-2^Laboratory report^LN||LIS^AP^PDF^Base64^{data}||||||F",
            "OBX|2|RP|18748-4^Imaging report^LN||https://lis.example/doc?id=7&v=2^LIS^AP^PDF||||||F",
            "OBX|3|ED|IMG^Smear^L||LIS^IM^JPEG^Hex^FFD8FFE0||||||F",
        )
    )
    pdf, pointer, image = report.observations
    assert pdf.value == f"PDF document ({len(PDF):,} bytes)"
    assert pdf.attachments == (
        domain.ParsedAttachment(kind="ED", media_type="application/pdf", data=PDF, pointer=None),
    )
    assert pointer.value == "https://lis.example/doc?id=7&v=2"  # a raw & in a URL kept
    assert pointer.attachments == (
        domain.ParsedAttachment(
            kind="RP",
            media_type="application/pdf",
            data=None,
            pointer="https://lis.example/doc?id=7&v=2",
        ),
    )
    assert image.attachments[0].data == b"\xff\xd8\xff\xe0"
    assert image.attachments[0].media_type == "image/jpeg"
    assert image.value == "JPEG image (4 bytes)"


def test_bad_base64_is_unprocessable_and_names_the_obx() -> None:
    text = simple(
        obx(1, "NM", "718-7^Hgb^LN", "120", "g/L"),
        "OBX|2|ED|11502-2^Report^LN||LIS^AP^PDF^Base64^JVBERi0x!!!||||||F",
    )
    with pytest.raises(hl7v2.Hl7Unprocessable) as caught:
        reports_of(text)
    assert "Segment 6 (OBX 2)" in str(caught.value)
    assert "Base64" in str(caught.value)
    assert caught.value.control_id == "LRI-0001"


def test_repeated_values_are_all_kept() -> None:
    long_text = "Morphology: " + "normocytic normochromic red cells, " * 200
    report = one_report(
        simple(
            "OBX|1|CWE|ABO^Blood group^L||A^Group A^L~POS^Rh positive^L||||||F",
            "OBX|2|ST|ORG^Organisms^L||E. coli~Klebsiella||||||F",
            f"OBX|3|TX|MORPH^Morphology^L||{long_text}~Second paragraph.||||||F",
            "OBX|4|FT|INT^Interpretation^L||Line one\\.br\\Line two||||||F",
        )
    )
    coded, text, narrative, formatted = report.observations
    assert coded.value == "Group A (A); Rh positive (POS)"
    assert text.value == "E. coli; Klebsiella"
    assert narrative.value == f"{long_text}\nSecond paragraph."
    assert narrative.value is not None
    assert len(narrative.value) > 7000  # kept whole
    assert formatted.value == "Line one\nLine two"


def test_escape_sequences_are_unescaped() -> None:
    report = one_report(
        simple(
            "OBX|1|ST|X^Note \\T\\ remark^L||pH \\F\\ 7.4 \\S\\ \\R\\ \\E\\ done||||||F",
            "OBX|2|NM|777-3^Platelets^LN||40|10\\S\\9/L|125-350|LL|||F",
            "OBX|3|TX|Y^Comment^L||caf\\XC3A9\\ \\Zfoo\\ C:\\path||||||F",
        )
    )
    note, plt, comment = report.observations
    assert note.display == "Note & remark"
    assert note.value == "pH | 7.4 ^ ~ \\ done"
    assert plt.unit == "10^9/L"
    assert comment.value == "café \\Zfoo\\ C:\\path"  # unknown and unterminated kept as sent


@pytest.mark.parametrize(
    ("kind", "value", "comparator", "numeric"),
    [
        ("SN", "<^2.0", "<", 2.0),
        ("SN", ">=^22", ">=", 22.0),
        ("SN", "=^5.5", "=", 5.5),
        ("SN", "^182", None, 182.0),
        ("SN", "<>^5", None, None),
        ("SN", "^2^+", None, None),
        ("ST", "<2.0", "<", 2.0),
        ("ST", "< 2.0", "<", 2.0),
        ("NM", ">30", ">", 30.0),
        ("NM", "≥22", ">=", 22.0),
        ("NM", "≤0.5", "<=", 0.5),
        ("NM", "＜２．０", "<", 2.0),  # full-width, from a Chinese LIS
        ("NM", "5.1", None, 5.1),
        ("ST", "7", None, 7.0),
        ("NM", "2,5", None, None),  # a decimal comma is not read as a number
        ("ST", "negative", None, None),
        ("ST", "3-5", None, None),
    ],
)
def test_numbers_and_comparators(
    kind: str, value: str, comparator: str | None, numeric: float | None
) -> None:
    (obs,) = one_report(simple(obx(1, kind, "2345-7^Glucose^LN", value, "mmol/L"))).observations
    assert (obs.comparator, obs.numeric) == (comparator, numeric)


@pytest.mark.parametrize(
    ("unit", "shown", "code"),
    [
        ("mmol/L^millimole per liter^UCUM", "millimole per liter", "mmol/L"),
        ("mmol/L^^ucum", "mmol/L", "mmol/L"),
        ("mmol/L^^ANS+", "mmol/L", None),
        ("mg/dL^^ISO+", "mg/dL", None),
        ("MMOL^millimoles^L^mmol/L^^UCUM", "millimoles", "mmol/L"),  # the alternate is UCUM
        ("mmol/L", "mmol/L", None),
    ],
)
def test_obx6_units(unit: str, shown: str, code: str | None) -> None:
    (obs,) = one_report(simple(obx(1, "NM", "2345-7^Glucose^LN", "5", unit))).observations
    assert (obs.unit, obs.unit_code) == (shown, code)


@pytest.mark.parametrize(
    ("segment", "said"),
    [
        ("OBX|2|NM|||5|g/L|||||F", "Segment 6 (OBX 2): OBX-3"),
        ("OBX|2||718-7^Hgb^LN||5|g/L|||||F", "Segment 6 (OBX 2): OBX-2"),
        ("OBX|2|NM|718-7^Hgb^LN||5|g/L||||", "Segment 6 (OBX 2): OBX-11"),
        ("OBX|2|NM|718-7^Hgb^LN||5|g/", "Segment 6 (OBX 2): OBX-11"),  # cut off mid-segment
    ],
)
def test_required_obx_fields(segment: str, said: str) -> None:
    text = simple(obx(1, "NM", "777-3^Plt^LN", "210", "10*9/L"), segment)
    with pytest.raises(hl7v2.Hl7Unprocessable) as caught:
        reports_of(text)
    assert said in str(caught.value)
    assert caught.value.control_id == "LRI-0001"


def test_an_empty_obx5_needs_no_obx2_and_an_empty_pid3_is_not_an_error() -> None:
    report = one_report(
        hl7(
            MSH_251,
            "PID|1||||NOBODY^KNOWN",
            "OBR|1|ORD-1||24317-0^CBC^LN",
            "OBX|1||11156-7^Leukocytes^LN||||||||I",
        )
    )
    assert report.patient_mrn is None  # reconciliation will find her
    assert report.patient is not None
    assert report.patient.name == "NOBODY KNOWN"
    assert report.observations[0].value is None


def test_an_obx_before_any_obr_is_unprocessable() -> None:
    text = hl7(MSH_251, PID_251, obx(1, "NM", "718-7^Hgb^LN", "120", "g/L"), "OBR|1|O||X^Y")
    with pytest.raises(hl7v2.Hl7Unprocessable, match="Segment 3: an OBX before any OBR"):
        reports_of(text)


def test_final_with_pending_results_is_partial() -> None:
    results = [obx(i, "NM", f"C{i}^c^L", "1", "", s) for i, s in enumerate("FPIFPFFP", start=1)]
    report = one_report(simple(*results, obr25="F"))
    assert report.status == domain.StatusReading(
        ReportStatus.PARTIAL, True, "OBR-25 F but 4 of 8 results pending (OBX-11 P/I): partial"
    )
    corrected = one_report(simple(obx(1, "NM", "A^a^L", "1", "", "C"), obr25="C"))
    assert corrected.status.status is ReportStatus.CORRECTED
    all_final = one_report(simple(obx(1, "NM", "A^a^L", "1", "", "F"), obr25="F"))
    assert (all_final.status.status, all_final.status.derived) == (ReportStatus.FINAL, False)


@pytest.mark.parametrize(
    ("pid5", "name"),
    [
        ("王^芳", "王芳"),
        ("欧阳^娜娜", "欧阳娜娜"),
        ("张三", "张三"),
        ("WANG^FANG", "WANG FANG"),
        ("Smith&&van^Anna^Maria^^^^L", "Smith Anna Maria"),
        ("ALIAS^A^^^^^A~LEGAL^L^^^^^L", "LEGAL L"),
        ("", None),
    ],
)
def test_patient_names(pid5: str, name: str | None) -> None:
    report = one_report(
        hl7(MSH_251, f"PID|1||M1^^^H^MR||{pid5}||20000229", "OBR|1|O||X^Y", "OBX|1|NM|A||1||||||F")
    )
    assert report.patient == domain.PatientIdentity("M1", name, date(2000, 2, 29), None)


def test_several_patients_in_one_message() -> None:
    reports = reports_of(
        hl7(
            MSH_251,
            "PID|1||M-A^^^H^MR||A^ONE",
            "OBR|1|O-A||X^Y",
            "OBX|1|NM|A^a^L||1||||||F",
            "PID|2||M-B^^^H^MR||B^TWO",
            "OBR|1|O-B||X^Y",
            "OBX|1|NM|A^a^L||2||||||F",
        )
    )
    assert [(r.patient_mrn, r.patient.name if r.patient else None) for r in reports] == [
        ("M-A", "A ONE"),
        ("M-B", "B TWO"),
    ]


# Critical values --------------------------------------------------------------------------

TABLE = domain.load_thresholds()


def result(
    code: str,
    value: str | None,
    unit: str | None,
    *,
    unit_code: str | None = None,
    flag: str | None = None,
    kind: str = "NM",
) -> ParsedObservation:
    comparator, numeric = domain.split_comparator(value)
    return ParsedObservation(
        code, "LN", None, kind, value, numeric, unit, None, flag, "F", comparator, unit_code
    )


@pytest.mark.parametrize(
    ("obs", "critical"),
    [
        (result("718-7", "6.5", "g/dL"), "haemoglobin 6.5 g/dL (= 65 g/L) < 70"),
        (result("718-7", "6.9", "g/dl"), "haemoglobin 6.9 g/dl (= 69 g/L) < 70"),
        (result("718-7", "7.0", "g/dL"), None),  # 70 g/L: the limit itself is not below it
        (result("718-7", "69", "gm/L"), "haemoglobin 69 gm/L (= 69 g/L) < 70"),
        (result("718-7", "70", "g/L"), None),
        (result("2345-7", "40", "mg/dL"), "glucose 40 mg/dL (= 2.22 mmol/L) < 2.8"),
        (result("2345-7", "45", "mg/dL"), "glucose 45 mg/dL (= 2.5 mmol/L) < 2.8"),
        (result("2345-7", "50", "mg/dL"), "glucose 50 mg/dL (= 2.78 mmol/L) < 2.8"),
        (result("2345-7", "51", "mg/dL"), None),  # 2.83 mmol/L
        (result("2345-7", "55", "mg/dL"), None),  # 3.05 mmol/L
        (result("2345-7", "397", "mg/dL"), "glucose 397 mg/dL (= 22.04 mmol/L) >= 22"),
        (result("2345-7", "396", "mg/dL"), None),  # 21.98 mmol/L
        (result("14749-6", "2.79", "mmol/L"), "glucose 2.79 mmol/L < 2.8"),
        (result("15074-8", "22", "mmol/L"), "glucose 22 mmol/L >= 22"),
        (result("14771-0", "21.9", "mmol/L"), None),
        (result("2823-3", "2.8", "mmol/L"), None),
        (result("2823-3", "2.7", "mEq/L"), "potassium 2.7 mEq/L (= 2.7 mmol/L) < 2.8"),
        (result("2823-3", "6.2", "mmol/L"), None),  # "above 6.2": 6.2 itself is not
        (result("2823-3", "6.21", "mmol/l"), "potassium 6.21 mmol/l > 6.2"),
        (result("777-3", "49", "K/uL"), "platelets 49 K/uL (= 49 10*9/L) < 50"),
        (result("777-3", "50", "K/uL"), None),
        (result("777-3", "40", "×10⁹/L"), "platelets 40 ×10⁹/L (= 40 10*9/L) < 50"),
        (result("777-3", "40", "x10^9/L"), "platelets 40 x10^9/L (= 40 10*9/L) < 50"),
        (result("777-3", "40000", "/µL"), "platelets 40000 /µL (= 40 10*9/L) < 50"),
        (result("PLT", "40", "10^3/μL"), "platelets 40 10^3/μL (= 40 10*9/L) < 50"),
    ],
)
def test_thresholds_in_any_unit_spelling(obs: ParsedObservation, critical: str | None) -> None:
    assert domain.assess(obs, TABLE) == domain.Assessment(critical, None)
    assert domain.critical_reason(obs, TABLE) == critical


@pytest.mark.parametrize(
    ("obs", "assessment"),
    [
        (result("2345-7", "<2.0", "mmol/L"), ("glucose < 2.0 mmol/L, below 2.8", None)),
        (result("2345-7", "<2.8", "mmol/L"), ("glucose < 2.8 mmol/L, below 2.8", None)),
        (result("2345-7", ">30", "mmol/L"), ("glucose > 30 mmol/L, at or above 22", None)),
        (result("2345-7", ">=22", "mmol/L"), ("glucose >= 22 mmol/L, at or above 22", None)),
        (result("2345-7", ">25", "mmol/L"), ("glucose > 25 mmol/L, at or above 22", None)),
        (result("2345-7", "=2.5", "mmol/L"), ("glucose 2.5 mmol/L < 2.8", None)),
        (result("2345-7", ">3.0", "mmol/L"), (None, "cannot tell whether it is at or above 22")),
        (result("2345-7", "<5.0", "mmol/L"), (None, "cannot tell whether it is below 2.8")),
        (result("2345-7", "<=2.8", "mmol/L"), (None, "cannot tell whether it is below 2.8")),
        (result("2823-3", "<1.0", "mmol/L"), ("potassium < 1.0 mmol/L, below 2.8", None)),
        (result("2823-3", ">7", "mmol/L"), ("potassium > 7 mmol/L, above 6.2", None)),
        (result("2823-3", ">6.2", "mmol/L"), ("potassium > 6.2 mmol/L, above 6.2", None)),
        (result("2823-3", ">=6.2", "mmol/L"), (None, "cannot tell whether it is above 6.2")),
        (result("2823-3", ">3", "mmol/L"), (None, "above 6.2")),
        (result("777-3", ">400", "10*9/L"), (None, "cannot tell whether it is above 1000")),
        (result("777-3", "<900", "10*9/L"), (None, "cannot tell whether it is below 50")),
        (result("777-3", ">1200", "10*9/L"), ("platelets > 1200 10*9/L, above 1000", None)),
        (
            result("14628-2", ">=40", "umol/L"),
            ("total bile acids >= 40 umol/L, at or above 40", None),
        ),
        (result("14628-2", "<40", "umol/L"), (None, None)),  # surely not 40 or more
        (result("2345-7", "<36", "mg/dL"), ("glucose < 36 mg/dL (= 2 mmol/L), below 2.8", None)),
    ],
)
def test_comparators_are_intervals(
    obs: ParsedObservation, assessment: tuple[str | None, str | None]
) -> None:
    got = domain.assess(obs, TABLE)
    critical, review = assessment
    assert got.critical == critical
    if review is None:
        assert got.review is None
    else:
        assert got.review is not None
        assert review in got.review
        assert got.review.endswith("a clinician must look")


@pytest.mark.parametrize(
    ("obs", "review"),
    [
        (result("718-7", "5.0", "mmol/L"), "haemoglobin: unit 'mmol/L' not in the table"),
        (result("718-7", "65", None), "haemoglobin: no unit sent"),
        (result("718-7", "65", ""), "haemoglobin: no unit sent"),
        (result("2345-7", "haemolysed", "mmol/L", kind="ST"), "value 'haemolysed' is not"),
        (result("2345-7", "3-5", "mmol/L", kind="ST"), "value '3-5' is not a single number"),
        (result("2345-7", "2,5", "mmol/L", kind="ST"), "value '2,5'"),
    ],
)
def test_what_cannot_be_assessed_goes_to_a_clinician(obs: ParsedObservation, review: str) -> None:
    got = domain.assess(obs, TABLE)
    assert got.critical is None
    assert got.review is not None
    assert review in got.review
    assert got.review.endswith("; a clinician must look")
    assert len(got.review) <= 300


def test_nothing_to_assess() -> None:
    assert domain.assess(result("718-7", None, None), TABLE) == domain.Assessment(None, None)
    assert domain.assess(result("9999-9", "1", "furlong"), TABLE) == domain.Assessment(None, None)
    assert domain.assess(result("718-7", "120", "g/L"), TABLE) == domain.Assessment(None, None)


def test_the_ucum_code_is_preferred_to_the_display_unit() -> None:
    shown = result("777-3", "40", "thousand per microliter", unit_code="10*3/uL")
    assert domain.assess(shown, TABLE).critical == ("platelets 40 10*3/uL (= 40 10*9/L) < 50")
    # A display the table knows, against a UCUM code that says otherwise: the code decides.
    coded = result("718-7", "6.5", "g/L", unit_code="g/dL")
    assert domain.assess(coded, TABLE).critical == "haemoglobin 6.5 g/dL (= 65 g/L) < 70"


@pytest.mark.parametrize("flag", ["HH", "LL", "AA", "<<", ">>", "hh"])
def test_critical_flags_stand_whatever_the_unit(flag: str) -> None:
    obs = result("718-7", "65", "mmol/L", flag=flag)  # an unknown unit, but the lab says critical
    assert domain.assess(obs, TABLE) == domain.Assessment(f"718-7: flagged {flag.upper()}", None)


@pytest.mark.parametrize("status", ["W", "D", "X", "entered-in-error"])
def test_a_result_withdrawn_as_wrong_is_not_assessed(status: str) -> None:
    wrong = dataclasses.replace(result("718-7", "6.5", "g/dL", flag="LL"), status=status)
    assert domain.assess(wrong, TABLE) == domain.Assessment(None, None)
    assert domain.assess(dataclasses.replace(wrong, status="C"), TABLE).critical


def test_the_default_table() -> None:
    by_name = {t.name: t for t in TABLE}
    assert set(by_name) == {
        "haemoglobin",
        "platelets",
        "potassium",
        "glucose",
        "fibrinogen",
        "prothrombin time",
        "activated partial thromboplastin time",
        "white cells",
        "sodium",
        "calcium",
        "creatinine",
        "alanine aminotransferase",
        "aspartate aminotransferase",
        "total bile acids",
    }
    assert {"15074-8", "14749-6", "14771-0", "41653-7", "2345-7"} <= by_name["glucose"].codes
    assert {"14995-5", "1507-3", "1518-0", "1554-5", "14770-2"} <= by_name["glucose"].codes
    assert (by_name["glucose"].below, by_name["glucose"].at_or_above) == (2.8, 22.0)
    assert (by_name["potassium"].below, by_name["potassium"].above) == (2.8, 6.2)
    assert (by_name["haemoglobin"].below, by_name["haemoglobin"].above) == (70, 200)
    assert (by_name["platelets"].below, by_name["platelets"].above) == (50, 1000)
    assert by_name["total bile acids"].at_or_above == 40
    assert by_name["fibrinogen"].factor("mg/dL") == 0.01
    assert by_name["creatinine"].factor("mg/dL") == 88.42
    assert by_name["calcium"].factor("mEq/L") == 0.5
    assert all(t.source for t in TABLE)
    assert by_name["haemoglobin"].factor("G/DL") == 10
    assert by_name["platelets"].factor("giga.l-1") == 1
    assert by_name["haemoglobin"].factor("mmol/L") is None


def write_table(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"thresholds": list(entries)}), encoding="utf-8")
    return path


GOOD = {"name": "hb", "codes": ["718-7"], "unit": "g/L", "below": 70, "source": "test"}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"bellow": 70}, "unknown keys bellow"),
        ({"source": ""}, "source must be a non-empty string"),
        ({"below": "70"}, "below must be a number"),
        ({"below": True}, "below must be a number"),
        ({"below": None}, "needs below, above or at_or_above"),
        ({"codes": []}, "codes must be a non-empty list"),
        ({"units": {"g/dL": 0}}, "the factor of unit 'g/dL' must be a number > 0"),
        ({"units": {"g/dL": 10, "G/DL": 100}}, "two different factors"),
        ({"units": {"g/L": 2}}, "the canonical unit 'g/L' must have the factor 1"),
        ({"above": 60}, "below 70 is above the high limit 60"),
        ({"above": 90, "at_or_above": 90}, "not both"),
    ],
)
def test_a_malformed_table_fails_loudly(tmp_path: Path, change: dict[str, Any], said: str) -> None:
    path = write_table(tmp_path, GOOD, {**GOOD, "name": "broken", **change})
    with pytest.raises(ValueError, match="entry 2") as caught:
        domain.load_thresholds(path)
    assert said in str(caught.value)


def test_a_table_that_is_not_json_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        domain.load_thresholds(path)
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="list of thresholds"):
        domain.load_thresholds(path)


def test_a_unitless_rule_in_the_table(tmp_path: Path) -> None:
    path = write_table(tmp_path, {**GOOD, "units": {"": 1, "g/dL": 10}})
    (table,) = domain.load_thresholds(path)
    assert domain.assess(result("718-7", "65", None), [table]).critical == "hb 65 (= 65 g/L) < 70"


# What is stored -----------------------------------------------------------------------------


def sized(patient: domain.PatientIdentity | None = None, **observation: Any) -> ParsedReport:
    obs = ParsedObservation("718-7", None, None, "TX", "x", None, None, None, None, "F")
    return ParsedReport(
        source_key="k",
        placer_order=None,
        filler_order=None,
        patient_mrn=None,
        code=None,
        display=None,
        status=domain.StatusReading(ReportStatus.FINAL, False, "OBR-25 F"),
        effective_at=None,
        issued_at=None,
        conclusion=None,
        observations=[dataclasses.replace(obs, **observation)],
        patient=patient,
    )


def test_values_and_comments_are_not_limited_other_fields_are() -> None:
    domain.check_sizes(sized(value="x" * 60_000, comments="y" * 60_000))
    with pytest.raises(ValueError, match="unit_code is longer than 40"):
        domain.check_sizes(sized(unit_code="u" * 41))
    with pytest.raises(ValueError, match="comparator is longer than 2"):
        domain.check_sizes(sized(comparator="<<<"))
    long_pointer = domain.ParsedAttachment("RP", None, None, "p" * 1001)
    with pytest.raises(ValueError, match="attachment pointer is longer than 1000"):
        domain.check_sizes(sized(attachments=(long_pointer,)))
    with pytest.raises(ValueError, match="patient name is longer than 200"):
        domain.check_sizes(sized(patient=domain.PatientIdentity("M", "n" * 201)))


# FHIR ---------------------------------------------------------------------------------------

LOINC = "http://loinc.org"


def quantity(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": unit,
        **extra,
    }


def observation(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        **extra,
    }


def diagnostic_report(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "58410-2", "display": "CBC panel"}]},
        **extra,
    }


def bundle(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": res} for url, res in entries],
    }


PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [
        {"system": "urn:oid:2.16.156.10011.1.1", "value": "320102199004121234"},
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": "urn:example:hospital:mrn",
            "value": "MRN-0042",
        },
    ],
    "name": [{"family": "王", "given": ["芳"]}],
    "birthDate": "1990-04-12",
    "gender": "female",
}


def test_a_cbc_panel_with_hasmember_and_the_patient_in_the_bundle() -> None:
    panel = observation(
        "58410-2",
        hasMember=[
            {"reference": "urn:uuid:hgb"},
            {"reference": "Observation/plt"},
            {"reference": "urn:uuid:wbc"},
        ],
    )
    payload = bundle(
        (
            "urn:uuid:dr",
            diagnostic_report(
                identifier=[{"system": "urn:lis", "value": "R-1"}],
                subject={"reference": "urn:uuid:pat"},
                result=[{"reference": "urn:uuid:panel"}],
            ),
        ),
        ("urn:uuid:pat", PATIENT),
        ("urn:uuid:panel", panel),
        ("urn:uuid:hgb", observation("718-7", valueQuantity=quantity(62, "g/L"))),
        (
            "https://fhir.lis.example/Observation/plt",
            {**observation("777-3", valueQuantity=quantity(210, "10*9/L")), "id": "plt"},
        ),
        ("urn:uuid:wbc", observation("6690-2", valueQuantity=quantity(7.2, "10*9/L"))),
    )
    _, (report,) = fhir.parse_reports(payload)
    assert [o.code for o in report.observations] == ["718-7", "777-3", "6690-2"]  # no panel
    assert report.patient == domain.PatientIdentity("MRN-0042", "王芳", date(1990, 4, 12), "female")
    assert report.patient_mrn == "MRN-0042"  # the MR identifier, not the first one
    hgb = report.observations[0]
    assert (hgb.numeric, hgb.unit, hgb.unit_code) == (62.0, "g/L", "g/L")


def test_nested_panels_cycles_and_a_panel_with_its_own_value() -> None:
    contained = [
        {**observation("A", valueString="panel value", hasMember=[{"reference": "#b"}]), "id": "a"},
        {**observation("B", hasMember=[{"reference": "#c"}, {"reference": "#a"}]), "id": "b"},
        {**observation("C", valueQuantity=quantity(1, "g/L")), "id": "c"},
    ]
    payload = diagnostic_report(contained=contained, result=[{"reference": "#a"}])
    _, (report,) = fhir.parse_reports(payload)
    assert [o.code for o in report.observations] == ["A", "C"]  # B has no value; a -> b -> a


def test_panels_deeper_than_five_levels_are_refused() -> None:
    chain = [
        {**observation(f"P{i}", hasMember=[{"reference": f"#p{i + 1}"}]), "id": f"p{i}"}
        for i in range(7)
    ]
    payload = diagnostic_report(contained=chain, result=[{"reference": "#p0"}])
    with pytest.raises(fhir.FhirInvalid, match="deeper than 5"):
        fhir.parse_reports(payload)


@pytest.mark.parametrize(
    ("payload", "missing"),
    [
        (diagnostic_report(result=[{"reference": "Observation/elsewhere"}]), "Observation/else"),
        (
            bundle(
                ("urn:uuid:dr", diagnostic_report(result=[{"reference": "urn:uuid:panel"}])),
                ("urn:uuid:panel", observation("58410-2", hasMember=[{"reference": "urn:x"}])),
            ),
            "hasMember of 'urn:uuid:panel' 'urn:x'",
        ),
    ],
)
def test_a_reference_not_sent_is_refused_with_why(payload: dict[str, Any], missing: str) -> None:
    with pytest.raises(fhir.FhirInvalid) as caught:
        fhir.parse_reports(payload)
    text = str(caught.value)
    assert missing in text
    assert "results must be sent in the Bundle (or contained)" in text
    assert "this service does not fetch references" in text


@pytest.mark.parametrize(
    ("subject", "contained", "patient"),
    [
        ({"reference": "Patient/pat-1"}, [], ("MRN-0042", "王芳")),
        ({"reference": "#p"}, [{**PATIENT, "id": "p"}], ("MRN-0042", "王芳")),
        ({"reference": "Patient/not-sent"}, [], None),  # reconciliation, not an error
        ({"identifier": {"value": "M-9"}}, [], ("M-9", None)),
    ],
)
def test_the_subject(
    subject: dict[str, Any], contained: list[dict[str, Any]], patient: tuple[str, str | None]
) -> None:
    report_json = diagnostic_report(subject=subject, contained=contained)
    payload = bundle(("urn:uuid:dr", report_json), ("https://x.example/Patient/pat-1", PATIENT))
    _, (report,) = fhir.parse_reports(payload)
    if patient is None:
        assert (report.patient_mrn, report.patient) == (None, None)
    else:
        assert report.patient is not None
        assert (report.patient.mrn, report.patient.name) == patient
        assert report.patient_mrn == patient[0]


def test_human_name_text_wins_and_western_names_keep_a_space() -> None:
    person = {**PATIENT, "name": [{"family": "Everywoman", "given": ["Eve", "E"]}]}
    _, (report,) = fhir.parse_reports(
        diagnostic_report(contained=[{**person, "id": "p"}], subject={"reference": "#p"})
    )
    assert report.patient is not None
    assert report.patient.name == "Everywoman Eve E"
    person = {**PATIENT, "name": [{"text": "Eve Everywoman", "family": "Everywoman"}]}
    _, (report,) = fhir.parse_reports(
        diagnostic_report(contained=[{**person, "id": "p"}], subject={"reference": "#p"})
    )
    assert report.patient is not None
    assert report.patient.name == "Eve Everywoman"


def test_report_identity_keeps_system_and_code_apart() -> None:
    def key(**extra: Any) -> str:
        _, (report,) = fhir.parse_reports(diagnostic_report(**extra))
        return report.source_key

    a = key(identifier=[{"system": "urn:lab-a", "value": "42"}])
    b = key(identifier=[{"system": "urn:lab-b", "value": "42"}])
    assert a == "id:urn:lab-a|42:http://loinc.org|58410-2"
    assert b == "id:urn:lab-b|42:http://loinc.org|58410-2"
    other_code = key(
        identifier=[{"system": "urn:lab-a", "value": "42"}],
        code={"coding": [{"system": LOINC, "code": "24323-8"}]},
    )
    assert len({a, b, other_code}) == 3
    assert key(identifier=[{"value": "42"}]) == "id:|42:http://loinc.org|58410-2"
    assert key(id="dr-7") == "res:dr-7:http://loinc.org|58410-2"
    _, (report,) = fhir.parse_reports(diagnostic_report(identifier=[{"value": "42"}]))
    assert report.filler_order == "42"


def test_two_reports_in_one_bundle_sharing_an_identifier_value() -> None:
    payload = bundle(
        ("urn:uuid:a", diagnostic_report(identifier=[{"system": "urn:lab-a", "value": "42"}])),
        ("urn:uuid:b", diagnostic_report(identifier=[{"system": "urn:lab-b", "value": "42"}])),
    )
    _, reports = fhir.parse_reports(payload)
    assert [r.filler_order for r in reports] == ["42", "42"]
    assert len({r.source_key for r in reports}) == 2


def test_fhir_values_comparators_units_notes_and_documents() -> None:
    contained = [
        {
            **observation(
                "2345-7",
                valueQuantity=quantity(2.0, "mmol/L", comparator="<"),
                note=[{"text": "Repeated on a new sample."}, {"text": "Same result."}],
                interpretation=[
                    {"coding": [{"code": "L"}]},
                    {"coding": [{"code": "LL"}]},
                ],
            ),
            "id": "g",
        },
        {**observation("2345-7", valueString="< 2.0"), "id": "s"},
        {
            **observation(
                "718-7",
                valueQuantity={"value": 6.5, "unit": "g/dL", "system": "urn:local", "code": "GDL"},
            ),
            "id": "h",
        },
    ]
    payload = diagnostic_report(
        contained=contained,
        result=[{"reference": "#g"}, {"reference": "#s"}, {"reference": "#h"}],
        presentedForm=[
            {
                "contentType": "application/pdf",
                "data": base64.b64encode(PDF).decode(),
                "title": "CBC report",
                "url": "https://lis.example/r/1.pdf",
            }
        ],
        conclusion="Severe anaemia.",
    )
    _, (report,) = fhir.parse_reports(payload)
    quantity_obs, string_obs, local, form = report.observations
    assert (quantity_obs.comparator, quantity_obs.numeric, quantity_obs.unit_code) == (
        "<",
        2.0,
        "mmol/L",
    )
    assert quantity_obs.value == "<2.0"
    assert quantity_obs.comments == "Repeated on a new sample.\nSame result."
    assert quantity_obs.flag == "LL"  # the critical interpretation wins
    assert (string_obs.comparator, string_obs.numeric) == ("<", 2.0)
    assert (local.unit, local.unit_code) == ("g/dL", None)  # not UCUM: no code
    assert domain.assess(local, TABLE).critical == "haemoglobin 6.5 g/dL (= 65 g/L) < 70"
    assert (form.code, form.value_type, form.display) == ("presentedForm", "ED", "CBC report")
    assert form.value == f"PDF document ({len(PDF):,} bytes)"
    assert form.attachments == (
        domain.ParsedAttachment(
            kind="FHIR",
            media_type="application/pdf",
            data=PDF,
            pointer="https://lis.example/r/1.pdf",
            title="CBC report",
        ),
    )
    assert report.conclusion == "Severe anaemia."


def test_an_observation_about_another_subject_is_refused() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:r1",
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
                    "subject": {"reference": "Patient/a"},
                    "result": [{"reference": "Observation/hb"}],
                },
            },
            {
                "fullUrl": "Observation/hb",
                "resource": {
                    "resourceType": "Observation",
                    "id": "hb",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                    "subject": {"reference": "Patient/b"},
                    "valueQuantity": {"value": 58, "unit": "g/L"},
                },
            },
        ],
    }
    with pytest.raises(fhir.FhirInvalid, match="another subject"):
        fhir.parse_reports(bundle)
    bundle["entry"][1]["resource"]["subject"] = {"reference": "Patient/a"}  # type: ignore[index]
    _, (report,) = fhir.parse_reports(bundle)
    assert [o.numeric for o in report.observations] == [58.0]
