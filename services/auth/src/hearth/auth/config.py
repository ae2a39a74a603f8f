"""AuthSettings: the auth service's settings, read from ``HEARTH_AUTH_*`` and the secrets file."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hearth.common.service_identities import SERVICE_SCOPES, client_secret_key
from hearth.common.settings import HearthSettings
from hearth.common.usernames import check_username

__all__ = ["AuthSettings"]


class AuthSettings(HearthSettings):
    """What the auth service needs beyond :class:`HearthSettings`.

    ``key_encryption_key`` (a secret) encrypts the token signing keys kept in the
    database; ``admin_password`` (a secret) is the password of the admin created at
    first start, when no user exists yet. Open sign-up is off unless
    ``open_signup`` is set.
    """

    model_config = SettingsConfigDict(env_prefix="HEARTH_AUTH_")

    service: str = "auth"
    key_encryption_key: SecretStr = Field(
        default=SecretStr(""),
        description="Encrypts the signing keys in the database (any high-entropy string).",
    )
    admin_username: str = Field(default="admin", description="Username of the first admin.")
    admin_password: SecretStr = Field(
        default=SecretStr(""),
        description="Password of the first admin; no admin is seeded while it is empty.",
    )
    open_signup: bool = Field(
        default=False, description="Anyone may create an account at POST /auth/signup."
    )
    access_token_ttl: float = Field(default=900.0, ge=10, le=86400, description="Seconds.")
    refresh_token_ttl: float = Field(
        default=30 * 86400.0, ge=60, le=365 * 86400.0, description="Seconds."
    )
    key_rotation_interval: float = Field(
        default=90 * 86400.0,
        ge=60,
        description="A new signing key is made when the newest is older than this (seconds).",
    )
    key_publish_delay: float = Field(
        default=10.0,
        ge=0,
        description="A new key is published in the JWKS this long before it signs (seconds).",
    )
    key_retention: float = Field(
        default=2 * 86400.0,
        ge=0,
        description="A retired key stays in the JWKS this long after its successor signs.",
    )
    password_time_cost: int = Field(
        default=3, ge=1, le=20, description="Argon2id passes (pwdlib's default 3)."
    )
    password_memory_kib: int = Field(
        default=65536,
        ge=1024,
        le=1048576,
        description="Argon2id memory in KiB (pwdlib's default 64 MiB; tests use less).",
    )
    max_batch: int = Field(default=500, ge=1, le=10000, description="Users per batch create.")
    login_address_limit: int = Field(
        default=30, ge=1, le=100000, description="Failed logins per address per window."
    )
    login_address_window: float = Field(
        default=900.0, gt=0, description="Seconds of the per-address window."
    )
    login_account_limit: int = Field(
        default=100,
        ge=1,
        le=100000,
        description="Failed logins per account per window from addresses it never logged in from.",
    )
    login_account_window: float = Field(
        default=3600.0, gt=0, description="Seconds of the per-account window."
    )
    api_keys_per_user: int = Field(
        default=50, ge=1, le=1000, description="Live API keys a user may hold."
    )
    automation_client_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=client_secret_key("automation"),
        description="The automation service identity's secret (HEARTH_AUTOMATION_CLIENT_SECRET; "
        "no tokens for it while empty).",
    )

    def service_client_secrets(self) -> dict[str, str]:
        """Each service identity's configured secret (empty: that identity gets no tokens)."""
        configured = {"automation": self.automation_client_secret}
        return {name: configured[name].get_secret_value() for name in SERVICE_SCOPES}

    @model_validator(mode="after")
    def _retention_outlives_tokens(self) -> Self:
        if self.key_retention < self.access_token_ttl + self.token_leeway:
            raise ValueError(
                "key_retention must be at least access_token_ttl + token_leeway: a retired key "
                "stays in the JWKS until every token it signed has expired"
            )
        return self

    @field_validator("admin_username")
    @classmethod
    def _username(cls, value: str) -> str:
        return check_username(value)
