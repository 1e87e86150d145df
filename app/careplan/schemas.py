from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel

from app.careplan.domain import WindowStatus
from app.visits.domain import VisitStatus


class PlannedExamPublic(BaseModel):
    code: str
    name: str
    fasting: bool
    optional: bool
    done: bool


class PlannedWindowPublic(BaseModel):
    code: str
    label: str
    ga_from: str
    ga_to: str
    start_date: date
    end_date: date
    risk_extra: bool
    status: WindowStatus
    exams: list[PlannedExamPublic]
    visit_ids: list[str]


class PlanVisit(BaseModel):
    id: uuid.UUID
    visit_date: date
    scheduled_at: datetime
    window_code: str | None
    status: VisitStatus


class CarePlanPublic(BaseModel):
    mother_id: uuid.UUID
    pregnancy_id: uuid.UUID
    guideline_code: str
    guideline_version: str
    edd_date: date
    gestational_age: str
    windows: list[PlannedWindowPublic]
    past_visits: list[PlanVisit]
    upcoming_visits: list[PlanVisit]


class GuidelineSummary(BaseModel):
    code: str
    version: str
    title: str
    windows: int
    exams: int


class GuidelineList(BaseModel):
    items: list[GuidelineSummary]
