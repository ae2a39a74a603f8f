"""The config download: everything a device's firmware needs, in four formats.

``GET /registry/homes/{home}/devices/{device}/config?format=json|env|micropython|arduino``
answers one :class:`DeviceConfig` rendered by :func:`render`. docs/devices.md defines each
format; the field names are the same in all four (upper-cased with a ``HEARTH_`` prefix in
``env`` and ``arduino``):

- the broker as devices reach it (``broker_host``, ``broker_port``, ``broker_tls``: the
  registry's ``device_broker_*`` settings) and, with TLS, ``broker_ca``: the CA certificate
  (PEM) to trust, present only then (C: ``#ifdef HEARTH_BROKER_CA``), the login
  (``username``, ``password``, ``client_id``), ``home``, ``device``, ``name``;
- the device's topics: ``status_topic``, ``ack_topic``, ``command_filter``
  (``.../command/+``), ``telemetry_prefix`` and ``state_prefix`` (append a metric's or
  property's name), and (``json``, ``micropython``) one topic per metric and property;
- ``interval`` (seconds), ``metrics`` and ``properties`` (the registered capabilities).

Every value is written as a literal of its format (JSON, shell-quoted, Python ``repr``, a C
string with octal escapes), so no name or unit can break the file.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from hearth.common.capabilities import Metric, Property
from hearth.common.logins import device_username
from hearth.common.topics import ROOT, Kind, ack_topic, device_filter, state_topic, status_topic
from hearth.common.topics import telemetry_topic as metric_topic

__all__ = ["BrokerAddress", "ConfigFormat", "DeviceConfig", "Rendered", "render"]


class ConfigFormat(StrEnum):
    """The formats of the config download."""

    JSON = "json"
    ENV = "env"
    MICROPYTHON = "micropython"
    ARDUINO = "arduino"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """The broker as devices reach it (not necessarily as services do)."""

    host: str
    port: int
    tls: bool
    ca: str | None = None
    """The CA certificate (PEM) devices trust for TLS; None: none to hand out."""


class DeviceConfig(BaseModel):
    """What the firmware of one device needs (the ``json`` format, as it is)."""

    home: str
    device: str
    name: str
    broker_host: str
    broker_port: int
    broker_tls: bool
    broker_ca: str | None = Field(
        default=None,
        description="With TLS: the CA certificate (PEM) to trust for the broker; absent "
        "without TLS or when the broker's certificate is from a public CA.",
    )
    username: str
    password: str = Field(description="The device's broker password (a secret).", repr=False)
    client_id: str
    status_topic: str
    ack_topic: str
    command_filter: str
    telemetry_prefix: str
    state_prefix: str
    telemetry_topics: dict[str, str]
    state_topics: dict[str, str]
    interval: int
    metrics: list[Metric]
    properties: list[Property]

    @classmethod
    def of(cls, device: Any, password: str, broker: BrokerAddress) -> DeviceConfig:
        """The config of a registry ``Device`` row with its (unsealed) password."""
        home, slug = device.home, device.slug
        metrics = [Metric.model_validate(m) for m in device.metrics]
        properties = [Property.model_validate(p) for p in device.properties]
        username = device_username(home, slug)
        return cls(
            home=home,
            device=slug,
            name=device.name,
            broker_host=broker.host,
            broker_port=broker.port,
            broker_tls=broker.tls,
            broker_ca=broker.ca if broker.tls else None,
            username=username,
            password=password,
            client_id=username,
            status_topic=status_topic(home, slug),
            ack_topic=ack_topic(home, slug),
            command_filter=device_filter(Kind.COMMAND, home, slug),
            telemetry_prefix=f"{ROOT}/{home}/{slug}/{Kind.TELEMETRY.value}/",
            state_prefix=f"{ROOT}/{home}/{slug}/{Kind.STATE.value}/",
            telemetry_topics={m.name: metric_topic(home, slug, m.name) for m in metrics},
            state_topics={p.name: state_topic(home, slug, p.name) for p in properties},
            interval=device.interval,
            metrics=metrics,
            properties=properties,
        )


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered config: the body, its media type and the file name to save it under."""

    body: str
    media_type: str
    filename: str


