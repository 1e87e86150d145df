"""The keys a clerk's search box finds a mother by, and what a typed query can mean.

Pure functions, shared by the model (keys derived whenever her name, MRN or phone is set), the
migration that backfilled them (0024) and the benchmark's bulk seeding.

Names: the Chinese characters (NFKC, case folded, spaces and the middle dot of minority names
dropped); the name without its surname (so that 小红 finds 李小红); the full pinyin without
tones or spaces (``lixiaohong``) and the initials (``lxh``), both typed as prefixes. ü is
written ``v``, as on every pinyin keyboard (吕 ``lv``).

Surnames: pypinyin reads a character by its commonest reading (单 ``dan``, 曾 ``ceng``,
解 ``jie``, 仇 ``chou``, 区 ``qu``) and has no surname mode, so the surname is read here from a
table of the surnames whose surname reading differs (单 ``shan``, 曾 ``zeng``, 解 ``xie``,
仇 ``qiu``, 区 ``ou``) and of the compound surnames (欧阳, 尉迟 ``yuchi``, 万俟 ``moqi``). A
clerk who types the everyday reading finds her too: that reading is kept as the alternative
key (``danxiaohong`` / ``dxh``) when it differs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Surnames whose reading as a surname is not pypinyin's commonest reading of the character,
# with the everyday reading a clerk may type instead (None: pypinyin's own reading).
POLYPHONIC_SURNAMES: dict[str, tuple[str, str | None]] = {
    "单": ("shan", "dan"),
    "曾": ("zeng", "ceng"),
    "解": ("xie", "jie"),
    "仇": ("qiu", "chou"),
    "区": ("ou", "qu"),
    "朴": ("piao", "pu"),
    "查": ("zha", "cha"),
    "盖": ("ge", "gai"),
    "乐": ("yue", "le"),
    "缪": ("miao", "mou"),
    "繁": ("po", "fan"),
    "覃": ("qin", "tan"),
    "秘": ("bi", "mi"),
    "员": ("yun", "yuan"),
    "种": ("chong", "zhong"),
    "翟": ("zhai", "di"),
    "隗": ("wei", "kui"),
    "薄": ("bo", "bao"),
    "阚": ("kan", "han"),
    "黑": ("he", "hei"),
    "尉": ("wei", "yu"),
    "召": ("shao", "zhao"),
    "句": ("gou", "ju"),
    "能": ("nai", "neng"),
    "折": ("she", "zhe"),
    "祭": ("zhai", "ji"),
    "宓": ("mi", "fu"),
    "贲": ("ben", "bi"),
    "重": ("chong", "zhong"),
    "莘": ("shen", "xin"),
    "牟": ("mou", "mu"),
    "郇": ("huan", "xun"),
    "长": ("chang", "zhang"),
    "过": ("guo", None),
    "那": ("na", None),
    "华": ("hua", None),
    "燕": ("yan", None),
    "纪": ("ji", None),
    "冼": ("xian", None),
    "沈": ("shen", None),
    "石": ("shi", None),
    "任": ("ren", None),
    "褚": ("chu", None),
}

COMPOUND_SURNAMES: dict[str, str] = {  # their syllables (欧阳 is o-y in the initials)
    "欧阳": "ou yang",
    "司马": "si ma",
    "上官": "shang guan",
    "诸葛": "zhu ge",
    "令狐": "ling hu",
    "尉迟": "yu chi",
    "万俟": "mo qi",
    "长孙": "zhang sun",
    "澹台": "tan tai",
    "单于": "chan yu",
    "皇甫": "huang fu",
    "东方": "dong fang",
    "慕容": "mu rong",
    "宇文": "yu wen",
    "公孙": "gong sun",
    "夏侯": "xia hou",
    "司徒": "si tu",
    "司空": "si kong",
    "端木": "duan mu",
    "南宫": "nan gong",
    "拓跋": "tuo ba",
    "呼延": "hu yan",
    "申屠": "shen tu",
    "轩辕": "xuan yuan",
    "独孤": "du gu",
    "闻人": "wen ren",
    "西门": "xi men",
    "百里": "bai li",
    "淳于": "chun yu",
    "钟离": "zhong li",
    "宗政": "zong zheng",
    "赫连": "he lian",
    "濮阳": "pu yang",
    "太史": "tai shi",
    "公冶": "gong ye",
    "乐正": "yue zheng",
    "亓官": "qi guan",
    "子车": "zi ju",
}

_DROP = re.compile(r"[\s·•・.\-'’_]+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_MRN = re.compile(r"[^a-z0-9]+")
# ASCII digits spelt out: \d would take Arabic-Indic or other scripts' digits, which no stored
# number holds (enrolment refuses them; fullwidth ones are NFKC-folded to 0-9 before this).
_ID = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
_PHONE4 = re.compile(r"[0-9]{4}", re.ASCII)

NAME_KEY_MAX = 100
PINYIN_KEY_MAX = 200
INITIALS_KEY_MAX = 50
MRN_KEY_MAX = 32


@dataclass(frozen=True, slots=True)
class NameKeys:
    name: str  # the characters, folded
    given: str  # without the surname
    pinyin: str
    initials: str
    pinyin_alt: str | None  # the everyday reading of the surname, when it differs
    initials_alt: str | None


def fold(text: str) -> str:
    """NFKC, case folded, with spaces, dots, hyphens and apostrophes dropped."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def _ascii(text: str) -> str:
    """Latin letters without their accents (Müller -> muller)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == " "))


def _readings(text: str) -> list[str]:
    """One reading per character of Chinese text, and each latin word as one unit."""
    from pypinyin import Style, lazy_pinyin  # the dictionaries load on first use

    out: list[str] = []
    for part in lazy_pinyin(text, style=Style.NORMAL):
        words = _LATIN_WORD.findall(_ascii(part.casefold()))
        out.extend(words)
    return out


def _split_surname(name: str) -> tuple[str, str]:
    """(surname, given name) of a Chinese name (spaces kept); no surname for other names."""
    head = name.lstrip()
    if not head or not _HAN.match(head[0]):
        return "", name
    if fold(head)[:2] in COMPOUND_SURNAMES and len(fold(head)) > 2:
        n = 2 + (1 if head[1] == " " else 0)
        return fold(head[:n]), head[n:]
    return head[:1], head[1:]


def _surname_reading(surname: str) -> tuple[list[str], list[str] | None]:
    """The surname's syllables as a surname, and the everyday ones when they differ."""
    everyday = _readings(surname)
    if surname in COMPOUND_SURNAMES:
        reading = COMPOUND_SURNAMES[surname].split()
        return reading, (everyday if everyday != reading else None)
    if surname in POLYPHONIC_SURNAMES:
        reading_, alt = POLYPHONIC_SURNAMES[surname]
        alt_syllables = [alt] if alt is not None else everyday
        return [reading_], (alt_syllables if alt_syllables != [reading_] else None)
    return everyday, None


