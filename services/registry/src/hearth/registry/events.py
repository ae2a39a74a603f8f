"""EventPublisher: the registry's change events on the system bus.

Every committed change of a home, its memberships or its devices, and every change of a
device's presence (kind ``presence``, with the new status), is published as a
:class:`~hearth.common.messages.RegistryEvent` on ``hearth-sys/registry/homes/{home}``
at QoS 1, not retained, after the database commit (never before: a receiver that
reacts must find the change). Receivers drop cached authorisation answers about that
home and withdraw sockets from rooms they may no longer read (not for presence events:
they change nobody's rights).

An event that cannot be published (the broker is down longer than ``wait`` seconds) is
logged and counted, and the change stands: cached answers still expire after the
authorisation TTL.
"""

from __future__ import annotations

import logging
import uuid

from hearth.common.clock import utc_now
from hearth.common.messages import RegistryAction, RegistryEvent, RegistryKind, Status
from hearth.common.mqtt import MqttConnection, MqttUnavailable
from hearth.common.topics import registry_home_topic

__all__ = ["EventPublisher"]

log = logging.getLogger(__name__)


class EventPublisher:
    """Publishes registry change events through the service's broker connection."""

    def __init__(self, mqtt: MqttConnection, *, wait: float = 2.0) -> None:
        self._mqtt = mqtt
        self._wait = wait
        self.published = 0
        """Events the broker acknowledged."""
        self.failed = 0
        """Events that could not be published."""

    async def publish(
        self,
        kind: RegistryKind,
        home: str,
        action: RegistryAction,
        *,
        device: str | None = None,
        user: uuid.UUID | None = None,
        presence: Status | None = None,
    ) -> None:
        """Publish one event (QoS 1, not retained); failures are logged, never raised."""
        event = RegistryEvent(
            kind=kind,
            home=home,
            action=action,
            device=device,
            user=None if user is None else str(user),
            presence=presence,
            ts=utc_now(),
        )
        try:
            await self._mqtt.publish(
                registry_home_topic(home), event.to_bytes(), qos=1, retain=False, wait=self._wait
            )
        except MqttUnavailable:
            self.failed += 1
            log.warning(
                "registry event not published",
                extra={"home": home, "kind": kind.value, "action": action.value},
            )
        else:
            self.published += 1
