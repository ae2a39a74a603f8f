"""RegistrySettings: the registry's settings, from ``HEARTH_REGISTRY_*`` and the secrets file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from hearth.common.errors import ConfigError
from hearth.common.settings import HearthSettings, ServiceUrl
from hearth.registry.device_config import BrokerAddress

__all__ = ["RegistrySettings"]


class RegistrySettings(HearthSettings):
    """What the registry needs beyond :class:`HearthSettings`.

    ``auth_url`` is where auth answers (the user lookup when an owner adds a member);
    ``authorize_ttl`` is how long callers may cache an answer of ``/registry/authorize``.
    ``device_key`` (a secret) seals the device passwords kept in the database;
    ``device_broker_*`` is the broker as devices reach it (what the config download says).
    """

    model_config = SettingsConfigDict(env_prefix="HEARTH_REGISTRY_")

    service: str = "registry"
    auth_url: ServiceUrl = Field(
        default="http://127.0.0.1:8101", description="Base URL of the auth service."
    )
    auth_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds per auth call.")
    authorize_ttl: int = Field(
        default=5, ge=0, le=300, description="Seconds an authorisation answer may be cached."
    )
    event_publish_wait: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="Seconds a change waits for the broker to publish its event (then logged).",
    )
    device_key: SecretStr = Field(
        default=SecretStr(""),
        description="Seals device passwords in the database (HEARTH_REGISTRY_DEVICE_KEY; "
        "16+ characters, from the secrets file). Losing it loses every device login.",
    )
    device_broker_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=253,
        description="The broker's host name as devices reach it (the config download).",
    )
    device_broker_port: int = Field(
        default=1884, ge=1, le=65535, description="The broker's port as devices reach it."
    )
    device_broker_tls: bool = Field(
        default=False, description="Whether devices must use TLS to reach the broker."
    )
    device_broker_ca_file: Path | None = Field(
        default=None,
        description="The CA certificate (PEM) devices trust for the broker's TLS listener; "
        "the config download carries it when device_broker_tls is on (unset: a public CA).",
    )
    dynsec_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a device login change waits for the broker's answer (then 503).",
    )
    reconcile_at_start: bool = Field(
        default=True,
        description="Reconcile the broker's device logins once connected at start. Off only "
        "where several registries with different databases share one broker (tests).",
    )
    max_waiting: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Calls that may wait for a command's ack at once (then 503).",
    )
    sweep_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between sweeps (expired commands, silent devices).",
    )
    shadow_max_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=64 * 1024,
        le=4 * 1024**3,
        description="Bytes the in-memory shadow (reported state, last seen) may hold.",
    )

    def device_broker(self) -> BrokerAddress:
        """The broker as devices reach it; with TLS, the CA's PEM read from its file now."""
        ca = None
        if self.device_broker_tls and self.device_broker_ca_file is not None:
            name = self._env_name("device_broker_ca_file")
            try:
                ca = self.device_broker_ca_file.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"{name}: cannot read {self.device_broker_ca_file}: {exc}"
                ) from None
            if "-----BEGIN CERTIFICATE-----" not in ca:
                raise ConfigError(f"{name}: {self.device_broker_ca_file} holds no PEM certificate")
        return BrokerAddress(
            self.device_broker_host, self.device_broker_port, self.device_broker_tls, ca
        )
