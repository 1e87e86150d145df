"""HL7 v2 ORU^R01 in, ACK out, parsed with python-hl7 (no string splitting of fields).

Written for what real senders produce, v2.2 to v2.6: sparse MSH segments, GB 18030 from
Chinese LIS systems, escape sequences, ORC before OBR, NTE comments, repeating OBX-5, SN
values, UCUM units, embedded (ED) and referenced (RP) documents. Nothing is guessed: a
message that cannot be read exactly is refused, and the refusal echoes MSH-10.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7
from hl7.containers import Message, Segment

from app.reports.domain import (
    CRITICAL_FLAGS,
    NO_ORDER_KEY,
    ParsedAttachment,
    ParsedObservation,
    ParsedReport,
    PatientIdentity,
    describe_document,
    person_name,
    report_status_from_hl7,
    split_comparator,
)

APPLICATION = "PREGNANCY-BUTLER"
FACILITY = "VIP-CLINIC"
ENCODING_CHARACTERS = "^~\\&"
UTF8_BOM = b"\xef\xbb\xbf"
MAX_CONTROL_ID = 199
ACK_TEXT_LIMIT = 200


class Hl7Rejected(Exception):
    """Not a message we accept (AR): not HL7, no MSH, not an ORU^R01, unreadable bytes."""

    def __init__(self, text: str, control_id: str | None = None) -> None:
        super().__init__(text)
        self.control_id = control_id  # MSH-10 when it could be read: the ACK echoes it


class Hl7Unprocessable(Exception):
    """A well-formed ORU^R01 that cannot be processed (AE), e.g. no OBR or no OBX-11."""

    def __init__(self, text: str, control_id: str | None = None) -> None:
        super().__init__(text)
        self.control_id = control_id


@dataclass(frozen=True, slots=True)
class Header:
    control_id: str
    sending_application: str
    sending_facility: str
    message_type: str
    version: str


# Rough reading of MSH, before (or without) parsing ----------------------------------------


def _msh_fields(text: str) -> list[str] | None:
    """The fields of the first segment starting with MSH, split on its own MSH-1; index n is
    MSH-(n+1) (MSH-1 is the separator itself, so index 1 is MSH-2)."""
    text = text.removeprefix("\ufeff")
    for line in re.split(r"\r\n|\r|\n", text):
        line = line.lstrip("\x0b\x1c \t")
        if line.startswith("MSH") and len(line) > 3:
            sep = line[3]
            if sep.isalnum() or sep.isspace():
                return None
            return line.split(sep)
    return None


def control_id_of(text: str) -> str | None:
    """MSH-10 from rough text (for the ACK of a message that cannot be parsed), or None."""
    fields = _msh_fields(text)
    if fields is None or len(fields) <= 9:
        return None
    value = "".join(c for c in fields[9] if c >= " ").strip()
    return value if value and len(value) <= MAX_CONTROL_ID else None


# HL7 table 0211 (MSH-18) -> Python codec. GBK, GB2312 and CP936 are read as GB 18030, which
# contains them; the Chinese LIS systems that send them mean that.
CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    **{f"8859/{n}": f"iso8859-{n}" for n in range(2, 10)},
    "8859/15": "iso8859-15",
    "UNICODEUTF8": "utf-8",
    # The deprecated bare "UNICODE" (table 0211) is what several analysers (Mindray's among
    # them) send with UTF-8 bytes. UTF-16/32 would carry NUL bytes, refused above, so bytes
    # that decode as UTF-8 can be nothing else; others are refused as not valid.
    "UNICODE": "utf-8",
    "UTF8": "utf-8",
    "GB180302000": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",
    "GB2312": "gb18030",
    "CP936": "gb18030",
}
REFUSED_CHARSETS = frozenset({"UNICODEUTF16", "UNICODEUTF32", "UTF16", "UTF32"})


def _charset_key(name: str) -> str:
    return re.sub(r"[\s_-]", "", name.upper())


def _msh18(raw: bytes, codec: str) -> str | None:
    fields = _msh_fields(raw.decode(codec, errors="replace"))
    if fields is None or len(fields) <= 17:
        return None
    encoding = fields[1]
    value = fields[17]
    if len(encoding) >= 2:  # the first repetition, its first component
        value = value.split(encoding[1])[0].split(encoding[0])[0]
    return value.strip() or None


def _declared_charset(raw: bytes) -> str | None:
    """MSH-18 from the raw bytes. MSH-3..17 are ASCII in practice, but a GBK hospital name
    there can hold a byte that reads as '|': then read the MSH line as GB 18030."""
    name = _msh18(raw, "latin-1")
    if name is None or _charset_key(name) not in CHARSETS:
        other = _msh18(raw, "gb18030")
        if other is not None and CHARSETS.get(_charset_key(other)) == "gb18030":
            return other
    return name


def decode(raw: bytes) -> str:
    """The message's bytes as text, in the character set MSH-18 names (UTF-8 when it names
    none). Never a guess: bytes that do not decode are refused (AR), echoing MSH-10."""
    if raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    control_id = control_id_of(raw.decode("latin-1"))
    if b"\x00" in raw:
        raise Hl7Rejected(
            f"The message contains a NUL byte (offset {raw.index(0)}): it is not HL7 text "
            "(UTF-16 and UTF-32 are not supported; send UTF-8).",
            control_id,
        )
    name = _declared_charset(raw)
    if name is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Hl7Rejected(
                "The message is not UTF-8 and MSH-18 names no character set "
                f"(byte 0x{raw[exc.start]:02X} at offset {exc.start}); send UTF-8, or name "
                "the character set in MSH-18 (e.g. UNICODE UTF-8, GB 18030-2000).",
                control_id,
            ) from exc
        return text.removeprefix("\ufeff")
    key = _charset_key(name)
    if key in REFUSED_CHARSETS:
        raise Hl7Rejected(
            f"MSH-18 {name!r} is not supported (UTF-16/UTF-32); send UNICODE UTF-8.", control_id
        )
    codec = CHARSETS.get(key)
    if codec is None:
        raise Hl7Rejected(
            f"MSH-18 names a character set this service does not know: {name!r} (supported: "
            "UNICODE UTF-8, ASCII, 8859/1 to 8859/9, 8859/15, GB 18030-2000).",
            control_id,
        )
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise Hl7Rejected(
            f"The message is not valid {name} as MSH-18 says "
            f"(byte 0x{raw[exc.start]:02X} at offset {exc.start}).",
            control_id,
        ) from exc
    return text.removeprefix("\ufeff")


# Parsing ----------------------------------------------------------------------------------


def normalise_separators(body: str) -> str:
    """Segments may be separated by CR, LF or CRLF; python-hl7 wants CR."""
    text = body.replace("\r\n", "\r").replace("\n", "\r").strip("\r \t\x0b\x1c")
    return re.sub(r"\r+", "\r", text)


def parse_message(body: str) -> Message:
    text = normalise_separators(body.removeprefix("\ufeff")).removeprefix("\ufeff")
    control_id = control_id_of(text)
    if not text.startswith("MSH"):
        raise Hl7Rejected("The message does not start with an MSH segment.", control_id)
    if (
        len(text) < 8
        or text[3] != "|"
        or text[4:8] != ENCODING_CHARACTERS
        or text[8:9] not in ("", "|")
    ):
        raise Hl7Rejected(
            f"MSH-1 must be '|' and MSH-2 '{ENCODING_CHARACTERS}' "
            f"(this message has '{text[3:4]}' and '{text[4:8]}').",
            control_id,
        )
    try:
        return hl7.parse(text)
    except Exception as exc:  # the library raises several kinds on garbage
        raise Hl7Rejected(f"The message cannot be parsed as HL7 v2: {exc}", control_id) from exc


# The parsed tree, read without python-hl7's guesses: repetitions -> components ->
# subcomponents, raw (escaped) text. MSH-1/MSH-2 are never read through these.
Tree = list[list[list[str]]]


def _tree(seg: Segment, number: int) -> Tree:
    if number >= len(seg):
        return []
    reps: Tree = []
    for rep in seg[number]:
        if isinstance(rep, str):
            reps.append([[rep]])
        else:
            reps.append([[c] if isinstance(c, str) else [str(s) for s in c] for c in rep])
    return reps


def _raw(seg: Segment, number: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    try:
        return _tree(seg, number)[rep - 1][comp - 1][sub - 1]
    except IndexError:
        return ""


def _get(seg: Segment, number: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value, unescaped and stripped ("" when absent)."""
    return unescape(_raw(seg, number, rep, comp, sub)).strip()


