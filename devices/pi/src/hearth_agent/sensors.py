"""The sensors, each read through the kernel's files or gpiozero.

- DS18B20 over 1-wire (``dtoverlay=w1-gpio``): ``<w1 root>/28-*/w1_slave``, whose second
  line ends ``t=<milli °C>`` when the first ends ``YES`` (the CRC matched).
- DHT22 through the kernel's IIO driver (``dtoverlay=dht11,gpiopin=N`` drives DHT22s too):
  ``<iio root>/<device>/in_temp_input`` (milli °C) and ``in_humidityrelative_input``
  (milli %). The driver answers ``EIO`` when a read was garbled: that reading is skipped.
- MQ-2 gas and soil moisture through an MCP3008 ADC (gpiozero ``MCP3008``, or any object
  with a ``value`` from 0 to 1: the simulator's channels).
- a PIR motion sensor (gpiozero ``MotionSensor``).

A reader returns ``None`` when the sensor gave nothing usable; the agent then skips it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

__all__ = [
    "AdcChannel",
    "Ds18b20",
    "IioDht",
    "gas_ppm",
    "soil_percent",
]

log = logging.getLogger(__name__)


class AdcChannel(Protocol):
    """One ADC input: ``value`` from 0.0 to 1.0 (gpiozero's ``MCP3008`` has this shape)."""

    @property
    def value(self) -> float: ...


class Ds18b20:
    """The first DS18B20 (family ``28-``) under the 1-wire sysfs root, or a given one."""

    def __init__(self, root: Path, sensor_id: str | None = None) -> None:
        self.root = root
        self.sensor_id = sensor_id

    def _file(self) -> Path | None:
        if self.sensor_id is not None:
            return self.root / self.sensor_id / "w1_slave"
        found = sorted(self.root.glob("28-*/w1_slave"))
        return found[0] if found else None

    def read(self) -> float | None:
        """°C, or ``None`` (no sensor, CRC mismatch, or the 85 °C power-on value)."""
        path = self._file()
        if path is None:
            return None
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("DS18B20 %s unreadable: %s", path, exc)
            return None
        if len(lines) < 2 or not lines[0].strip().endswith("YES") or "t=" not in lines[1]:
            return None
        try:
            millis = int(lines[1].rsplit("t=", 1)[1])
        except ValueError:
            return None
        if millis == 85000:  # the power-on reset value: no conversion happened
            return None
        return round(millis / 1000, 3)


class IioDht:
    """A DHT22 (or DHT11) through the kernel's ``dht11`` IIO driver."""

    def __init__(self, root: Path, device: str = "iio:device0") -> None:
        self.folder = root / device

    def _read(self, name: str) -> float | None:
        try:
            return int((self.folder / name).read_text(encoding="ascii").strip()) / 1000
        except (OSError, ValueError):  # EIO: the driver got a garbled frame; try next time
            return None

    def temperature(self) -> float | None:
        """°C."""
        return self._read("in_temp_input")

    def humidity(self) -> float | None:
        """Relative humidity, %."""
        return self._read("in_humidityrelative_input")


def gas_ppm(channel: AdcChannel, full_scale_ppm: float) -> float:
    """The MQ-2's reading in ppm: linear over the ADC range (calibrate ``full_scale_ppm``)."""
    return round(max(0.0, min(1.0, channel.value)) * full_scale_ppm, 1)


def soil_percent(channel: AdcChannel, dry: float, wet: float) -> float:
    """Soil moisture, %: 0 at the ``dry`` ADC value, 100 at ``wet`` (capacitive probes read
    lower when wet)."""
    if dry == wet:
        return 0.0
    share = (dry - channel.value) / (dry - wet)
    return round(max(0.0, min(1.0, share)) * 100, 1)
