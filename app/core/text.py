"""Text that people read on a screen: names normalised to one form, with no invisible characters.

A name is shown on the waiting-room TV, the station's call screen, the butler's phone and the
desk. A character that draws nothing or reorders what follows — a zero-width space or joiner,
a right-to-left override (U+202E), a byte-order mark, a tab or a line separator — would let one
name look like another there, or hide an extra name inside it, and two spellings of one name
would not meet in a search. So every such name is NFC-normalised (a decomposed 王 or é typed on
one keyboard equals the composed one typed on another) and refused, with the character named as
U+XXXX and its place, when it holds a control (Cc), format (Cf) or surrogate (Cs) character or
a line or paragraph separator (Zl, Zp).

What is not refused, on purpose: unassigned code points (a rare character of a newer Unicode
than this Python's, as names in 生僻字 need), private-use ones (some Chinese systems still write
such characters there) and combining marks such as variation selectors (a Han glyph variant).
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


def clean_name(value: str) -> str:
    """NFC form of a name; ValueError naming the first refused character and its place."""
    value = unicodedata.normalize("NFC", value)
    for place, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise ValueError(
                f"contains {describe_char(char)} ({_CATEGORY_WORDS[category]}) at character "
                f"{place}; names may not hold control or invisible characters, which would "
                "make one name look like another on the clinic's screens"
            )
    if len(value) > NAME_MAX_LENGTH:  # NFC can lengthen a few composition exclusions
        raise ValueError(f"is longer than {NAME_MAX_LENGTH} characters")
    return value


# A person's name as people read it: a mother's, a staff member's, a butler's.
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
    AfterValidator(clean_name),
]
