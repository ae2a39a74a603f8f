"""RealtimeState: every object the realtime app is made of, built by ``create_app``.

The lifespan (:func:`hearth.realtime.main.lifespan`) only starts and stops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import socketio

from hearth.common.mqtt import MqttConnection
from hearth.common.registry_client import RegistryClient
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.service import RealtimeService

__all__ = ["RealtimeState"]


@dataclass(frozen=True, eq=False)
class RealtimeState:
    """Realtime's parts: the Socket.IO server, the broker, the registry client, the rules."""

    settings: RealtimeSettings
    sio: socketio.AsyncServer
    mqtt: MqttConnection
    registry: RegistryClient
    service: RealtimeService
