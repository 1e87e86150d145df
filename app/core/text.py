"""Text that people read on a screen: names normalised to one form, with no invisible characters.

A name is shown on the waiting-room TV, the station's call screen, the butler's phone and the
desk. A character that draws nothing or reorders what follows — a zero-width space or joiner,
a right-to-left override (U+202E), a byte-order mark, a tab or a line separator — would let one
name look like another there, or hide an extra name inside it, and two spellings of one name
would not meet in a search. So every such name is NFC-normalised (a decomposed 王 or é typed on
one keyboard equals the composed one typed on another) and refused, with the character named as
U+XXXX and its place, when it holds a control (Cc), format (Cf) or surrogate (Cs) character or
a line or paragraph separator (Zl, Zp).

Also refused: characters that draw nothing though Unicode files them elsewhere (Hangul fillers,
the combining grapheme joiner, the blank braille pattern …), a variation selector that follows
anything but a Han character, and a name with no letter in it (combining marks alone).

What is not refused, on purpose: unassigned code points (a rare character of a newer Unicode
than this Python's, as names in 生僻字 need), private-use ones (some Chinese systems still write
such characters there), other combining marks, and variation selectors after a Han character
(a glyph variant, as rare names need).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

NAME_MAX_LENGTH = 100  # the width of every name column (mothers, users, butlers)

# Control, format, surrogate; line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_CATEGORY_WORDS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a lone surrogate",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def describe_char(char: str) -> str:
    """U+202E RIGHT-TO-LEFT OVERRIDE (the name is absent for controls: U+0009)."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


# Characters that draw nothing though they are not format characters: Unicode's
# Default_Ignorable_Code_Point ones outside Cf (Hangul fillers, the combining grapheme joiner,
# Mongolian free variation selectors, Khmer inherent vowels) and the blank braille pattern.
# Variation selectors are accepted only where they choose a Han character's glyph (an
# ideographic variation sequence, as rare names need): see _HAN_VARIANTS.
INVISIBLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x2800, 0x3164}
    | {0xFFA0}
    | set(range(0xFFF0, 0xFFF9))
)
# Accepted after a Han character: the ideographic variation selectors, and the three that
# the standardized variation sequences of CJK compatibility ideographs use (U+FE00-FE02).
_HAN_VARIANTS = frozenset(range(0xFE00, 0xFE03)) | frozenset(range(0xE0100, 0xE01F0))
# The other variation selectors (U+FE03-FE0F: emoji or text style, and others) draw nothing
# in a name anywhere.
_VARIATION_SELECTORS = frozenset(range(0xFE00, 0xFE10)) | _HAN_VARIANTS


_SHOWS = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Co", "Cn"})


def _is_han(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY"))


def clean_name(value: str) -> str:
    """NFC form of a name; ValueError naming the first refused character and its place."""
    value = unicodedata.normalize("NFC", value)
    for place, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        code = ord(char)
        invisible = code in INVISIBLE or (
            code in _VARIATION_SELECTORS
            and not (code in _HAN_VARIANTS and place > 1 and _is_han(value[place - 2]))
        )
        if category in REFUSED_CATEGORIES or invisible:
            what = _CATEGORY_WORDS.get(category, "a character that draws nothing")
            if invisible:
                what = "a character that draws nothing here"
            raise ValueError(
                f"contains {describe_char(char)} ({what}) at character "
                f"{place}; names may not hold control or invisible characters, which would "
                "make one name look like another on the clinic's screens"
            )
    # A name must show something: at least one letter, digit, private-use or not-yet-assigned
    # character (a rare one); combining marks alone draw nothing.
    if value and not any(unicodedata.category(c) in _SHOWS for c in value):
        raise ValueError("has no letter in it (only marks, spaces or symbols)")
    if len(value) > NAME_MAX_LENGTH:  # NFC can lengthen a few composition exclusions
        raise ValueError(f"is longer than {NAME_MAX_LENGTH} characters")
    return value


# A person's name as people read it: a mother's, a staff member's, a butler's.
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
    AfterValidator(clean_name),
]
