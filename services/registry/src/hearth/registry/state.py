"""RegistryState: every object the registry app is made of, built by ``create_app``.

The lifespan (:func:`hearth.registry.main.lifespan`) only starts and stops them; routes
read them through ``StateDep`` (:mod:`hearth.registry.api.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.common.mqtt import MqttConnection
from hearth.registry.commands import CommandService
from hearth.registry.config import RegistrySettings
from hearth.registry.device_watch import DeviceWatch
from hearth.registry.discovered import DiscoveredMetrics
from hearth.registry.events import EventPublisher
from hearth.registry.service import RegistryService
from hearth.registry.shadow import LiveShadow
from hearth.registry.start_reconcile import StartReconcile
from hearth.registry.sweeper import Sweeper
from hearth.registry.users import AuthUsers

__all__ = ["RegistryState"]


@dataclass(frozen=True, eq=False)
class RegistryState:
    """The registry's parts: its database, broker connection, auth client and rules;
    commands, the shadow and presence (heard through ``watch``, swept by ``sweeper``)."""

    settings: RegistrySettings
    engine: AsyncEngine
    mqtt: MqttConnection
    users: AuthUsers
    events: EventPublisher
    service: RegistryService
    commands: CommandService
    shadow: LiveShadow
    watch: DeviceWatch
    sweeper: Sweeper
    start_reconcile: StartReconcile | None
    """The reconcile at start (``None`` when ``reconcile_at_start`` is off)."""
    discovered: DiscoveredMetrics
