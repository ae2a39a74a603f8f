"""The auth service's tables (schema ``auth``) and the schemas its API reads and writes.

One family per entity: ``UserCreate``/``UserUpdate``/``UserAdminUpdate`` in,
``UserPublic`` out; the table model :class:`User` (it holds the password hash) is
never returned. Every input model forbids unknown fields.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, Float, LargeBinary, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from hearth.common.clock import utc_now
from hearth.common.db import service_registry, timestamp_column
from hearth.common.inputs import FreeText, Slug, Text
from hearth.common.schemas import InputModel
from hearth.common.usernames import Username

__all__ = [
    "ADMIN_ROLE",
    "API_SCOPES",
    "SCHEMA",
    "ApiKey",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "AuthModel",
    "JsonWebKey",
    "JsonWebKeySet",
    "KnownAddress",
    "LoginThrottle",
    "PasswordChange",
    "RefreshRequest",
    "RefreshToken",
    "Role",
    "RotatedKey",
    "Scope",
    "ServiceTokenResponse",
    "SigningKeyRecord",
    "TokenResponse",
    "User",
    "UserAdminUpdate",
    "UserBatchCreate",
    "UserCreate",
    "UserId",
    "UserPublic",
    "UserSignup",
    "UserUpdate",
]

SCHEMA = "auth"

Role = Literal["admin"]
"""The platform roles a user may hold (``admin`` or none)."""
ADMIN_ROLE: Role = "admin"

Scope = Literal["read", "control", "admin"]
"""A token scope: ``read`` reads, ``control`` sends commands, ``admin`` manages homes."""
API_SCOPES: tuple[Scope, ...] = ("read", "control", "admin")

Password = Annotated[str, Text(256, min_length=8)]
"""A new password: 8 to 256 characters, no control characters, kept exactly as typed."""
DisplayName = Annotated[str, FreeText(100)]
"""A display name: free text (NFC, trimmed, no control characters), at most 100 characters."""


# ----------------------------------------------------------------------------- tables


class AuthModel(SQLModel, registry=service_registry(SCHEMA)):
    """Base of every auth table model: tables land in schema ``auth``."""


class User(AuthModel, table=True):
    """A person who logs in. Never returned as is: :class:`UserPublic` is its public face.

    ``not_before_ms`` is the revocation mark (epoch ms): tokens issued before it are
    refused; ``0`` means none.
    """

    __tablename__ = "users"

    id: uuid.UUID = SQLField(default_factory=uuid.uuid4, primary_key=True)
    username: str = SQLField(max_length=63, unique=True)
    display_name: str = SQLField(default="", max_length=100)
    password_hash: str = SQLField(max_length=512)
    is_admin: bool = False
    disabled: bool = False
    not_before_ms: int = SQLField(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    updated_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())

    @property
    def roles(self) -> list[Role]:
        """The user's roles as tokens and the API carry them."""
        return [ADMIN_ROLE] if self.is_admin else []


class RefreshToken(AuthModel, table=True):
    """One refresh token of a family (a login); only its SHA-256 is stored.

    Using a token marks it ``used_at`` and issues the next one of the family; using
    a used token again revokes the whole family (``revoked_at``).
    """

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = SQLField(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = SQLField(index=True)
    user_id: uuid.UUID = SQLField(foreign_key="auth.users.id", index=True, ondelete="CASCADE")
    token_hash: str = SQLField(max_length=64, unique=True)
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    expires_at: datetime = SQLField(sa_column=timestamp_column())
    used_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))


class SigningKeyRecord(AuthModel, table=True):
    """An Ed25519 signing key: the private half AES-GCM encrypted, the public half raw.

    It is published in the JWKS from ``created_at`` and signs from ``activates_at``.
    """

    __tablename__ = "signing_keys"

    kid: str = SQLField(primary_key=True, max_length=64)
    private_key_encrypted: bytes = SQLField(sa_column=Column(LargeBinary, nullable=False))
    public_key: bytes = SQLField(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    activates_at: datetime = SQLField(sa_column=timestamp_column())


class LoginThrottle(AuthModel, table=True):
    """One throttle bucket (an address, or an account tried from unknown addresses).

    ``tat`` is the GCRA's theoretical arrival time in epoch seconds
    (:mod:`hearth.auth.throttle`); a row whose ``tat`` has passed is empty and pruned.
    """

    __tablename__ = "login_throttle"

    key: str = SQLField(primary_key=True, max_length=160)
    tat: float = SQLField(sa_column=Column(Float, nullable=False, index=True))


class KnownAddress(AuthModel, table=True):
    """An address (IPv4, or an IPv6 /64) that logged in to a user's account successfully."""

    __tablename__ = "known_addresses"

    user_id: uuid.UUID = SQLField(foreign_key="auth.users.id", primary_key=True, ondelete="CASCADE")
    address: str = SQLField(primary_key=True, max_length=64)
    last_login_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())


