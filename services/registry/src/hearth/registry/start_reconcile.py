"""StartReconcile: the reconcile of device logins when the registry starts, and its readiness.

Once the broker connection is up, the registry reconciles the broker's device logins with
its table (:meth:`~hearth.registry.service.RegistryService.reconcile`), retrying with
back-off (0.5 s doubling to 30 s) until one succeeds; every failure is logged. ``/readyz``
reports ``device_logins`` not ok until then, so whoever waits for the registry to be ready
(a deployment, a test) knows the broker holds every device login the table knows, and a
login created at the broker by anyone else afterwards is not deleted under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hearth.common.mqtt import MqttConnection, backoff_delays

__all__ = ["StartReconcile"]

log = logging.getLogger(__name__)


class StartReconcileNotDone(Exception):
    """The reconcile at start has not succeeded yet (the readiness check's error)."""


class StartReconcile:
    """Runs ``reconcile`` once the broker connection is up, until it succeeds."""

    def __init__(self, mqtt: MqttConnection, reconcile: Callable[[], Awaitable[object]]) -> None:
        self._mqtt = mqtt
        self._reconcile = reconcile
        self._done = asyncio.Event()
        self.failures = 0
        """Attempts that failed (each logged)."""

    async def run(self) -> None:
        """Wait for the broker, reconcile; retry with back-off until one succeeds."""
        delays = backoff_delays(0.5, 30.0)
        while True:
            await self._mqtt.wait_connected()
            try:
                await self._reconcile()  # logs what it changed
            except Exception:
                self.failures += 1
                log.exception("device logins not reconciled at start; retrying")
                await asyncio.sleep(next(delays))
            else:
                self._done.set()
                return

    async def readiness_check(self) -> None:
        """Raises until the reconcile at start succeeded (``/readyz``: ``device_logins``)."""
        if not self._done.is_set():
            raise StartReconcileNotDone("device logins not reconciled yet")
