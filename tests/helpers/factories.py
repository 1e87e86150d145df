"""Builders of test data. Accounts get a token directly: argon2 is paid once per run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import ApiClient, AuthToken, Role, User
from app.butlers.models import Butler, RosterShift
from app.core.security import hash_password, new_token, token_digest
from app.mothers.domain import check_digit
from app.queues.models import Station

PASSWORD = "correct-horse-battery-staple"
LAB_KEY = "pbk_test_lab_key_0123456789"


@lru_cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def national_id(born: date = date(1995, 3, 7), serial: str = "002", region: str = "110105") -> str:
    first17 = f"{region}{born:%Y%m%d}{serial}"
    return first17 + check_digit(first17)


@dataclass
class Staff:
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    butlers: dict[str, Butler] = field(default_factory=dict)
    lab_client: ApiClient | None = None


ROLES = {
    "admin": Role.ADMIN,
    "frontdesk": Role.FRONT_DESK,
    "doctor": Role.DOCTOR,
    "station": Role.STATION,
    "nutritionist": Role.NUTRITIONIST,
    "butler1": Role.BUTLER,
    "butler2": Role.BUTLER,
}
# A station account works at its own station only (issue 17): "station" is the vitals
# station's, and every station has one of its own, "station-lab", "station-us" ...
STATION_OF_STATION = "VIT"


def station_login(code: str) -> str:
    """The test account of that station."""
    return "station" if code.upper() == STATION_OF_STATION else f"station-{code.lower()}"


async def make_staff(factory: async_sessionmaker[AsyncSession], *, now: datetime) -> Staff:
    staff = Staff()
    async with factory() as session:
        codes = list(await session.scalars(select(Station.code).order_by(Station.code)))
        accounts: dict[str, tuple[Role, str | None]] = {
            u: (r, STATION_OF_STATION if r is Role.STATION else None) for u, r in ROLES.items()
        }
        for code in codes:
            if code != STATION_OF_STATION:
                accounts[station_login(code)] = (Role.STATION, code)
        for username, (role, station_code) in accounts.items():
            user = User(
                username=username,
                display_name=username.title(),
                role=role,
                station_code=station_code,
                password_hash=password_hash(),
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(user)
            await session.flush()
            secret = new_token("pbt")
            session.add(
                AuthToken(
                    user_id=user.id,
                    token_hash=token_digest(secret),
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            staff.users[username] = user
            staff.tokens[username] = secret
            if role is Role.BUTLER:
                butler = Butler(
                    user_id=user.id,
                    display_name=username.title(),
                    skills=["high_risk"],
                    languages=["zh-CN"],
                    max_caseload=10,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
                session.add(butler)
                await session.flush()
                session.add_all(
                    RosterShift(
                        butler_id=butler.id, weekday=day, starts_at=time(7), ends_at=time(19)
                    )
                    for day in range(7)
                )
                staff.butlers[username] = butler
        staff.lab_client = ApiClient(
            name="Test LIS",
            role=Role.LAB_SYSTEM,
            key_hash=token_digest(LAB_KEY),
            key_prefix=LAB_KEY[:12],
            signing_secrets=["test-secret"],
            is_active=True,
            created_at=now,
        )
        session.add(staff.lab_client)
        await session.commit()
    return staff


def mother_body(**overrides: Any) -> dict[str, Any]:
    serial = overrides.pop("serial", "002")
    body: dict[str, Any] = {
        "mrn": f"MRN{uuid.uuid4().hex[:8].upper()}",
        "name": "李小红",
        "national_id": national_id(serial=serial),
        "phone": "13800138000",
        "language": "zh-CN",
        "pregnancy": {"lmp_date": "2026-06-01", "gravida": 1, "para": 0, "risk_grade": "green"},
    }
    body.update(overrides)
    return body


# Her history at another hospital: a transfer whose booking panel (and anatomy scan) were done
# there, so that a test of something else sees only the exams of the day's window.
BOOKING_PANEL = (
    "cbc",
    "urine",
    "abo_rh",
    "fasting_glucose",
    "liver_kidney",
    "hbsag",
    "syphilis",
    "hiv",
)


async def record_elsewhere(
    client: Any,
    headers: dict[str, str],
    mother_id: str,
    exams: tuple[str, ...] | list[str] = BOOKING_PANEL,
    *,
    on: str = "2026-08-10",
    source: str = "Haidian MCH hospital (transfer letter)",
) -> None:
    """A doctor records her results from another hospital (the care plan's outside results)."""
    for code in exams:
        response = await client.post(
            f"/v1/mothers/{mother_id}/care-plan/outside-results",
            headers=headers,
            json={"exam_code": code, "result_date": on, "source": source, "summary": "normal"},
        )
        assert response.status_code == 201, response.text
