"""HL7 v2 ORU^R01 in, ACK out, parsed with python-hl7 (no string splitting of fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7
from hl7.containers import Message, Segment

from app.reports.domain import (
    ParsedObservation,
    ParsedReport,
    report_status_from_hl7,
)

APPLICATION = "PREGNANCY-BUTLER"
FACILITY = "VIP-CLINIC"


class Hl7Rejected(Exception):
    """Not a message we accept (AR): not HL7, no MSH, or not an ORU^R01."""


class Hl7Unprocessable(Exception):
    """A well-formed ORU^R01 that cannot be processed (AE), e.g. no OBR or no patient id."""


@dataclass(frozen=True, slots=True)
class Header:
    control_id: str
    sending_application: str
    sending_facility: str
    message_type: str
    version: str


def normalise_separators(body: str) -> str:
    """Segments may be separated by CR, LF or CRLF; python-hl7 wants CR."""
    text = body.replace("\r\n", "\r").replace("\n", "\r").strip("\r \t\x0b\x1c")
    return re.sub(r"\r+", "\r", text)


def _get(seg: Segment, field: int, repeat: int = 1, component: int = 1) -> str:
    try:
        return str(seg.extract_field(1, field, repeat, component)).strip()
    except (IndexError, KeyError):
        return ""


def parse_message(body: str) -> Message:
    text = normalise_separators(body)
    if not text.startswith("MSH"):
        raise Hl7Rejected("The message does not start with an MSH segment.")
    if len(text) < 8 or text[3] != "|" or text[4:8] != "^~\\&":
        raise Hl7Rejected("MSH-1/MSH-2 must be | and ^~\\&.")
    try:
        return hl7.parse(text)
    except Exception as exc:  # the library raises several kinds on garbage
        raise Hl7Rejected(f"The message cannot be parsed as HL7 v2: {exc}") from exc


def header_of(message: Message) -> Header:
    msh = message.segment("MSH")
    return Header(
        control_id=_get(msh, 10),
        sending_application=_get(msh, 3),
        sending_facility=_get(msh, 4),
        message_type="^".join(p for p in (_get(msh, 9, 1, 1), _get(msh, 9, 1, 2)) if p),
        version=_get(msh, 12),
    )


def parse_ts(value: str, tz: ZoneInfo) -> datetime | None:
    """HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]; no offset means clinic time."""
    match = re.fullmatch(
        r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?", value
    )
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        zone: timezone | ZoneInfo = tz
        if offset:
            sign = 1 if offset[0] == "+" else -1
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def _patient_mrn(pid: Segment | None) -> str | None:
    """PID-3: the repetition whose identifier type is MR, else the first one."""
    if pid is None:
        return None
    first = None
    for repeat in range(1, 10):
        try:
            ident = str(pid.extract_field(1, 3, repeat, 1)).strip()
        except (IndexError, KeyError):
            break
        kind = _get(pid, 3, repeat, 5).upper()
        if ident and kind == "MR":
            return ident
        first = first or ident or None
    return first


def _observation(obx: Segment) -> ParsedObservation:
    value_type = _get(obx, 2).upper()
    code, display, system = _get(obx, 3, 1, 1), _get(obx, 3, 1, 2), _get(obx, 3, 1, 3)
    numeric: float | None = None
    if value_type == "NM":
        value = _get(obx, 5)
        try:
            numeric = float(value) if value else None
        except ValueError:
            numeric = None
    elif value_type == "SN":  # comparator ^ num1 ^ separator ^ num2
        parts = [_get(obx, 5, 1, i) for i in range(1, 5)]
        value = "".join(parts).strip() or None or ""
        if parts[1] and not parts[2]:
            try:
                numeric = float(parts[1]) if not parts[0] or parts[0] == "=" else None
            except ValueError:
                numeric = None
    elif value_type in ("CWE", "CE", "CNE", "CF"):
        coded, text = _get(obx, 5, 1, 1), _get(obx, 5, 1, 2)
        value = f"{text} ({coded})" if text and coded else text or coded
    else:  # ST, TX, FT and anything textual
        value = _get(obx, 5)
    unit = _get(obx, 6, 1, 1) or None
    return ParsedObservation(
        code=code or "unknown",
        code_system=system or None,
        display=display or None,
        value_type=value_type or "ST",
        value=value or None,
        numeric=numeric,
        unit=unit,
        reference_range=_get(obx, 7) or None,
        flag=_get(obx, 8) or None,
        status=_get(obx, 11) or None,
    )


def parse_oru(message: Message, *, tz: ZoneInfo) -> tuple[Header, list[ParsedReport]]:
    """Every OBR of an ORU^R01 with its OBX children, in order."""
    header = header_of(message)
    if not header.control_id:
        raise Hl7Rejected("MSH-10 (message control id) is empty.")
    if len(header.control_id) > 199:
        raise Hl7Rejected("MSH-10 is longer than 199 characters.")
    if header.message_type not in ("ORU^R01",):
        raise Hl7Rejected(f"Only ORU^R01 is accepted here, not {header.message_type or 'nothing'}.")
    # An ORU may carry several patients: each OBR belongs to the PID before it.
    groups: list[tuple[str | None, Segment, list[Segment]]] = []
    mrn: str | None = None
    for seg in message:
        name = str(seg[0])
        if name == "PID":
            mrn = _patient_mrn(seg)
        elif name == "OBR":
            groups.append((mrn, seg, []))
        elif name == "OBX" and groups:
            groups[-1][2].append(seg)
    if not groups:
        raise Hl7Unprocessable("The ORU^R01 has no OBR segment.")
    reports = []
    for index, (patient, obr, obxs) in enumerate(groups, start=1):
        placer, filler = _get(obr, 2) or None, _get(obr, 3) or None
        code = _get(obr, 4, 1, 1) or None
        observations = [_observation(obx) for obx in obxs]
        status = report_status_from_hl7(_get(obr, 25), [o.status or "" for o in observations])
        key = f"{filler or placer or f'{header.control_id}#{index}'}:{code or index}"
        reports.append(
            ParsedReport(
                source_key=key,
                placer_order=placer,
                filler_order=filler,
                patient_mrn=patient,
                code=code,
                display=_get(obr, 4, 1, 2) or None,
                status=status,
                effective_at=parse_ts(_get(obr, 7), tz),
                issued_at=parse_ts(_get(obr, 22), tz),
                conclusion=None,
                observations=observations,
            )
        )
    return header, reports


def ack(message: Message | None, code: str, text: str, *, now: datetime) -> str:
    """An ACK whose MSA-2 echoes MSH-10; built with the library when the message parsed."""
    safe = re.sub(r"[|^~\\&\r\n]", " ", text)[:200]
    control_id = ""
    if message is not None:
        try:
            reply = message.create_ack(
                ack_code=code,
                message_id=f"ACK{now:%Y%m%d%H%M%S%f}"[:20],
                application=APPLICATION,
                facility=FACILITY,
            )
            msa = reply.segment("MSA")
            msa.append(hl7.Field(message.separators[2], [safe]))  # MSA-3 text message
            return str(reply).rstrip("\r") + "\r"
        except Exception:  # a sparse MSH (no MSH-11/12): build the ACK by hand, still echoing
            control_id = re.sub(r"[|^~\\&\r\n]", " ", header_of(message).control_id)
    stamp = f"{now:%Y%m%d%H%M%S}"
    return (
        f"MSH|^~\\&|{APPLICATION}|{FACILITY}|||{stamp}||ACK|ACK{stamp}|P|2.5\r"
        f"MSA|{code}|{control_id}|{safe}\r"
    )
