"""The device's config: the registry's JSON download (docs/devices.md, "Download the config").

``GET /registry/homes/{home}/devices/{device}/config?format=json`` answers one object;
:meth:`DeviceConfig.from_download` reads it, checks the fields the device needs and builds
the topics itself (:class:`hearth_device.protocol.topics.DeviceTopics`), refusing a download
whose topics disagree with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth_device.protocol.topics import DeviceTopics

__all__ = ["ConfigError", "DeviceConfig"]


class ConfigError(ValueError):
    """The download is not a device config (a field is missing or of the wrong type)."""


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in body:
        raise ConfigError(f"the config has no {key!r}")
    value = body[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"the config's {key!r} is not a {getattr(kind, '__name__', kind)}")
    return value


@dataclass(frozen=True)
class DeviceConfig:
    """Who the device is, where the broker is and what it can do."""

    home: str
    device: str
    name: str
    broker_host: str
    broker_port: int
    broker_tls: bool
    username: str
    password: str = field(repr=False)
    client_id: str
    interval: int
    metrics: list[dict[str, Any]]
    properties: list[dict[str, Any]]
    broker_ca: str | None = None
    """With TLS: the CA certificate (PEM) the download carries when the broker's certificate
    is not from a public CA."""

    @property
    def topics(self) -> DeviceTopics:
        """This device's topics."""
        return DeviceTopics(self.home, self.device)

    @classmethod
    def from_download(cls, body: object) -> DeviceConfig:
        """Read the decoded JSON download."""
        if not isinstance(body, dict):
            raise ConfigError("the config is not a JSON object")
        try:
            topics = DeviceTopics(_field(body, "home", str), _field(body, "device", str))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for key, expected in (
            ("status_topic", topics.status),
            ("ack_topic", topics.ack),
            ("command_filter", topics.command_filter),
        ):
            if key in body and body[key] != expected:
                raise ConfigError(f"the config's {key!r} is not {expected!r}")
        config = cls(
            home=topics.home,
            device=topics.device,
            name=_field(body, "name", str),
            broker_host=_field(body, "broker_host", str),
            broker_port=_field(body, "broker_port", int),
            broker_tls=_field(body, "broker_tls", bool),
            username=_field(body, "username", str),
            password=_field(body, "password", str),
            client_id=_field(body, "client_id", str),
            interval=_field(body, "interval", int),
            metrics=_field(body, "metrics", list),
            properties=_field(body, "properties", list),
            broker_ca=_field(body, "broker_ca", str) if body.get("broker_ca") else None,
        )
        for item in (*config.metrics, *config.properties):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ConfigError("every metric and property needs a name")
        return config

    @classmethod
    def load(cls, path: Path) -> DeviceConfig:
        """Read a JSON download saved at ``path``."""
        try:
            return cls.from_download(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not JSON: {exc}") from None

    def metric_names(self) -> list[str]:
        """The declared metrics' names."""
        return [str(item["name"]) for item in self.metrics]

    def property_names(self) -> list[str]:
        """The declared properties' names."""
        return [str(item["name"]) for item in self.properties]
