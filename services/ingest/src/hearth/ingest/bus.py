"""The system bus as ingest's history API hears it: registry events and users' marks.

The telemetry consumer's session also subscribes (QoS 0, not shared: every replica
hears every event) to

- ``hearth-sys/registry/homes/+``: a home's membership, device or home change. The
  registry client drops its cached answers about the home, and the home's cached time
  zone is dropped, so a removed member loses access at once (not when the answer's
  ``ttl`` runs out);
- ``hearth-sys/auth/users/+``: a user's revocation mark (retained). The token verifier
  refuses the user's older tokens, and the registry client drops the user's answers.

paho delivers on its own thread; :meth:`SystemBus.deliver` only hands the message to the
event loop, where the caches live.
"""

from __future__ import annotations

import asyncio
import logging

from hearth.common.messages import MessageError, RegistryEvent
from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import RevocationMarks
from hearth.common.topics import (
    REGISTRY_HOMES_FILTER,
    USER_MARKS_FILTER,
    parse_user_mark_topic,
    topic_matches,
)
from hearth.ingest.homes import HomeZones

__all__ = ["SYSTEM_FILTERS", "SystemBus"]

log = logging.getLogger(__name__)

SYSTEM_FILTERS: tuple[str, ...] = (REGISTRY_HOMES_FILTER, USER_MARKS_FILTER)
"""What the consumer's session subscribes to besides telemetry."""


class SystemBus:
    """Applies registry events and users' marks to ingest's caches (see the module docstring)."""

    def __init__(self, registry: RegistryClient, zones: HomeZones, marks: RevocationMarks) -> None:
        self._registry = registry
        self._zones = zones
        self._marks = marks
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events = 0
        """Registry events applied so far."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Apply messages on ``loop`` (the lifespan's, before the consumer starts)."""
        self._loop = loop

    def deliver(self, topic: str, payload: bytes) -> None:
        """Hand one message over from paho's thread (dropped when no loop is attached)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.apply, topic, payload)

    def apply(self, topic: str, payload: bytes) -> None:
        """Apply one message on the event loop; a malformed one is logged and ignored."""
        if topic_matches(REGISTRY_HOMES_FILTER, topic):
            try:
                event = RegistryEvent.from_bytes(payload)
            except MessageError as exc:
                log.warning("ignoring a malformed registry event", extra={"error": str(exc)})
                return
            if not event.changes_rights:
                return  # presence: no cached answer or time zone changed
            self._registry.handle_event(event)
            self._zones.forget_home(event.home)
            self.events += 1
        elif topic_matches(USER_MARKS_FILTER, topic) and self._marks.handle_message(topic, payload):
            # handle_message parsed the topic already: it is a user mark's.
            self._registry.forget_user(parse_user_mark_topic(topic))
