"""The gas alarm: local, so it works when the broker (or the whole network) is down.

Above the threshold: the alarm relay (a fan, a siren, a gas valve's cut-off) on, the
buzzer on, and the heater off. It clears below 80 % of the threshold (hysteresis, so a
reading hovering at the line does not chatter the relay).
"""

from __future__ import annotations

import logging

from hearth_agent.board import Board

__all__ = ["CLEAR_SHARE", "GasAlarm"]

log = logging.getLogger(__name__)

CLEAR_SHARE = 0.8
HEATER = "heater"


class GasAlarm:
    """Decides on every gas reading; :attr:`active` is the alarm state."""

    def __init__(self, board: Board, threshold_ppm: float) -> None:
        self.board = board
        self.threshold_ppm = threshold_ppm
        self.active = False

    def check(self, ppm: float) -> bool:
        """Raise or clear the alarm for ``ppm``; returns whether it is active."""
        if not self.active and ppm >= self.threshold_ppm:
            self.active = True
            log.error("GAS ALARM: %.0f ppm >= %.0f ppm", ppm, self.threshold_ppm)
            self._outputs(True)
            if HEATER in self.board.relays:
                self.board.relays.switch(HEATER, False)
        elif self.active and ppm < self.threshold_ppm * CLEAR_SHARE:
            self.active = False
            log.warning("gas alarm cleared: %.0f ppm", ppm)
            self._outputs(False)
        return self.active

    def _outputs(self, on: bool) -> None:
        for device in (self.board.alarm_relay, self.board.buzzer):
            if device is not None:
                device.on() if on else device.off()
