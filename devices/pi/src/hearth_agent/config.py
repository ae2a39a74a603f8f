"""The agent's one config file: the registry's JSON download plus the Pi's wiring.

``hearth-agent init hearth.json -o /etc/hearth/agent.json`` writes it: the download under
``"device"`` (checked by :class:`hearth_device.config.DeviceConfig`) and the defaults below
for the rest, which you then edit to match your wiring (docs/devices/pi.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hearth_device.config import ConfigError, DeviceConfig

__all__ = ["AgentConfig", "Hardware", "Relay", "Safety", "generate"]


@dataclass(frozen=True)
class Relay:
    """A relay on a GPIO pin (BCM numbering); most relay boards switch on a low input."""

    pin: int
    active_high: bool = False


@dataclass(frozen=True)
class Hardware:
    """Where everything is wired (BCM pin numbers) and where the kernel shows the sensors."""

    relays: dict[str, Relay] = field(
        default_factory=lambda: {"light": Relay(17), "heater": Relay(27), "pump": Relay(22)}
    )
    alarm_relay: Relay | None = field(default_factory=lambda: Relay(23))
    buzzer_pin: int | None = 24
    pir_pin: int | None = 4
    w1_root: str = "/sys/bus/w1/devices"
    ds18b20_id: str | None = None
    iio_root: str = "/sys/bus/iio/devices"
    dht_device: str = "iio:device0"
    mcp3008_gas_channel: int | None = 0
    mcp3008_soil_channel: int | None = 1
    gas_full_scale_ppm: float = 10000.0
    soil_dry: float = 0.85
    soil_wet: float = 0.35


@dataclass(frozen=True)
class Safety:
    """Local rules that hold whatever the broker says (or when it is unreachable)."""

    pump_max_on_s: float = 300.0
    gas_alarm_ppm: float = 1000.0
    """Alarm above this (a ``gas-threshold`` number property, when declared, overrides it)."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent reads at start."""

    device: DeviceConfig
    hardware: Hardware = field(default_factory=Hardware)
    safety: Safety = field(default_factory=Safety)
    sample_s: float = 10.0
    outbox: str = "/var/lib/hearth-agent/outbox.jsonl"
    outbox_max_bytes: int = 1_000_000
    broker_ca_file: str | None = None
    """With ``broker_tls``: the CA that signed the broker's certificate (the platform's own
    CA, downloaded from ``/tls/ca.crt``); ``null``: the system's CAs."""
    clock: str = "timesyncd"
    """``timesyncd`` (synchronised when systemd-timesyncd says so), ``system`` (trust the
    clock) or ``unsynced`` (never send ``ts``; commands that can expire are rejected)."""

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> AgentConfig:
        """Read the decoded file."""
        try:
            device = DeviceConfig.from_download(body["device"])
            raw_hw = dict(body.get("hardware", {}))
            relays = {
                name: Relay(**spec) for name, spec in raw_hw.pop("relays", {}).items()
            } or Hardware().relays
            alarm = raw_hw.pop("alarm_relay", asdict(Relay(23)))
            hardware = Hardware(
                relays=relays, alarm_relay=None if alarm is None else Relay(**alarm), **raw_hw
            )
            return cls(
                device=device,
                hardware=hardware,
                safety=Safety(**body.get("safety", {})),
                **{k: v for k, v in body.items() if k not in ("device", "hardware", "safety")},
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not an agent config: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        """Read the file at ``path``."""
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ConfigError(f"{path} is not a JSON object")
        return cls.from_dict(body)


def generate(download: dict[str, Any]) -> dict[str, Any]:
    """The agent's config file for a registry download, with the default wiring."""
    DeviceConfig.from_download(download)  # refuse a download that is not one now
    defaults = AgentConfig.__dataclass_fields__
    return {
        "device": download,
        "hardware": asdict(Hardware()),
        "safety": asdict(Safety()),
        "sample_s": defaults["sample_s"].default,
        "outbox": defaults["outbox"].default,
        "outbox_max_bytes": defaults["outbox_max_bytes"].default,
        "broker_ca_file": defaults["broker_ca_file"].default,
        "clock": defaults["clock"].default,
    }