class ApiKey(AuthModel, table=True):
    """An app developer's API key: only the SHA-256 of its secret is stored.

    ``homes`` is ``None`` when the key is not limited to listed homes.
    """

    __tablename__ = "api_keys"

    id: uuid.UUID = SQLField(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="auth.users.id", index=True, ondelete="CASCADE")
    name: str = SQLField(max_length=100)
    secret_hash: str = SQLField(max_length=64)
    scopes: list[str] = SQLField(sa_column=Column(ARRAY(String(16)), nullable=False))
    homes: list[str] | None = SQLField(
        default=None, sa_column=Column(ARRAY(String(63)), nullable=True)
    )
    created_at: datetime = SQLField(default_factory=utc_now, sa_column=timestamp_column())
    last_used_at: datetime | None = SQLField(
        default=None, sa_column=timestamp_column(nullable=True)
    )
    revoked_at: datetime | None = SQLField(default=None, sa_column=timestamp_column(nullable=True))


# ----------------------------------------------------------------------------- schemas


class UserCreate(InputModel):
    """An admin creates a user."""

    username: Username
    password: Password
    display_name: DisplayName = ""
    roles: list[Role] = Field(default_factory=list, max_length=1)


class UserBatchCreate(InputModel):
    """An admin creates many users at once (a classroom); all or none."""

    users: list[UserCreate] = Field(min_length=1)


class UserSignup(InputModel):
    """Someone signs up (only when open sign-up is on)."""

    username: Username
    password: Password
    display_name: DisplayName = ""


class UserUpdate(InputModel):
    """What a user may change about themselves."""

    display_name: DisplayName | None = None


class UserAdminUpdate(InputModel):
    """What an admin may change about a user: roles, disabled, display name."""

    roles: list[Role] | None = Field(default=None, max_length=1)
    disabled: bool | None = None
    display_name: DisplayName | None = None


class PasswordChange(InputModel):
    """A user changes their password (every token of theirs is revoked)."""

    current_password: Annotated[str, Text(256)]
    new_password: Password


class RefreshRequest(InputModel):
    """A refresh token, to rotate (``/auth/refresh``) or to end its family (``/auth/logout``)."""

    refresh_token: Annotated[str, Text(256, min_length=1)]


class UserPublic(BaseModel):
    """A user as the API shows them (to themselves or to an admin)."""

    id: uuid.UUID
    username: str
    display_name: str
    roles: list[Role]
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        """The public face of ``user`` (no hash, no marks)."""
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            roles=user.roles,
            disabled=user.disabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class UserId(BaseModel):
    """Only a user's id: what a lookup by username reveals."""

    id: uuid.UUID


class ServiceTokenResponse(BaseModel):
    """The OAuth2 token response (RFC 6749 section 5.1) without a refresh token: API keys
    and client credentials exchange again when the token expires."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int
    scope: str


class TokenResponse(ServiceTokenResponse):
    """The OAuth2 token response of a login or a refresh: with the session's refresh token."""

    refresh_token: str


class ApiKeyCreate(InputModel):
    """A user creates an API key: a name, its scopes, optionally the homes it is limited to."""

    name: Annotated[str, FreeText(100, min_length=1)]
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    homes: list[Slug] | None = Field(default=None, min_length=1, max_length=100)


class ApiKeyPublic(BaseModel):
    """An API key as its owner sees it later (never the secret)."""

    id: uuid.UUID
    name: str
    scopes: list[str]
    homes: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        """The public face of ``key``."""
        return cls(
            id=key.id,
            name=key.name,
            scopes=key.scopes,
            homes=key.homes,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked=key.revoked_at is not None,
        )


class ApiKeyCreated(ApiKeyPublic):
    """A new API key: the only time ``key`` (the secret to exchange at auth) is shown."""

    key: str


class RotatedKey(BaseModel):
    """The signing key a rotation added: published now, signing from ``activates_at``."""

    kid: str
    activates_at: datetime


class JsonWebKey(BaseModel):
    """A public Ed25519 key as a JWK (RFC 8037)."""

    kty: Literal["OKP"] = "OKP"
    crv: Literal["Ed25519"] = "Ed25519"
    x: str
    kid: str
    use: Literal["sig"] = "sig"
    alg: Literal["EdDSA"] = "EdDSA"


class JsonWebKeySet(BaseModel):
    """The JWKS at ``/.well-known/jwks.json``."""

    keys: list[JsonWebKey]
