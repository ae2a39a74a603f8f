"""The intake of a broker connection: every message the socket holds, taken in one go.

aiomqtt 2.x reads the broker's socket from the event loop: when the socket is readable
it calls paho's ``loop_read()``, which reads ONE packet (paho reads more only while QoS 2
or outgoing QoS 1 messages are in flight), and puts each message on a queue that its
``messages`` iterator takes from with a task and an ``asyncio.wait`` per message. A busy
loop thus takes one message per turn whatever the broker has sent: the rest waits in
the socket while every turn does the work of one message, and nothing that arrives
together can be handled together. This module is the one place that changes that, and
the only one that reaches into aiomqtt (pinned ``>=2.5,<3``):

- :func:`read_all_available` makes the connection's paho client read packets until its
  socket has nothing more (at most ``limit`` per readable event): it replaces the
  instance's ``loop_read`` (reached through aiomqtt's private ``Client._client``) with
  one that calls the original again while ``select`` says the socket is readable;
- :class:`IntakeQueue` records the queue aiomqtt makes (its public ``queue_type``
  argument), so the connection takes every message already received with
  ``get_nowait`` after the first (no task per message): :func:`take_waiting`.

``services/common/tests/test_mqtt.py`` checks both against a real broker: a burst the
broker already sent reaches the handler in a few batches, in order (it fails when the
intake takes one packet per loop turn, as aiomqtt's own does).
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["READ_LIMIT", "IntakeQueue", "read_all_available", "take_waiting"]

READ_LIMIT = 256
"""Packets read at most per readable event (bounds one loop turn's intake)."""


def _readable(sock: Any) -> bool:
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: decrypted bytes already buffered
    if pending is not None and pending() > 0:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed meanwhile: paho reports it on its next read
        return False
    return bool(ready)


def read_all_available(client: aiomqtt.Client, limit: int = READ_LIMIT) -> None:
    """Make ``client`` read up to ``limit`` packets each time its socket is readable."""
    inner: paho.Client = client._client  # the one private aiomqtt attribute
    read_one: Callable[..., MQTTErrorCode] = inner.loop_read

    def loop_read(max_packets: int = 1) -> MQTTErrorCode:
        rc = read_one(max_packets)
        for _ in range(limit - 1):
            if rc != paho.MQTT_ERR_SUCCESS or not _readable(inner.socket()):
                break
            rc = read_one(max_packets)
        return rc

    inner.loop_read = loop_read  # type: ignore[method-assign]


class IntakeQueue:
    """A ``queue_type`` for ``aiomqtt.Client`` that remembers the queue it made."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[aiomqtt.Message] | None = None

    def __call__(self, maxsize: int = 0) -> asyncio.Queue[aiomqtt.Message]:
        self.queue = asyncio.Queue(maxsize=maxsize)
        return self.queue


def take_waiting(queue: asyncio.Queue[aiomqtt.Message] | None) -> aiomqtt.Message | None:
    """The next message already received, without waiting; ``None`` when none waits."""
    if queue is None:
        return None
    try:
        return queue.get_nowait()
    except asyncio.QueueEmpty:
        return None