@lru_cache(maxsize=4096)
def name_keys(raw: str) -> NameKeys:
    """Every key her name is found by."""
    name = fold(raw)[:NAME_KEY_MAX]
    spaced = _DROP.sub(" ", unicodedata.normalize("NFKC", raw).casefold()).strip()
    if "·" in unicodedata.normalize("NFKC", raw) or not _HAN.search(name):
        # A minority name (阿依古丽·买买提) or a latin one: no surname to read apart.
        surname, given = "", spaced
    else:
        surname, given = _split_surname(spaced)
    given_syllables = _readings(given)
    if surname:
        reading, alt = _surname_reading(surname)
    else:
        reading, alt = [], None
    pinyin = "".join(reading + given_syllables)
    initials = "".join(s[0] for s in reading + given_syllables if s)
    pinyin_alt = initials_alt = None
    if alt is not None:
        pinyin_alt = "".join(alt + given_syllables)
        initials_alt = "".join(s[0] for s in alt + given_syllables)
    return NameKeys(
        name=name,
        given=fold(given)[:NAME_KEY_MAX] if surname else "",
        pinyin=pinyin[:PINYIN_KEY_MAX],
        initials=initials[:INITIALS_KEY_MAX],
        pinyin_alt=pinyin_alt[:PINYIN_KEY_MAX] if pinyin_alt else None,
        initials_alt=(
            initials_alt[:INITIALS_KEY_MAX] if initials_alt and initials_alt != initials else None
        ),
    )


def mrn_key(mrn: str) -> str:
    """MRN0001, mrn 0001 and MRN-0001 are one key: mrn0001."""
    return _MRN.sub("", unicodedata.normalize("NFKC", mrn).casefold())[:MRN_KEY_MAX]


def phone_key(phone: str) -> str:
    """The last four digits of her phone (0-9 only: str.isdigit() takes other scripts' too)."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", phone) if "0" <= c <= "9")
    return digits[-4:]


@dataclass(frozen=True, slots=True)
class Query:
    """What one typed search box value may mean; None where it cannot be that."""

    name: str | None  # characters: prefix of her name or of her given name
    latin: str | None  # pinyin or initials prefix
    mrn: str | None  # exact, then prefix, of the folded MRN
    phone4: str | None  # her phone's last four digits
    mobile: str | None  # her full mobile
    national_id: str | None  # exact


def parse_query(raw: str) -> Query:
    folded = fold(raw)
    compact = re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", raw)).upper()
    digits = compact.removeprefix("+86") if compact.startswith("+86") else compact
    latin = _ascii(folded)
    is_latin = bool(latin) and latin.isalpha() and not _HAN.search(folded)
    mrn = mrn_key(raw) if folded.isascii() else ""
    return Query(
        name=folded if folded and not folded.isascii() else None,
        latin=latin if is_latin else None,
        mrn=mrn or None,
        phone4=compact if _PHONE4.fullmatch(compact) else None,
        mobile=digits if _MOBILE.fullmatch(digits) else None,
        national_id=compact if _ID.fullmatch(compact) else None,
    )


def prefix_upper(prefix: str) -> str:
    """The least string above every string that starts with prefix (code-point order, which
    is the byte order of UTF-8 that SQLite's BINARY and PostgreSQL's "C" collation compare)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:  # pragma: no cover - no key ends so
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)


KEY_COLUMNS = (
    "search_name",
    "search_given",
    "search_pinyin",
    "search_pinyin_alt",
    "search_initials",
    "search_initials_alt",
    "search_mrn",
    "search_phone4",
)


def keys_for(field: str, value: str | None) -> dict[str, str | None]:
    """The key columns that follow from setting one of her fields (name, mrn or phone)."""
    if value is None:
        return {}
    if field == "name":
        keys = name_keys(value)
        return {
            "search_name": keys.name or None,
            "search_given": keys.given or None,
            "search_pinyin": keys.pinyin or None,
            "search_pinyin_alt": keys.pinyin_alt,
            "search_initials": keys.initials or None,
            "search_initials_alt": keys.initials_alt,
        }
    if field == "mrn":
        return {"search_mrn": mrn_key(value) or None}
    if field == "phone":
        return {"search_phone4": phone_key(value) or None}
    return {}


def row_keys(name: str, mrn: str, phone: str) -> dict[str, str | None]:
    """Every key column of one mother (the migration's backfill, the benchmark's seeding)."""
    return keys_for("name", name) | keys_for("mrn", mrn) | keys_for("phone", phone)
