from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.models import Role
from app.core.pagination import PageInfo
from app.core.text import PersonName

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")
]
Password = Annotated[str, Field(min_length=12, max_length=256)]
# Shown on the console's top bar and the boards: NFC, no invisible characters (app.core.text).
DisplayName = PersonName
StationCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=10)
]
UserRole = Literal["admin", "front_desk", "butler", "doctor", "station"]


class LoginRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "frontdesk", "password": "butler-demo-2026"}]}
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    is_active: bool
    station_code: str | None = Field(
        default=None, description="A station account's station (it acts there only)."
    )
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_at: datetime
    user: UserPublic


class Me(BaseModel):
    kind: Literal["user", "client"]
    id: uuid.UUID
    name: str = Field(description="The username, or the API client's name.")
    display_name: str | None = Field(
        default=None, description="The user's name as people read it (a screen's top bar)."
    )
    role: Role
    butler_id: uuid.UUID | None = None
    station_code: str | None = Field(
        default=None,
        description="The station a station account is bound to (it calls and serves there "
        "only); null for every other account.",
    )


class UserCreate(BaseModel):
    username: Username
    display_name: DisplayName
    role: UserRole
    password: Password
    station_code: StationCode | None = Field(
        default=None,
        description="Required for a station account, and only for one: the station it works "
        "at (a known station's code, e.g. US). It acts at that station only.",
    )


class UserUpdate(BaseModel):
    display_name: DisplayName | None = None
    is_active: bool | None = Field(
        default=None, description="false disables the account and revokes all its tokens."
    )
    password: Password | None = Field(
        default=None, description="A new password; all existing tokens are revoked."
    )
    station_code: StationCode | None = Field(
        default=None,
        description="Move a station account to another station (a known station's code). "
        "Only station accounts have one; it cannot be removed from one.",
    )


class UserPage(BaseModel):
    items: list[UserPublic]
    page: PageInfo


class RevokedTokens(BaseModel):
    revoked: int = Field(description="How many live tokens were revoked.")


class ApiClientCreate(BaseModel):
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{2,99}$")
    ]
    role: Literal["lab_system"] = "lab_system"


class ApiClientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    role: Role
    key_prefix: str = Field(description="The first characters of the API key, to recognise it.")
    is_active: bool
    created_at: datetime
    signing_secrets_retire_at: datetime | None = Field(
        default=None,
        description="Deliveries signed with an older secret are accepted until then.",
    )


class ApiClientCreated(ApiClientPublic):
    api_key: str = Field(description="Shown once: send as 'X-API-Key'. Only a hash is stored.")
    signing_secret: str = Field(
        description="Shown once: the Standard Webhooks secret that signs this client's deliveries."
    )


class SigningSecretRotate(BaseModel):
    keep_previous_hours: int = Field(
        default=24,
        ge=0,
        le=168,
        description="How long deliveries signed with the secrets accepted until now are still "
        "accepted, while the sender switches over (0: refuse them at once, after a leak).",
    )


class SigningSecretRotated(ApiClientPublic):
    signing_secret: str = Field(
        description="Shown once: the new secret. Sign with it from now on; the signature "
        "header may carry the old and the new signature together while switching over."
    )


class ApiClientList(BaseModel):
    items: list[ApiClientPublic]
