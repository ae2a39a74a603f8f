"""HearthSettings: the settings every Hearth service shares, read from the environment.

Each service subclasses :class:`HearthSettings` with its own env prefix and
defaults::

    class AuthSettings(HearthSettings):
        model_config = SettingsConfigDict(env_prefix="HEARTH_AUTH_")
        service: str = "auth"
        database_url: SecretStr  # required by this service

and builds it inside ``create_app()`` (``AuthSettings.load()``), never at import,
so tests can pass their own.

Values come from, highest first: constructor arguments, environment variables,
the secrets file (a dotenv file, ``var/secrets.env`` unless ``HEARTH_SECRETS_FILE``
says otherwise), then the defaults. ``HEARTH_ENV`` and ``HEARTH_SECRETS_FILE``
are read without the service prefix.

Outside ``development`` and ``test``, a secret left at a placeholder (empty,
``changeme``, ``password``...) is refused with a :class:`ConfigError` naming the
env var. Secret values are :class:`pydantic.SecretStr` and never appear in a
repr, a log line or an error.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hearth.common.errors import ConfigError
from hearth.common.logins import service_username

__all__ = [
    "DEFAULT_SECRETS_FILE",
    "Environment",
    "HearthSettings",
    "LogLevel",
    "ServiceUrl",
    "is_placeholder",
]

Environment = Literal["production", "development", "test"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

DEFAULT_SECRETS_FILE = Path("var/secrets.env")
"""Where the generated secrets file lives unless ``HEARTH_SECRETS_FILE`` says otherwise."""

_SECRETS_FILE_ENV = "HEARTH_SECRETS_FILE"
_UNPREFIXED = {"env": "HEARTH_ENV", "secrets_file": _SECRETS_FILE_ENV}
_PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "change-this",
        "change_this",
        "secret",
        "password",
        "passwd",
        "placeholder",
        "example",
        "default",
        "todo",
        "tbd",
        "none",
        "null",
        "test",
        "admin",
    }
)
_PLACEHOLDER_PATTERNS = (
    re.compile(r"x{3,}", re.IGNORECASE),  # xxx, XXXXXX
    re.compile(r"\*+"),  # a masked value copied back in
    re.compile(r"<.*>|\$\{.*\}|\{\{.*\}\}"),  # an unfilled template
)
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


ServiceUrl = Annotated[str, AfterValidator(_http_url)]
"""A setting naming another service (or a document it serves) over HTTP: ``http://`` or
``https://``, kept without a trailing slash so ``f"{url}/path"`` is always right."""


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is a stand-in rather than a real secret (empty, ``changeme``...)."""
    text = value.strip().lower()
    return text in _PLACEHOLDERS or any(p.fullmatch(text) for p in _PLACEHOLDER_PATTERNS)


def _default_replica() -> str:
    """This host's name as a slug (the container id under Docker), else ``"0"``."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:63]
    return name if _SLUG.fullmatch(name) else "0"


def _secrets_file(values: dict[str, Any]) -> Path:
    given = values.get("secrets_file") or values.get(_SECRETS_FILE_ENV)
    if given:
        return Path(given)
    return Path(os.environ.get(_SECRETS_FILE_ENV) or DEFAULT_SECRETS_FILE)