def _component(rep: list[list[str]], comp: int) -> str:
    """A whole component, its subcomponents joined back ("&" sent unescaped in a URL)."""
    return unescape("&".join(rep[comp - 1])) if comp <= len(rep) else ""


def _literal(rep: list[list[str]]) -> str:
    """A repetition of a text value as sent: components and subcomponents joined back, so a
    stray ^ or & in text loses nothing."""
    return unescape("^".join("&".join(subs) for subs in rep))


_ESCAPE = re.compile(r"\\([^\\\r\n]*)\\")
_SIMPLE_ESCAPES = {
    "F": "|",
    "S": "^",
    "T": "&",
    "R": "~",
    "E": "\\",
    ".br": "\n",
    ".ce": "\n",
    ".fi": "",
    ".nf": "",
    "H": "",  # highlighting on/off: the text stays
    "N": "",
}


def _unescape_one(match: re.Match[str]) -> str:
    seq = match.group(1)
    if seq in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[seq]
    formatting = re.fullmatch(r"\.(sp|sk|in|ti)([+-]?\d{0,2})", seq)
    if formatting:
        kind, count = formatting.group(1), abs(int(formatting.group(2) or 1))
        return {"sp": "\n" * max(count, 1), "sk": " " * count}.get(kind, "")
    if re.fullmatch(r"X(?:[0-9A-Fa-f]{2})+", seq):
        data = bytes.fromhex(seq[1:])
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return match.group(0)  # unknown (Z.., C.., M..): kept as sent, nothing dropped


