"""Pure rules about mothers and pregnancies. No ORM, no I/O: tested without a database."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

PREGNANCY_DAYS = 280  # Naegele: EDD = LMP + 280 days
MAX_GESTATION_DAYS = 44 * 7  # beyond 44 weeks an LMP is a data error, not a pregnancy
SECOND_TRIMESTER_DAY = 14 * 7
THIRD_TRIMESTER_DAY = 28 * 7

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
# ASCII digits only, spelt out: \d and str.isdigit() also take fullwidth (１２３) and
# Arabic-Indic (٠١٢) digits, and one woman was enrolled three times past the duplicate check.
_ID_PATTERN = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_MOBILE_PATTERN = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
_PHONE_SEPARATORS = re.compile(r"[\s-]")
MASK_VISIBLE = 4  # characters of a national id left visible where it is masked: the last four
MIN_MOTHER_AGE = 12
MAX_MOTHER_AGE = 65


class RiskGrade(StrEnum):
    """The five colours of the national pregnancy risk grading (NHFPC 2017, 国卫办妇幼发〔2017〕
    35号). A pregnancy has one colour (green to red) and, beside it, the purple flag: purple is
    never a pregnancy's colour, only a value of the scale (old history rows, caseload weights,
    skills). Labels, ranks and tasks are data: risk_rules.json."""

    GREEN = "green"  # 绿色 低风险: low risk
    YELLOW = "yellow"  # 黄色 一般风险: general risk
    ORANGE = "orange"  # 橙色 较高风险: higher risk
    RED = "red"  # 红色 高风险: high risk
    PURPLE = "purple"  # 紫色 传染性疾病: infectious disease, beside the colour

    @property
    def needs_infection_control(self) -> bool:
        return self is RiskGrade.PURPLE

    @property
    def is_high_risk(self) -> bool:
        """The colour says higher or high risk (orange, red). Purple is managed as a
        high-risk case too (专案管理): see Risk.is_managed_case."""
        return self in (RiskGrade.ORANGE, RiskGrade.RED)


COLOURS = (RiskGrade.GREEN, RiskGrade.YELLOW, RiskGrade.ORANGE, RiskGrade.RED)


@dataclass(frozen=True, slots=True)
class Risk:
    """A pregnancy's risk: her colour and, beside it, the purple flag (infectious disease)."""

    grade: RiskGrade
    purple: bool = False

    def __post_init__(self) -> None:
        if self.grade is RiskGrade.PURPLE:
            raise ValueError("purple stands beside a colour; it is not a pregnancy's colour")

    @property
    def needs_infection_control(self) -> bool:
        return self.purple

    @property
    def is_high_risk(self) -> bool:
        return self.grade.is_high_risk

    @property
    def is_managed_case(self) -> bool:
        """Orange, red and purple are managed as high-risk cases (专案管理, NHFPC 2017)."""
        return self.grade.is_high_risk or self.purple

    @property
    def grades(self) -> tuple[RiskGrade, ...]:
        """Her colour, and purple when flagged: what skills and caseload weights key on."""
        return (self.grade, RiskGrade.PURPLE) if self.purple else (self.grade,)


class RiskDecision(StrEnum):
    INITIAL = "initial"  # the grade at enrolment
    CHANGED = "changed"  # a person changed it
    CONFIRMED = "confirmed"  # a doctor re-assessed it and kept it
    RULE = "rule"  # a rule changed it (the age floor), recorded as the system
    MIGRATED = "migrated"  # migration 0012: a stored 'purple' became the flag beside a colour


class DatingMethod(StrEnum):
    LMP = "lmp"  # Naegele from the last menstrual period
    ULTRASOUND = "ultrasound"  # a scan past ACOG 700's threshold re-dated the pregnancy
    REPORTED = "reported"  # an EDD recorded elsewhere, method unknown
    IVF = "ivf"  # from the embryo transfer: transfer date + 266 days - the embryo's age


class Trimester(StrEnum):
    FIRST = "first"
    SECOND = "second"
    THIRD = "third"


@dataclass(frozen=True, slots=True)
class NationalId:
    value: str
    birth_date: date


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity card number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _not_ascii_digit(value: str) -> str:
    """' (found U+0661 ARABIC-INDIC DIGIT ONE at character 3)' for the first digit outside
    0-9, else '': the message says which character was refused and where."""
    for place, char in enumerate(value, start=1):
        if char.isdigit() and not ("0" <= char <= "9"):
            return f" (found U+{ord(char):04X} {unicodedata.name(char, '')} at character {place})"
    return ""