class HearthSettings(BaseSettings):
    """The settings every service shares; subclass it with the service's env prefix."""

    model_config = SettingsConfigDict(
        env_prefix="HEARTH_",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        env_file_encoding="utf-8",
    )

    env: Environment = Field(
        default="production",
        validation_alias="HEARTH_ENV",
        description="production, development or test; read from HEARTH_ENV (no prefix).",
    )
    service: str = Field(default="hearth", description="The service's name, a slug.")
    replica: str = Field(
        default_factory=_default_replica,
        description="This replica's name, a slug; the host name unless set.",
    )
    log_level: LogLevel = "INFO"

    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql+asyncpg://user:password@host:port/db; a secret (it may "
        "carry a password).",
    )
    database_wait: float = Field(
        default=30.0, gt=0, description="Seconds to wait for PostgreSQL at startup."
    )
    heap_trim_interval: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between returns of freed heap memory to the operating system "
        "(glibc's malloc_trim; also once when the service has started); 0 turns it off.",
    )

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1884, ge=1, le=65535)
    mqtt_username: str = Field(
        default="", description="Broker login; svc-<service>-<replica> (this replica's) if unset."
    )
    mqtt_password: SecretStr = SecretStr("")
    mqtt_ca_file: Path | None = Field(
        default=None,
        description="MQTT over TLS, trusting this CA certificate (PEM; the broker's name is "
        "checked against mqtt_host); unset: plain MQTT (docs/broker.md, 'TLS').",
    )

    jwks_url: ServiceUrl = "http://127.0.0.1:8101/.well-known/jwks.json"
    token_issuer: str = "hearth-auth"  # noqa: S105 (an issuer name, not a password)
    token_audience: str = "hearth"  # noqa: S105
    token_leeway: float = Field(
        default=5.0, ge=0, le=300, description="Seconds of clock skew tolerated."
    )

    secrets_file: Path = Field(
        default=DEFAULT_SECRETS_FILE,
        validation_alias=_SECRETS_FILE_ENV,
        description="The dotenv file secrets are also read from; HEARTH_SECRETS_FILE.",
    )

    def __init__(self, **values: Any) -> None:
        # ``env`` and ``secrets_file`` are read from unprefixed variables (their aliases);
        # accept their field names as arguments too without letting HEARTH_<SERVICE>_ENV in.
        for name, alias in _UNPREFIXED.items():
            if name in values:
                values.setdefault(alias, values.pop(name))
        values.setdefault("_env_file", _secrets_file(values))
        super().__init__(**values)

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Build the settings from the environment and the secrets file (call in create_app)."""
        return cls(**overrides)

    @property
    def client_id(self) -> str:
        """The MQTT client id of this replica: ``<service>-<replica>``."""
        return f"{self.service}-{self.replica}"

    def require_database_url(self) -> str:
        """The database URL as text (a secret: never log it); ConfigError names the env var."""
        if self.database_url is None or not self.database_url.get_secret_value().strip():
            raise ConfigError(f"{self._env_name('database_url')} is required")
        return self.database_url.get_secret_value()

    @property
    def is_production(self) -> bool:
        """Whether this is a production run (placeholder secrets refused)."""
        return self.env == "production"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("service", "replica")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise ValueError("must be a slug: [a-z0-9][a-z0-9-]{0,62}")
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: SecretStr | None) -> SecretStr | None:
        # ConfigError (not ValueError) so pydantic cannot echo the URL in an error.
        if value is not None and value.get_secret_value().strip():
            scheme = value.get_secret_value().split("://", 1)[0]
            if scheme != "postgresql+asyncpg":
                raise ConfigError(
                    f"{cls._env_name('database_url')} must be a postgresql+asyncpg:// URL"
                )
        return value

    @model_validator(mode="after")
    def _finish(self) -> Self:
        if not self.mqtt_username:
            # Each replica's own login, bound to its client id (hearth.common.logins).
            object.__setattr__(self, "mqtt_username", service_username(self.service, self.replica))
        if self.env not in ("development", "test"):
            self._refuse_placeholders()
        return self

    def _refuse_placeholders(self) -> None:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, SecretStr):
                continue
            secret = value.get_secret_value()
            if name == "database_url":
                password = urlsplit(secret).password
                bad = not secret.strip() or (password is not None and is_placeholder(password))
            else:
                bad = is_placeholder(secret)
            if bad:
                raise ConfigError(
                    f"{self._env_name(name)} is empty or a placeholder; set a real secret "
                    f"(placeholders are only allowed when HEARTH_ENV is development or test)"
                )

    @classmethod
    def _env_name(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()