def unescape(text: str) -> str:
    """HL7 escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\.br\\, \\Xhh..\\) to text; line
    breaks become \\n."""
    if "\\" in text:
        text = _ESCAPE.sub(_unescape_one, text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


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


# The patient ------------------------------------------------------------------------------


def _patient_mrn(pid: Segment | None) -> str | None:
    """PID-3: the repetition whose identifier type is MR, else the first one."""
    if pid is None:
        return None
    first = None
    for repeat in range(1, len(_tree(pid, 3)) + 1):
        ident = _get(pid, 3, repeat, 1)
        if ident and _get(pid, 3, repeat, 5).upper() == "MR":
            return ident
        first = first or ident or None
    return first


def _patient_name(pid: Segment) -> str | None:
    """PID-5 (XPN, or PN in v2.2): the legal name (type L) if marked, else the first."""
    reps = _tree(pid, 5)
    chosen = next(
        (i for i in range(1, len(reps) + 1) if _get(pid, 5, i, 7).upper() == "L"),
        1,
    )
    family = _get(pid, 5, chosen, 1, 1)  # FN: surname & own surname prefix & ...
    return person_name(family, _get(pid, 5, chosen, 2), _get(pid, 5, chosen, 3))


def _birth_date(value: str) -> date | None:
    match = re.match(r"(\d{4})(\d{2})(\d{2})", value)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _patient(pid: Segment) -> PatientIdentity:
    return PatientIdentity(
        mrn=_patient_mrn(pid),
        name=_patient_name(pid),
        birth_date=_birth_date(_get(pid, 7, 1, 1)),
        sex=_get(pid, 8) or None,
    )


# Observations -----------------------------------------------------------------------------

CODED = frozenset({"CWE", "CE", "CNE", "CF"})
NARRATIVE = frozenset({"TX", "FT"})
COMPARATORS = frozenset({"<", "<=", ">", ">=", "="})
MIME_TOPS = frozenset({"application", "image", "text", "audio", "video", "multipart", "model"})
SUBTYPES = {  # HL7 table 0291 and what senders write instead
    "PDF": "application/pdf",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "TIF": "image/tiff",
    "BMP": "image/bmp",
    "RTF": "application/rtf",
    "HTML": "text/html",
    "XML": "application/xml",
    "PLAIN": "text/plain",
    "DICOM": "application/dicom",
    "OCTET-STREAM": "application/octet-stream",
}
DATA_TYPES = {  # HL7 table 0191, when no subtype says more
    "TEXT": "text/plain",
    "TX": "text/plain",
    "FT": "text/plain",
    "AP": "application/octet-stream",
}


def media_type_of(type_of_data: str, subtype: str) -> str | None:
    """ED/RP type of data and subtype -> a media type: AP^PDF, IM^JPEG, application^pdf."""
    kind, sub = type_of_data.strip(), subtype.strip()
    for given in (sub, kind):
        if re.fullmatch(r"[\w.+-]+/[\w.+-]+", given):
            return given.lower()
    if kind.lower() in MIME_TOPS and re.fullmatch(r"[\w.+-]+", sub):
        return f"{kind.lower()}/{sub.lower()}"
    return SUBTYPES.get(sub.upper()) or DATA_TYPES.get(kind.upper())


@dataclass(slots=True)
class _Obx:
    number: int  # the segment's place in the message
    seg: Segment
    notes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        set_id = _get(self.seg, 1)
        return f"Segment {self.number} (OBX{' ' + set_id if set_id else ''})"


def _ed(rep: list[list[str]], where: str) -> ParsedAttachment:
    """source application ^ type of data ^ data subtype ^ encoding ^ data."""
    kind, sub, encoding = _component(rep, 2), _component(rep, 3), _component(rep, 4)
    data = re.sub(r"\s+", "", _component(rep, 5))
    code = encoding.strip().upper()
    try:
        if code == "BASE64":
            decoded = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        elif code == "HEX":
            decoded = bytes.fromhex(data)
        elif code == "A":
            decoded = _component(rep, 5).encode("utf-8")
        else:
            raise Hl7Unprocessable(
                f"{where}: OBX-5 ED encoding (OBX-5.4) {encoding!r} is not Base64, Hex or A."
            )
    except (binascii.Error, ValueError) as exc:
        raise Hl7Unprocessable(
            f"{where}: OBX-5 ED data does not decode as {encoding} ({exc})."
        ) from exc
    if not decoded:
        raise Hl7Unprocessable(f"{where}: OBX-5 ED value holds no data.")
    return ParsedAttachment(
        kind="ED", media_type=media_type_of(kind, sub), data=decoded, pointer=None
    )


def _rp(rep: list[list[str]], where: str) -> ParsedAttachment:
    """pointer ^ application id ^ type of data ^ subtype."""
    pointer = _component(rep, 1).strip()
    if not pointer:
        raise Hl7Unprocessable(f"{where}: OBX-5 RP value has no pointer (OBX-5.1).")
    media = media_type_of(_component(rep, 3), _component(rep, 4))
    return ParsedAttachment(kind="RP", media_type=media, data=None, pointer=pointer)


def _coded(rep: list[list[str]]) -> str:
    code, text = _component(rep, 1).strip(), _component(rep, 2).strip()
    if not code and not text:
        code, text = _component(rep, 4).strip(), _component(rep, 5).strip()
    return f"{text} ({code})" if text and code else text or code


def _structured_numeric(rep: list[list[str]]) -> tuple[str, str | None, float | None]:
    """SN: comparator ^ num1 ^ separator/suffix ^ num2 -> (shown, comparator, numeric)."""
    comparator, num1, separator, num2 = (_component(rep, i).strip() for i in range(1, 5))
    shown = f"{comparator}{num1}{separator}{num2}"
    if separator or num2 or (comparator and comparator not in COMPARATORS):
        return shown, None, None  # a range, a ratio, "2+", "<>": no single number
    inner, number = split_comparator(num1)
    if inner is not None or number is None:
        return shown, None, None
    return shown, comparator or None, number


def _unit(obx: Segment) -> tuple[str | None, str | None]:
    """OBX-6: identifier ^ text ^ coding system (^ alternate ...): (what people read, UCUM)."""
    ident, text, system = _get(obx, 6, 1, 1), _get(obx, 6, 1, 2), _get(obx, 6, 1, 3)
    code = None
    if ident and system.upper() == "UCUM":
        code = ident
    elif _get(obx, 6, 1, 4) and _get(obx, 6, 1, 6).upper() == "UCUM":
        code = _get(obx, 6, 1, 4)
    return (text or ident or None), code


def _flag(obx: Segment) -> str | None:
    flags = [_get(obx, 8, i) for i in range(1, len(_tree(obx, 8)) + 1)]
    flags = [f for f in flags if f]
    critical = [f for f in flags if f.upper() in CRITICAL_FLAGS]
    chosen = critical or flags
    return chosen[0] if chosen else None


def _observation(entry: _Obx) -> ParsedObservation:
    obx, where = entry.seg, entry.where
    value_type = _get(obx, 2).upper()
    code, display, system = _get(obx, 3, 1, 1), _get(obx, 3, 1, 2), _get(obx, 3, 1, 3)
    if not code:  # the alternate identifier serves when the first is empty
        code, display, system = _get(obx, 3, 1, 4), _get(obx, 3, 1, 5), _get(obx, 3, 1, 6)
    if not code:
        raise Hl7Unprocessable(f"{where}: OBX-3 (observation identifier) is empty.")
    reps = [rep for rep in _tree(obx, 5) if any(s.strip() for subs in rep for s in subs)]
    if reps and not value_type:
        raise Hl7Unprocessable(f"{where}: OBX-2 (value type) is empty but OBX-5 has a value.")
    status = _get(obx, 11)
    if not status:
        raise Hl7Unprocessable(
            f"{where}: OBX-11 (result status) is empty; the message may be cut off."
        )
    value: str | None
    numeric: float | None = None
    comparator: str | None = None
    attachments: tuple[ParsedAttachment, ...] = ()
    if value_type == "SN":
        readings = [_structured_numeric(rep) for rep in reps]
        value = "; ".join(shown for shown, _, _ in readings)
        if len(readings) == 1:
            _, comparator, numeric = readings[0]
    elif value_type in CODED:
        value = "; ".join(v for v in (_coded(rep) for rep in reps) if v)
    elif value_type in NARRATIVE:
        value = "\n".join(_literal(rep) for rep in reps).rstrip().lstrip("\n")
    elif value_type == "ED":
        attachments = tuple(_ed(rep, where) for rep in reps)
        value = "; ".join(describe_document(a.media_type, len(a.data or b"")) for a in attachments)
    elif value_type == "RP":
        attachments = tuple(_rp(rep, where) for rep in reps)
        value = "; ".join(a.pointer or "" for a in attachments)
    else:  # NM, ST and the other textual types
        texts = [_literal(rep).strip() for rep in reps]
        value = "; ".join(t for t in texts if t)
        if len(texts) == 1 and value_type in ("NM", "ST"):
            comparator, numeric = split_comparator(texts[0])
    unit, unit_code = _unit(obx)
    return ParsedObservation(
        code=code,
        code_system=system or None,
        display=display or None,
        value_type=value_type or "ST",
        value=value or None,
        numeric=numeric,
        unit=unit,
        reference_range=_reference_range(obx),
        flag=_flag(obx),
        status=status,
        comparator=comparator,
        unit_code=unit_code,
        comments=_notes(entry.notes),
        attachments=attachments,
    )


def _reference_range(obx: Segment) -> str | None:
    reps = _tree(obx, 7)
    return (_literal(reps[0]).strip() if reps else "") or None


def _note(nte: Segment) -> str:
    """NTE-3 (FT, repeating): its repetitions as lines."""
    return "\n".join(_literal(rep).rstrip() for rep in _tree(nte, 3))


def _notes(notes: list[str]) -> str | None:
    text = "\n".join(notes).strip("\n")
    return text if text.strip() else None


@dataclass(slots=True)
class _Group:
    """One OBR with what belongs to it: the ORC before it, its OBX and NTE segments."""

    number: int
    obr: Segment
    orc: Segment | None
    patient: PatientIdentity | None
    notes: list[str]
    obxs: list[_Obx] = field(default_factory=list)


ACCEPTED_TYPES = ("ORU^R01", "ORU")  # v2.1/v2.2 senders may leave the trigger event out


def parse_oru(message: Message, *, tz: ZoneInfo) -> tuple[Header, list[ParsedReport]]:
    """Every OBR of an ORU^R01 with its OBX children, in order."""
    header = header_of(message)
    if not header.control_id:
        raise Hl7Rejected("MSH-10 (message control id) is empty.")
    if len(header.control_id) > MAX_CONTROL_ID:
        raise Hl7Rejected(f"MSH-10 is longer than {MAX_CONTROL_ID} characters.")
    control_id = header.control_id
    if header.message_type not in ACCEPTED_TYPES:
        raise Hl7Rejected(
            f"Only ORU^R01 is accepted here, not {header.message_type or 'nothing'}.", control_id
        )
    # An ORU may carry several patients: each OBR belongs to the PID before it, an ORC to the
    # OBR after it, an NTE to the segment it follows.
    groups: list[_Group] = []
    patient: PatientIdentity | None = None
    patient_notes: list[str] = []  # NTE after PID (or before any order)
    order_notes: list[str] = []  # NTE after an ORC, before its OBR
    orc: Segment | None = None
    target: list[str] = patient_notes
    open_group = False
    for number, seg in enumerate(message, start=1):
        name = str(seg[0]).strip().upper()
        if name == "PID":
            patient, patient_notes, orc = _patient(seg), [], None
            target = patient_notes
            open_group = False  # an OBX now, before an OBR, would join the last patient's
        elif name == "ORC":
            orc, order_notes = seg, []
            target = order_notes
        elif name == "OBR":
            group = _Group(number, seg, orc, patient, [*patient_notes, *order_notes])
            groups.append(group)
            orc, order_notes = None, []
            target = group.notes
            open_group = True
        elif name == "OBX":
            if not groups:
                raise Hl7Unprocessable(f"Segment {number}: an OBX before any OBR.", control_id)
            if not open_group:
                raise Hl7Unprocessable(
                    f"Segment {number}: an OBX after a PID with no OBR of its own; it would "
                    "belong to no order of that patient.",
                    control_id,
                )
            entry = _Obx(number, seg)
            groups[-1].obxs.append(entry)
            target = entry.notes
        elif name == "NTE":
            target.append(_note(seg))
    if not groups:
        raise Hl7Unprocessable("The ORU^R01 has no OBR segment.", control_id)
    reports = []
    for index, group in enumerate(groups, start=1):
        obr, orc = group.obr, group.orc
        placer = _get(obr, 2) or (_get(orc, 2) if orc is not None else "") or None
        filler = _get(obr, 3) or (_get(orc, 3) if orc is not None else "") or None
        code = _get(obr, 4, 1, 1) or None
        try:
            observations = [_observation(entry) for entry in group.obxs]
        except Hl7Unprocessable as exc:
            raise Hl7Unprocessable(str(exc), control_id) from exc
        status = report_status_from_hl7(_get(obr, 25), [o.status or "" for o in observations])
        # Without order numbers the report is this message's own: the intake names it by the
        # stored message (never by MSH-10, which senders reuse).
        key = f"{filler or placer or f'{NO_ORDER_KEY}#{index}'}:{code or index}"
        reports.append(
            ParsedReport(
                source_key=key,
                placer_order=placer,
                filler_order=filler,
                patient_mrn=group.patient.mrn if group.patient else None,
                code=code,
                display=_get(obr, 4, 1, 2) or None,
                status=status,
                effective_at=parse_ts(_get(obr, 7), tz),
                issued_at=parse_ts(_get(obr, 22), tz),
                conclusion=None,
                observations=observations,
                patient=group.patient,
                comments=_notes(group.notes),
            )
        )
    return header, reports


# ACK --------------------------------------------------------------------------------------

_ACK_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\"}


def escape_text(text: str, limit: int = ACK_TEXT_LIMIT) -> str:
    """Text for MSA-3: HL7-escaped, one line, at most ``limit`` characters (an escape
    sequence is never cut). Control characters (CR, LF, MLLP framing) become spaces."""
    out: list[str] = []
    size = 0
    for char in text:
        piece = " " if char < " " or char == "\x7f" else _ACK_ESCAPES.get(char, char)
        if size + len(piece) > limit:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _echo(value: str | None) -> str:
    return "".join(c for c in (value or "") if c >= " " and c != "|")


def ack(
    message: Message | None,
    code: str,
    text: str,
    *,
    now: datetime,
    control_id: str | None = None,
) -> str:
    """An ACK whose MSA-2 echoes MSH-10 (of the message, else ``control_id``); built with
    the library when the message parsed."""
    safe = escape_text(text)
    message_id = f"ACK{now:%Y%m%d%H%M%S%f}"[:20]
    stamp = f"{now:%Y%m%d%H%M%S}"
    echoed = _echo(control_id)
    sender, facility, processing, version = "", "", "P", "2.5"
    if message is not None:
        msh = message.segment("MSH")

        def raw(number: int) -> str:
            return _echo(str(msh[number])) if len(msh) > number else ""

        echoed = raw(10) or echoed
        try:
            reply = message.create_ack(
                ack_code=code, message_id=message_id, application=APPLICATION, facility=FACILITY
            )
            reply.segment("MSH").assign_field(stamp, 7)
            msa = reply.segment("MSA")
            msa.assign_field(echoed, 2)
            msa.append(hl7.Field(message.separators[2], [safe]))  # MSA-3 text message
            return str(reply).rstrip("\r") + "\r"
        except Exception:  # a sparse MSH (no MSH-11/12): build the ACK by hand, still echoing
            sender, facility = raw(3), raw(4)
            processing, version = raw(11) or processing, raw(12) or version
    return (
        f"MSH|^~\\&|{APPLICATION}|{FACILITY}|{sender}|{facility}|{stamp}||ACK|"
        f"{message_id}|{processing}|{version}\r"
        f"MSA|{code}|{echoed}|{safe}\r"
    )
