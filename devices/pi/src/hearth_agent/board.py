"""The Pi's hardware as the agent uses it: relays, buzzer, PIR, ADC and the sensor files.

Every relay is built *off* (``initial_value=False``) and :meth:`Board.close` switches each
off before releasing its pin, so a restart or a stop never leaves the heater or pump on.
The pump is switched off after ``pump_max_on_s`` whatever the commands say.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero import MCP3008, Buzzer, MotionSensor, OutputDevice

from hearth_agent.config import Hardware, Relay, Safety
from hearth_agent.sensors import AdcChannel, Ds18b20, IioDht

__all__ = ["Board", "Relays"]

log = logging.getLogger(__name__)

PUMP = "pump"


class Relays:
    """The named relays; the pump has a maximum on-time."""

    def __init__(
        self,
        specs: dict[str, Relay],
        pump_max_on_s: float,
        pin_factory: Any = None,
        on_auto_off: Callable[[str], None] | None = None,
    ) -> None:
        self.devices: dict[str, OutputDevice] = {}
        for name, spec in specs.items():
            self.devices[name] = OutputDevice(
                spec.pin, active_high=spec.active_high, initial_value=False, pin_factory=pin_factory
            )
            log.info("relay %s on GPIO%d: off", name, spec.pin)
        self.pump_max_on_s = pump_max_on_s
        self.on_auto_off = on_auto_off
        self._pump_timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self.devices

    def is_on(self, name: str) -> bool:
        """Whether relay ``name`` is switched on."""
        return bool(self.devices[name].value)

    def switch(self, name: str, on: bool) -> bool:
        """Switch ``name``; returns the resulting state."""
        with self._lock:
            device = self.devices[name]
            device.on() if on else device.off()
            log.info("relay %s %s", name, "on" if on else "off")
            if name == PUMP:
                self._arm_pump(on)
            return bool(device.value)

    def _arm_pump(self, on: bool) -> None:
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        if on:
            self._pump_timer = threading.Timer(self.pump_max_on_s, self._pump_timeout)
            self._pump_timer.daemon = True
            self._pump_timer.start()

    def _pump_timeout(self) -> None:
        log.warning("pump on for %.0f s: switched off (safety limit)", self.pump_max_on_s)
        self.switch(PUMP, False)
        if self.on_auto_off is not None:
            self.on_auto_off(PUMP)

    def all_off(self) -> None:
        """Every relay off (start, shutdown, and after an error)."""
        for name in self.devices:
            self.switch(name, False)

    def close(self) -> None:
        """Every relay off, then release the pins."""
        self.all_off()
        for device in self.devices.values():
            device.close()


@dataclass
class Board:
    """Everything wired to the Pi."""

    relays: Relays
    alarm_relay: OutputDevice | None
    buzzer: Buzzer | None
    pir: MotionSensor | None
    ds18b20: Ds18b20
    dht: IioDht
    gas: AdcChannel | None
    soil: AdcChannel | None
    extra: list[Any] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        hardware: Hardware,
        safety: Safety,
        *,
        pin_factory: Any = None,
        adc: Callable[[int], AdcChannel] | None = None,
        on_auto_off: Callable[[str], None] | None = None,
    ) -> Board:
        """Build from the config; ``adc(channel)`` defaults to gpiozero's ``MCP3008``."""

        def channel(number: int | None) -> AdcChannel | None:
            if number is None:
                return None
            if adc is not None:
                return adc(number)
            made: AdcChannel = MCP3008(channel=number, pin_factory=pin_factory)
            return made

        relays = Relays(hardware.relays, safety.pump_max_on_s, pin_factory, on_auto_off)
        alarm = hardware.alarm_relay
        return cls(
            relays=relays,
            alarm_relay=None
            if alarm is None
            else OutputDevice(
                alarm.pin,
                active_high=alarm.active_high,
                initial_value=False,
                pin_factory=pin_factory,
            ),
            buzzer=None
            if hardware.buzzer_pin is None
            else Buzzer(hardware.buzzer_pin, initial_value=False, pin_factory=pin_factory),
            pir=None
            if hardware.pir_pin is None
            else MotionSensor(hardware.pir_pin, pin_factory=pin_factory),
            ds18b20=Ds18b20(Path(hardware.w1_root), hardware.ds18b20_id),
            dht=IioDht(Path(hardware.iio_root), hardware.dht_device),
            gas=channel(hardware.mcp3008_gas_channel),
            soil=channel(hardware.mcp3008_soil_channel),
        )

    def close(self) -> None:
        """Relays, alarm relay and buzzer off; pins released."""
        self.relays.close()
        for device in (self.alarm_relay, self.buzzer, self.pir):
            if device is not None:
                if hasattr(device, "off"):
                    device.off()
                device.close()
        for item in (self.gas, self.soil):
            close = getattr(item, "close", None)
            if close is not None:
                close()
