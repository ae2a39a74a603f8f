"""``hearth-agent --simulate``: the Pi's hardware on any machine.

gpiozero's ``MockFactory`` for the pins (relays, buzzer, PIR), a fake 1-wire sysfs tree
(``<root>/w1/28-.../w1_slave`` in the kernel's format), a fake IIO tree for the DHT22
(``<root>/iio/iio:device0/in_temp_input``...) and settable ADC channels for the MCP3008.
The agent reads them through the same code as on a Pi; :meth:`SimulatedWorld.drift` moves
the values a little at every sample, and tests set them exactly.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from hearth_agent.config import AgentConfig

__all__ = ["FakeAdcChannel", "SimulatedWorld"]

DS18B20_ID = "28-00000a1b2c3d"


class FakeAdcChannel:
    """An MCP3008 input the simulation sets (0.0 to 1.0)."""

    def __init__(self, value: float) -> None:
        self.value = value


class SimulatedWorld:
    """The fake hardware under ``root``; :meth:`configure` points an agent config at it."""

    def __init__(self, root: Path, seed: int | None = None) -> None:
        self.root = root
        self.pins = MockFactory()
        self.random = random.Random(seed)
        self._lock = threading.Lock()
        self.w1_root = root / "w1"
        self.iio_root = root / "iio"
        (self.w1_root / DS18B20_ID).mkdir(parents=True, exist_ok=True)
        (self.iio_root / "iio:device0").mkdir(parents=True, exist_ok=True)
        self.channels: dict[int, FakeAdcChannel] = {}
        self.temperature = 20.0
        self.air = (21.0, 45.0)
        self.set_temperature(20.0)
        self.set_air(21.0, 45.0)

    def configure(self, config: AgentConfig) -> AgentConfig:
        """``config`` with the sensor files under this world's root."""
        hardware = dataclasses.replace(
            config.hardware,
            w1_root=str(self.w1_root),
            ds18b20_id=None,
            iio_root=str(self.iio_root),
            dht_device="iio:device0",
        )
        return dataclasses.replace(config, hardware=hardware)

    def adc(self, channel: int) -> FakeAdcChannel:
        """The ADC channel ``channel`` (what ``Board.build(adc=...)`` asks for)."""
        return self.channels.setdefault(channel, FakeAdcChannel(0.02 if channel == 0 else 0.6))

    # -- setting values --------------------------------------------------------------------

    def set_temperature(self, celsius: float) -> None:
        """What the DS18B20 reads next (the kernel's two-line format, CRC ok)."""
        with self._lock:
            self.temperature = celsius
            millis = round(celsius * 1000)
            text = (
                f"72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t={millis}\n"
            )
            (self.w1_root / DS18B20_ID / "w1_slave").write_text(text, encoding="ascii")

    def set_air(self, celsius: float, humidity: float) -> None:
        """What the DHT22 reads next."""
        with self._lock:
            self.air = (celsius, humidity)
            folder = self.iio_root / "iio:device0"
            (folder / "in_temp_input").write_text(f"{round(celsius * 1000)}\n", encoding="ascii")
            (folder / "in_humidityrelative_input").write_text(
                f"{round(humidity * 1000)}\n", encoding="ascii"
            )

    def set_adc(self, channel: int, value: float) -> None:
        """An MCP3008 input, 0.0 to 1.0."""
        self.adc(channel).value = max(0.0, min(1.0, value))

    def set_motion(self, pin: int, moving: bool) -> None:
        """Drive the PIR's output pin."""
        mock = self.pins.pin(pin)
        mock.drive_high() if moving else mock.drive_low()

    def relay_pin_high(self, pin: int) -> bool:
        """The level on a relay's pin (most boards: low is on)."""
        return bool(self.pins.pin(pin).state)

    def drift(self) -> None:
        """Move every value a little (a random walk within sane bounds)."""
        step = self.random.uniform
        self.set_temperature(round(max(5.0, min(35.0, self.temperature + step(-0.2, 0.2))), 2))
        air, humidity = self.air
        self.set_air(
            round(max(5.0, min(35.0, air + step(-0.2, 0.2))), 2),
            round(max(20.0, min(90.0, humidity + step(-1, 1))), 1),
        )
        for number, channel in list(self.channels.items()):
            if number != 0:  # gas stays where a test put it
                self.set_adc(number, channel.value + step(-0.01, 0.01))
