from __future__ import annotations

import uuid
from datetime import datetime
from itertools import pairwise
from typing import Annotated, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.butlers.models import Skill
from app.core.pagination import PageInfo
from app.core.text import PersonName
from app.core.types import LocalTime

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
# Shown on the boards and the butler's phone: NFC, no invisible characters (app.core.text).
DisplayName = PersonName


class Shift(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday (ISO order).")
    starts_at: LocalTime = Field(examples=["08:00"])
    ends_at: LocalTime = Field(examples=["17:00"])

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at (split overnight duty in two)")
        return self


def _no_overlap(shifts: list[Shift]) -> list[Shift]:
    ordered = sorted(shifts, key=lambda s: (s.weekday, s.starts_at))
    for a, b in pairwise(ordered):
        if a.weekday == b.weekday and b.starts_at < a.ends_at:
            raise ValueError(f"shifts overlap on weekday {a.weekday}")
    return ordered


class RosterUpdate(BaseModel):
    shifts: list[Shift] = Field(max_length=50)

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.shifts = _no_overlap(self.shifts)
        return self


class ButlerCreate(BaseModel):
    user_id: uuid.UUID = Field(description="An account with the butler role, not yet linked.")
    display_name: DisplayName
    skills: list[Skill] = Field(default_factory=list, max_length=len(Skill))
    languages: list[Language] = Field(
        default_factory=lambda: ["zh-CN"], min_length=1, max_length=10
    )
    max_caseload: int = Field(ge=0, le=500, description="Weighted caseload the butler can carry.")
    roster: list[Shift] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.roster = _no_overlap(self.roster)
        self.skills = sorted(set(self.skills))
        return self


class ButlerUpdate(BaseModel):
    display_name: DisplayName | None = None
    skills: list[Skill] | None = Field(default=None, max_length=len(Skill))
    languages: list[Language] | None = Field(default=None, min_length=1, max_length=10)
    max_caseload: int | None = Field(default=None, ge=0, le=500)
    is_active: bool | None = Field(default=None, description="false: left or not taking mothers.")


class ButlerPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    skills: list[Skill]
    languages: list[str]
    max_caseload: int
    is_active: bool
    roster: list[Shift]
    created_at: datetime
    updated_at: datetime
    version: int


class ButlerPage(BaseModel):
    items: list[ButlerPublic]
    page: PageInfo
