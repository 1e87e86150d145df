"""Who a held result may belong to, and whether a chosen mother agrees with it. Pure."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class SentIdentity:
    """The patient as the message names her."""

    mrn: str | None
    name: str | None
    birth_date: date | None
    orders: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Person:
    mother_id: uuid.UUID
    mrn: str
    name: str
    birth_date: date
    orders: frozenset[str] = frozenset()  # her order numbers


@dataclass(slots=True)
class Candidate:
    mother_id: uuid.UUID
    score: int
    reasons: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


def same_name(a: str | None, b: str | None) -> bool:
    """Names compared without case, spaces, the family/given separator or width."""

    def folded(name: str) -> str:
        text = unicodedata.normalize("NFKC", name).casefold()
        return "".join(ch for ch in text if ch.isalnum())

    return bool(a and b) and folded(a or "") == folded(b or "")


def compare(sent: SentIdentity, person: Person) -> Candidate:
    """Score one mother against the message, saying why (and where they disagree)."""
    found = Candidate(person.mother_id, 0)
    if sent.mrn:
        if sent.mrn == person.mrn:
            found.score += 100
            found.reasons.append("MRN matches")
        else:
            found.disagreements.append(f"MRN differs (message {sent.mrn}, hers {person.mrn})")
    if sent.name:
        if same_name(sent.name, person.name):
            found.score += 40
            found.reasons.append("name matches")
        else:
            found.disagreements.append("name differs")
    if sent.birth_date:
        if sent.birth_date == person.birth_date:
            found.score += 30
            found.reasons.append("date of birth matches")
        else:
            found.disagreements.append("date of birth differs")
    ours = [o for o in sent.orders if o in person.orders]
    if ours:
        found.score += 50
        found.reasons.append(f"order {', '.join(ours)} is hers")
    return found


def rank(sent: SentIdentity, people: list[Person]) -> list[Candidate]:
    """Candidates with at least one reason, best first (ties: fewer disagreements first)."""
    found = [compare(sent, p) for p in people]
    found = [c for c in found if c.reasons]
    return sorted(found, key=lambda c: (-c.score, len(c.disagreements), str(c.mother_id)))


def agrees(sent: SentIdentity, person: Person) -> tuple[bool, str]:
    """May a report naming ``sent`` be attached to ``person`` without an override?

    Her MRN must be the one sent; a message with no MRN must carry her name and date of
    birth. Anything else needs a person's explicit override with a reason.
    """
    if sent.mrn:
        if sent.mrn != person.mrn:
            return False, f"the message names MRN {sent.mrn}; hers is {person.mrn}"
        # The MRN alone is not enough when the rest of the message says someone else.
        if sent.birth_date and sent.birth_date != person.birth_date:
            return False, "the MRN matches but the date of birth in the message is not hers"
        if sent.name and not same_name(sent.name, person.name):
            return False, "the MRN matches but the name in the message is not hers"
        return True, "MRN matches"
    if same_name(sent.name, person.name) and sent.birth_date == person.birth_date:
        return True, "no MRN in the message; name and date of birth match"
    return False, "the message names no MRN, and its name and date of birth do not both match"
