"""The agent: measures every ``sample_s``, keeps the local safety rules, obeys commands.

Metrics it can report (only those the device declares in the registry are sent):

| metric | from |
| --- | --- |
| ``temperature`` | DS18B20 (1-wire) |
| ``air-temperature``, ``humidity`` | DHT22 (IIO) |
| ``gas`` | MQ-2 through the MCP3008 (ppm) |
| ``soil-moisture`` | the soil probe through the MCP3008 (%) |
| ``motion`` | the PIR (also sent at once when it changes) |
| ``alarm`` | the local gas alarm |

Properties: a boolean property named like a relay (``light``, ``heater``, ``pump``)
switches it; ``gas-threshold`` (a number) sets the gas alarm's threshold; any other
declared number or enum property is kept and reported as state (a setpoint).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from hearth_agent.board import Board
from hearth_agent.config import AgentConfig
from hearth_agent.safety import HEATER, GasAlarm
from hearth_agent.sensors import gas_ppm, soil_percent
from hearth_device.device import Clock, Device
from hearth_device.outbox import Outbox

__all__ = ["GAS_THRESHOLD", "TIMESYNCD_FLAG", "Agent", "clock_for"]

log = logging.getLogger(__name__)

GAS_THRESHOLD = "gas-threshold"
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
"""systemd-timesyncd creates this file once the clock is synchronised."""


def clock_for(setting: str) -> Clock:
    """The clock for the config's ``clock`` setting."""
    if setting == "system":
        return Clock(lambda: True)
    if setting == "unsynced":
        return Clock(lambda: False)
    if setting == "timesyncd":
        return Clock(TIMESYNCD_FLAG.exists)
    raise ValueError(f"clock must be timesyncd, system or unsynced, not {setting!r}")


class Agent:
    """One Pi: its board, its device session, its safety rules."""

    def __init__(self, config: AgentConfig, board: Board, clock: Clock | None = None) -> None:
        self.config = config
        self.board = board
        self._closed = False
        declared = {str(p["name"]): p for p in config.device.properties}
        self.setpoints: dict[str, object] = {
            name: None for name, prop in declared.items() if name not in board.relays
        }
        threshold = config.safety.gas_alarm_ppm
        if GAS_THRESHOLD in self.setpoints:
            self.setpoints[GAS_THRESHOLD] = threshold
        self.alarm = GasAlarm(board, threshold)
        self.metrics = set(config.device.metric_names())
        self.device = Device(
            config.device,
            act=self.act,
            states=self.states,
            outbox=Outbox(Path(config.outbox), config.outbox_max_bytes),
            clock=clock or clock_for(config.clock),
            ca_file=config.broker_ca_file,
        )
        board.relays.on_auto_off = lambda name: self.device.publish_state(name, False)
        if board.pir is not None and "motion" in self.metrics:
            board.pir.when_motion = lambda: self._report("motion", True)
            board.pir.when_no_motion = lambda: self._report("motion", False)

    # -- commands --------------------------------------------------------------------------

    def act(self, prop: str, value: object) -> object:
        """Carry out a checked command value; the result is the property's new state."""
        if prop in self.board.relays:
            if prop == HEATER and value is True and self.alarm.active:
                raise RuntimeError("gas alarm active: the heater stays off")
            return self.board.relays.switch(prop, bool(value))
        if prop not in self.setpoints:
            raise RuntimeError(f"no hardware for {prop}")
        if prop == GAS_THRESHOLD and isinstance(value, int | float):
            self.alarm.threshold_ppm = float(value)
        self.setpoints[prop] = value
        return value

    def states(self) -> dict[str, object]:
        """Every declared property's current state (relays and setpoints)."""
        declared = self.config.device.property_names()
        states: dict[str, object] = {
            name: self.board.relays.is_on(name) for name in declared if name in self.board.relays
        }
        states.update({k: v for k, v in self.setpoints.items() if v is not None})
        return states

    # -- measuring -------------------------------------------------------------------------

    def _report(self, metric: str, value: bool | float | None) -> None:
        if value is not None and metric in self.metrics:
            self.device.report(metric, value)

    def measure(self) -> None:
        """Read every sensor once, apply the gas alarm, send the declared metrics."""
        board, hardware = self.board, self.config.hardware
        readers: list[tuple[str, Callable[[], bool | float | None]]] = [
            ("temperature", board.ds18b20.read),
            ("air-temperature", board.dht.temperature),
            ("humidity", board.dht.humidity),
        ]
        if board.soil is not None:
            soil = board.soil
            readers.append(
                ("soil-moisture", lambda: soil_percent(soil, hardware.soil_dry, hardware.soil_wet))
            )
        if board.pir is not None:
            pir = board.pir
            readers.append(("motion", lambda: bool(pir.motion_detected)))
        for metric, read in readers:
            if metric in self.metrics:
                self._report(metric, read())
        if board.gas is not None:
            ppm = gas_ppm(board.gas, hardware.gas_full_scale_ppm)
            was_active = self.alarm.active
            active = self.alarm.check(ppm)
            self._report("gas", ppm)
            self._report("alarm", active)
            if active and not was_active and HEATER in self.board.relays:
                self.device.publish_state(HEATER, self.board.relays.is_on(HEATER))

    def run(self, stop: threading.Event, before_sample: Callable[[], None] | None = None) -> None:
        """Connect, then measure every ``sample_s`` until ``stop``; relays off at the end."""
        self.device.start()
        try:
            while not stop.is_set():
                if before_sample is not None:
                    before_sample()
                try:
                    self.measure()
                except Exception:  # a sensor fault must not stop the safety loop
                    log.exception("measuring failed")
                stop.wait(self.config.sample_s)
        finally:
            self.close()

    def close(self) -> None:
        """Relays off, goodbye, disconnect (once; again is a no-op)."""
        if self._closed:
            return
        self._closed = True
        self.board.close()
        self.device.stop()