def ascii_form(raw: str) -> str:
    """NFKC: a fullwidth １２３ or Ｘ typed on a Chinese keyboard becomes 123 or X, as on any
    other; digits of other scripts (٠١٢) stay what they are, and the patterns refuse them."""
    return unicodedata.normalize("NFKC", raw).strip()


def parse_national_id(raw: str) -> NationalId:
    """Validate an 18-character national id's form; raise ValueError saying what is wrong.
    The value is NFKC-normalised first, so that the same number typed with fullwidth digits
    is the same number (and meets the duplicate check); other digits are refused."""
    value = ascii_form(raw).upper()
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError(
            "must be 18 characters: 17 digits 0-9 and a digit or X" + _not_ascii_digit(value)
        )
    if check_digit(value[:17]) != value[17]:
        raise ValueError("check digit does not match (ISO 7064 MOD 11-2)")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise ValueError("birth date inside the number is not a real date") from exc
    return NationalId(value=value, birth_date=born)


def check_mother_age(born: date, *, today: date) -> None:
    """A birth date is plausible for a pregnant woman (catches swapped or mistyped dates)."""
    if born > today:
        raise ValueError("birth date is in the future")
    age = age_on(born, today)
    if not MIN_MOTHER_AGE <= age <= MAX_MOTHER_AGE:
        raise ValueError(f"birth date gives age {age}, outside {MIN_MOTHER_AGE}-{MAX_MOTHER_AGE}")


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def normalize_mobile(raw: str) -> str:
    """A mainland mobile number as 11 ASCII digits; accepts +86/0086 and spaces or dashes,
    fullwidth ones too (NFKC: ＋８６ １３８…); digits of other scripts are refused."""
    typed = ascii_form(raw)
    digits = _PHONE_SEPARATORS.sub("", typed)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
            break
    if not _MOBILE_PATTERN.fullmatch(digits):
        raise ValueError(
            "must be a mainland China mobile number: 11 digits 0-9 starting 13-19"
            + _not_ascii_digit(typed)
        )
    return digits


def mask_national_id(value: str, visible: int = MASK_VISIBLE) -> str:
    """110105199001010123 -> **************0123: the last four only (three serial digits and
    the check digit), which is what the desk's screens show (ID …0123) and what she is asked
    to confirm. Not the spec's 110105********0123: the eight hidden digits are her date of
    birth, which her record shows beside it, so region + date + last four gave the number back
    whole. And the region is no secret either: most of a clinic's mothers share its district's
    code. So where her date of birth is shown to a role not entitled to the number (a butler,
    the nutritionist), no character of it is shown (``visible=0``): region + date + last four
    would again be the whole number."""
    if len(value) <= visible:
        return "*" * len(value)
    return "*" * (len(value) - visible) + (value[-visible:] if visible else "")


def mask_phone(value: str) -> str:
    """13800138000 -> 138****8000."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """王小琪 -> 王*琪; 王琪 -> 王*; for waiting-room displays."""
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


# Dating ------------------------------------------------------------------------------------


def edd_from_lmp(lmp: date) -> date:
    return lmp + timedelta(days=PREGNANCY_DAYS)


def gestational_age_days(edd: date, on: date) -> int:
    """Completed days since the (LMP-equivalent) start of pregnancy."""
    return PREGNANCY_DAYS - (edd - on).days


def format_gestational_age(days: int) -> str:
    """171 -> '24+3' (completed weeks + days)."""
    return f"{days // 7}+{days % 7}"


def trimester(days: int) -> Trimester:
    if days < SECOND_TRIMESTER_DAY:
        return Trimester.FIRST
    if days < THIRD_TRIMESTER_DAY:
        return Trimester.SECOND
    return Trimester.THIRD


def check_lmp(lmp: date, *, today: date) -> None:
    if lmp > today:
        raise ValueError("LMP cannot be in the future")
    if (today - lmp).days > MAX_GESTATION_DAYS:
        raise ValueError("LMP is more than 44 weeks ago")


def check_edd(edd: date, *, today: date) -> None:
    days = gestational_age_days(edd, today)
    if days < 0:
        raise ValueError("EDD is more than 40 weeks ahead")
    if days > MAX_GESTATION_DAYS:
        raise ValueError("EDD gives a gestational age over 44 weeks")