_SCALARS = (
    "home",
    "device",
    "name",
    "broker_host",
    "broker_port",
    "broker_tls",
    "username",
    "password",
    "client_id",
    "status_topic",
    "ack_topic",
    "command_filter",
    "telemetry_prefix",
    "state_prefix",
    "interval",
)


def _scalars(config: DeviceConfig) -> dict[str, Any]:
    """The scalar fields, ``broker_ca`` after ``broker_tls`` when there is one."""
    values: dict[str, Any] = {}
    for name in _SCALARS:
        values[name] = getattr(config, name)
        if name == "broker_tls" and config.broker_ca is not None:
            values["broker_ca"] = config.broker_ca
    return values


def _capabilities(config: DeviceConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [m.model_dump(exclude_none=True) for m in config.metrics],
        [p.model_dump(exclude_none=True) for p in config.properties],
    )


def _header(config: DeviceConfig, comment: str) -> str:
    return (
        f"{comment} Hearth device config of {config.username}, made by the registry.\n"
        f"{comment} It holds the device's broker password: keep it off shared folders and git.\n"
    )


def _env(config: DeviceConfig) -> str:
    values = _scalars(config)
    values["broker_tls"] = int(config.broker_tls)
    values["metrics"] = ",".join(m.name for m in config.metrics)
    values["properties"] = ",".join(p.name for p in config.properties)
    lines = [f"HEARTH_{key.upper()}={shlex.quote(str(value))}" for key, value in values.items()]
    return _header(config, "#") + "\n".join(lines) + "\n"


def _micropython(config: DeviceConfig) -> str:
    metrics, properties = _capabilities(config)
    values = _scalars(config)
    values["telemetry_topics"] = config.telemetry_topics
    values["state_topics"] = config.state_topics
    values["metrics"] = metrics
    values["properties"] = properties
    lines = [f"{key.upper()} = {value!r}" for key, value in values.items()]
    return _header(config, "#") + "\n".join(lines) + "\n"


def _c_string(text: str) -> str:
    """A C string literal: printable ASCII as is, everything else as 3-digit octal escapes."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\' or not 0x20 <= byte < 0x7F or char == "?":
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _arduino(config: DeviceConfig) -> str:
    lines = ["#pragma once", ""]
    for name, value in _scalars(config).items():
        if isinstance(value, bool):
            literal = "1" if value else "0"
        elif isinstance(value, int):
            literal = str(value)
        else:
            literal = _c_string(value)
        lines.append(f"#define HEARTH_{name.upper()} {literal}")
    lines += [
        f"#define HEARTH_METRIC_COUNT {len(config.metrics)}",
        f"#define HEARTH_METRICS {_c_string(','.join(m.name for m in config.metrics))}",
        f"#define HEARTH_PROPERTY_COUNT {len(config.properties)}",
        f"#define HEARTH_PROPERTIES {_c_string(','.join(p.name for p in config.properties))}",
    ]
    return _header(config, "//") + "\n".join(lines) + "\n"


def render(config: DeviceConfig, fmt: ConfigFormat) -> Rendered:
    """``config`` in ``fmt`` (see docs/devices.md)."""
    stem = f"hearth-{config.home}-{config.device}"
    if fmt is ConfigFormat.ENV:
        return Rendered(_env(config), "text/plain; charset=utf-8", f"{stem}.env")
    if fmt is ConfigFormat.MICROPYTHON:
        return Rendered(_micropython(config), "text/x-python; charset=utf-8", "config.py")
    if fmt is ConfigFormat.ARDUINO:
        return Rendered(_arduino(config), "text/x-c; charset=utf-8", "hearth_config.h")
    body = json.dumps(config.model_dump(mode="json", exclude_none=True), indent=2)
    return Rendered(body + "\n", "application/json", f"{stem}.json")
