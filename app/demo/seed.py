"""Seed a demo clinic: one user per role and one account per station, butlers on a roster,
mothers at different weeks, and (app/demo/day.py) a day in progress today."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta

import httpx
from sqlalchemy import func, select, update
from starlette.types import ASGIApp

from app.assignments.domain import parse_weights
from app.assignments.repository import AssignmentRepository
from app.assignments.service import Policy, assign_primary
from app.auth import service as auth_service
from app.auth.models import Role, User
from app.auth.repository import AuthRepository
from app.butlers import service as butler_service
from app.butlers.models import Skill
from app.butlers.repository import ButlerRepository
from app.butlers.schemas import ButlerCreate, Shift
from app.core.clock import SystemClock, local_today
from app.core.database import create_engine
from app.core.principal import Principal, PrincipalKind
from app.core.secretbox import SecretBox
from app.core.settings import Settings
from app.demo.day import play_day
from app.mothers import service as mother_service
from app.mothers.domain import RiskGrade, check_digit
from app.mothers.repository import MotherRepository
from app.mothers.schemas import MotherCreate, PregnancyCreate
from app.queues.models import Station
from app.visits import service as visit_service
from app.visits.repository import VisitRepository
from app.visits.schemas import ClinicSessionCreate
from app.wiring import session_factory

STAFF = [
    ("admin", "Clinic Admin", Role.ADMIN),
    ("frontdesk", "前台 周丽", Role.FRONT_DESK),
    ("doctor", "产科 陈医生", Role.DOCTOR),
    # The nutritionist sees mothers at the nutrition station (NUT, migration 0018), which the
    # demo opens around the clock with the others.
    ("nutritionist", "营养科 林营养师", Role.NUTRITIONIST),
    ("butler-wang", "王芳", Role.BUTLER),
    ("butler-li", "李静", Role.BUTLER),
    ("butler-zhang", "张敏", Role.BUTLER),
]
# One account per station, each bound to its station (issue 17): it calls and serves there only.
STATION_ACCOUNTS = [
    ("station-vitals", "体征测量 Vitals", "VIT"),
    ("station-blood", "采血室 Blood draw", "LAB"),
    ("station-urine", "尿检 Urine", "URI"),
    ("station-us", "超声室 Ultrasound", "US"),
    ("station-nst", "胎心监护 NST", "NST"),
    ("station-exam", "检查室 Exam room", "EXM"),
    ("station-doctor", "诊室 Doctor", "DOC"),
    ("station-nutrition", "营养门诊 Nutrition", "NUT"),
]
BUTLERS = {
    "butler-wang": ([Skill.HIGH_RISK, Skill.INFECTION_CONTROL], ["zh-CN"], 12),
    "butler-li": ([Skill.HIGH_RISK, Skill.NUTRITION], ["zh-CN", "en"], 10),
    "butler-zhang": ([Skill.LACTATION], ["zh-CN", "yue"], 8),
}
# (MRN, name, birth date, phone, days since LMP, gravida, para, grade, butler)
MOTHERS = [
    (
        "MRN0001",
        "刘小雨",
        date(1994, 3, 7),
        "13800138001",
        70,
        1,
        0,
        RiskGrade.GREEN,
        "butler-zhang",
    ),
    (
        "MRN0002",
        "陈思琪",
        date(1991, 8, 21),
        "13900139002",
        171,
        2,
        1,
        RiskGrade.YELLOW,
        "butler-li",
    ),
    (
        "MRN0003",
        "赵雅婷",
        date(1987, 12, 2),
        "13700137003",
        190,
        3,
        1,
        RiskGrade.ORANGE,
        "butler-wang",
    ),
    ("MRN0004", "孙悦", date(1996, 5, 30), "15800158004", 240, 1, 0, RiskGrade.RED, "butler-li"),
    (
        "MRN0005",
        "周晓燕",
        date(1993, 1, 15),
        "18600186005",
        98,
        1,
        0,
        RiskGrade.PURPLE,
        "butler-wang",
    ),
    (
        "MRN0006",
        "吴静怡",
        date(1998, 10, 9),
        "13600136006",
        262,
        2,
        0,
        RiskGrade.GREEN,
        "butler-zhang",
    ),
]
WEEKDAY_SHIFTS = [Shift(weekday=d, starts_at=time(7, 30), ends_at=time(17, 0)) for d in range(5)]


def demo_national_id(region: str, born: date, serial: str) -> str:
    first17 = f"{region}{born:%Y%m%d}{serial}"
    return first17 + check_digit(first17)


def _say(step: int, total: int, text: str) -> None:
    print(f"[{step}/{total}] {text}", flush=True)


async def seed_demo(
    settings: Settings,
    *,
    only_if_empty: bool,
    app_factory: Callable[[Settings], ASGIApp] | None = None,
) -> int:
    """The demo clinic; with ``app_factory`` (the service's app), also today's demo day,
    played through its API (app/demo/day.py)."""
    engine = create_engine(settings)
    clock = SystemClock()
    now = clock.now()
    today = local_today(clock, settings.tz)
    total = 5
    try:
        async with session_factory(engine)() as session:
            users_count = await session.scalar(select(func.count()).select_from(User))
            if users_count:
                if only_if_empty:
                    print("database already has users: demo seeding skipped")
                    return 0
                print("refusing to seed a database that already has users")
                return 2
            auth_repo = AuthRepository(session)
            _say(1, total, "staff accounts, one per role")
            users: dict[str, User] = {}
            for username, display, role in STAFF:
                users[username] = await auth_service.create_user(
                    auth_repo,
                    username=username,
                    display_name=display,
                    role=role,
                    password=settings.demo_password,
                    now=now,
                )
            for username, display, code in STATION_ACCOUNTS:
                users[username] = await auth_service.create_user(
                    auth_repo,
                    username=username,
                    display_name=display,
                    role=Role.STATION,
                    password=settings.demo_password,
                    now=now,
                    station_code=code,
                )
            _say(2, total, "butlers with skills, languages and a weekday roster")
            butler_repo = ButlerRepository(session)
            butler_ids = {}
            for username, (skills, languages, caseload) in BUTLERS.items():
                user = users[username]
                butler, _ = await butler_service.create_butler(
                    butler_repo,
                    auth_repo,
                    data=ButlerCreate(
                        user_id=user.id,
                        display_name=user.display_name,
                        skills=skills,
                        languages=languages,
                        max_caseload=caseload,
                        roster=WEEKDAY_SHIFTS,
                    ),
                    now=now,
                )
                butler_ids[username] = butler.id
            _say(3, total, "mothers at different weeks and risk grades")
            actor = Principal(
                kind=PrincipalKind.USER,
                id=users["frontdesk"].id,
                name="frontdesk",
                role=Role.FRONT_DESK.value,
            )
            mother_repo = MotherRepository(session)
            policy = Policy(
                weights=parse_weights(settings.caseload_weights),
                visit_minutes=settings.visit_minutes,
                tz=settings.tz,
            )
            for i, (mrn, name, born, phone, days, gravida, para, grade, owner) in enumerate(
                MOTHERS, start=1
            ):
                mother, pregnancy = await mother_service.enrol_mother(
                    mother_repo,
                    butler_repo,
                    data=MotherCreate(
                        mrn=mrn,
                        name=name,
                        national_id=demo_national_id("110105", born, f"{i:02d}2"),
                        phone=phone,
                        language="zh-CN",
                        pregnancy=PregnancyCreate(
                            lmp_date=today - timedelta(days=days),
                            gravida=gravida,
                            para=para,
                            risk_grade=grade,
                        ),
                    ),
                    actor=actor,
                    today=today,
                    now=now,
                    care_plan_code=settings.care_plan_guideline,
                )
                await assign_primary(
                    AssignmentRepository(session),
                    mother=mother,
                    pregnancy=pregnancy,
                    requested=butler_ids[owner],
                    reason="enrolment (demo)",
                    actor=actor,
                    now=now,
                    policy=policy,
                )
            _say(4, total, "clinic sessions: today (all day, for trying it out) and two weeks")
            await visit_service.create_sessions(
                VisitRepository(session),
                data=ClinicSessionCreate(
                    name="VIP clinic (demo day)",
                    session_date=today,
                    starts_at=time(0, 0),
                    ends_at=time(23, 59, 59),
                    per_hour=8,
                ),
                now=now,
            )
            for offset in range(1, 15):
                day = today + timedelta(days=offset)
                if day.weekday() >= 5:
                    continue
                for starts, ends in ((time(8, 0), time(12, 0)), (time(13, 30), time(16, 30))):
                    await visit_service.create_sessions(
                        VisitRepository(session),
                        data=ClinicSessionCreate(
                            name="VIP clinic",
                            session_date=day,
                            starts_at=starts,
                            ends_at=ends,
                            per_hour=8,
                        ),
                        now=now,
                    )
            # The demo day runs around the clock, and so do its stations, so that the
            # walk-through works whenever it is tried.
            await session.execute(
                update(Station).values(opens_at=time(0, 0), closes_at=time(23, 59, 59))
            )
            _say(5, total, "lab report system client")
            await auth_service.create_api_client(
                auth_repo,
                name="Hospital LIS",
                role=Role.LAB_SYSTEM,
                now=now,
                api_key=settings.demo_lab_api_key,
                signing_secret=settings.demo_lab_secret,
                box=SecretBox.from_setting(settings.secrets_keys),
            )
            await session.commit()
    finally:
        await engine.dispose()
    if app_factory is not None:
        print("      and today: check-ins, queues, a call, lab reports, an alert, a plan")
        app = app_factory(settings)
        try:
            for line in await play_day(httpx.ASGITransport(app=app), settings):
                print(f"      {line}")
        finally:
            await app.state.engine.dispose()  # type: ignore[attr-defined]

    print()
    print("Demo clinic ready. Every demo user has the password:", settings.demo_password)
    print("  users: " + ", ".join(u for u, _, _ in STAFF))
    print("  station accounts: " + ", ".join(f"{u} ({c})" for u, _, c in STATION_ACCOUNTS))
    print("  lab client API key (X-API-Key):", settings.demo_lab_api_key)
    print("  lab client signing secret:", settings.demo_lab_secret)
    return 0
