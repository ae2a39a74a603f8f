"""The ready-made device types: sensible capabilities and interval for common maker devices.

Creating a device with one of these types fills its metrics, properties and interval
unless the request gives its own. ``generic`` has none: everything comes from the request.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from hearth.common.capabilities import Metric, Property

__all__ = ["CATALOGUE", "DeviceType", "DeviceTypeName"]

DeviceTypeName = Literal[
    "temperature-humidity", "light", "thermostat", "plant-waterer", "gas-sensor", "generic"
]
"""The type of a device: one of the catalogue's entries."""


class DeviceType(BaseModel):
    """A catalogue entry: what a device of this type reports and accepts by default."""

    model_config = ConfigDict(frozen=True)

    type: DeviceTypeName
    description: str
    interval: int
    metrics: list[Metric]
    properties: list[Property]


_TEMPERATURE = Metric(name="temperature", unit="°C", kind="number", min=-40, max=85)

CATALOGUE: dict[str, DeviceType] = {
    entry.type: entry
    for entry in (
        DeviceType(
            type="temperature-humidity",
            description="A temperature and humidity node (DHT22, SHT31, BME280).",
            interval=60,
            metrics=[
                _TEMPERATURE,
                Metric(name="humidity", unit="%", kind="number", min=0, max=100),
            ],
            properties=[],
        ),
        DeviceType(
            type="light",
            description="A switchable, dimmable light.",
            interval=300,
            metrics=[],
            properties=[
                Property(name="power", kind="boolean"),
                Property(name="brightness", kind="number", unit="%", min=0, max=100, step=1),
            ],
        ),
        DeviceType(
            type="thermostat",
            description="A thermostat or heater: measures the temperature, holds a target.",
            interval=60,
            metrics=[_TEMPERATURE, Metric(name="heating", kind="boolean")],
            properties=[
                Property(name="target", kind="number", unit="°C", min=5, max=30, step=0.5),
                Property(name="mode", kind="enum", values=["off", "heat", "auto"]),
            ],
        ),
        DeviceType(
            type="plant-waterer",
            description="A plant waterer: a soil moisture probe and a pump.",
            interval=300,
            metrics=[Metric(name="soil-moisture", unit="%", kind="number", min=0, max=100)],
            properties=[Property(name="pump", kind="boolean")],
        ),
        DeviceType(
            type="gas-sensor",
            description="A combustible gas sensor (MQ-2 style), in parts per million.",
            interval=30,
            metrics=[
                Metric(name="gas", unit="ppm", kind="number", min=0, max=10000),
                Metric(name="alarm", kind="boolean"),
            ],
            properties=[],
        ),
        DeviceType(
            type="generic",
            description="Anything else: give its metrics and properties yourself.",
            interval=60,
            metrics=[],
            properties=[],
        ),
    )
}
"""Every device type by name, in the order the catalogue endpoint lists them."""
