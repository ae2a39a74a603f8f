"""RegistrySettings: the registry's settings, from ``HEARTH_REGISTRY_*`` and the secrets file."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from hearth.common.settings import HearthSettings, ServiceUrl

__all__ = ["RegistrySettings"]


class RegistrySettings(HearthSettings):
    """What the registry needs beyond :class:`HearthSettings`.

    ``auth_url`` is where auth answers (the user lookup when an owner adds a member);
    ``authorize_ttl`` is how long callers may cache an answer of ``/registry/authorize``.
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
