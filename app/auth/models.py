from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UUIDPrimaryKey, str_enum


class Role(StrEnum):
    ADMIN = "admin"
    FRONT_DESK = "front_desk"
    BUTLER = "butler"
    DOCTOR = "doctor"
    STATION = "station"
    NUTRITIONIST = "nutritionist"
    LAB_SYSTEM = "lab_system"


USER_ROLES = (
    Role.ADMIN,
    Role.FRONT_DESK,
    Role.BUTLER,
    Role.DOCTOR,
    Role.STATION,
    Role.NUTRITIONIST,
)
CLIENT_ROLES = (Role.LAB_SYSTEM,)

role_enum = str_enum(Role, "role")

# A station account is bound to a station (or disabled until it is); other roles are not.
STATION_BINDING_SQL = (
    "(role = 'station' AND (station_code IS NOT NULL OR NOT is_active))"
    " OR (role <> 'station' AND station_code IS NULL)"
)


class User(UUIDPrimaryKey, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(role_enum)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    # A station account works at one station only (issue 17): its code. Every other role has
    # none. An unbound station account can exist only disabled (migration 0026 leaves one so
    # when it cannot tell the station), and is enabled again with its station.
    station_code: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("stations.code", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (CheckConstraint(STATION_BINDING_SQL, name="station_binding"),)


class AuthToken(UUIDPrimaryKey, Base):
    """A login session. Only the SHA-256 of the bearer secret is kept."""

    __tablename__ = "auth_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(100))


class ApiClient(UUIDPrimaryKey, Base):
    """A partner system (the lab report system) that calls with an API key and signs webhooks."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[Role] = mapped_column(role_enum)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    # Newest first. The older ones stay valid until signing_secrets_retire_at, so that a sender
    # can rotate without downtime (POST /v1/api-clients/{id}/rotate-signing-secret).
    signing_secrets: Mapped[list[str]] = mapped_column(JSON, default=list)
    signing_secrets_retire_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    def live_signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery may be signed with now: the newest, and the older ones
        until their retirement."""
        newest, older = self.signing_secrets[:1], self.signing_secrets[1:]
        retire_at = self.signing_secrets_retire_at
        return newest + older if retire_at is not None and now < retire_at else newest
