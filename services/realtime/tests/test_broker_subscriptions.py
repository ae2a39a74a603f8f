"""The broker subscription of a room exists exactly while the room has members.

Proven from the broker's side: a test-only Mosquitto (``fresh_broker``, ``sys_interval
1``) reports ``$SYS/broker/subscriptions/count``, read by the broker's admin login (its
dynsec role reads ``$SYS/#``). Mosquitto publishes the count only when it changed, so
each step waits for the *next* count and checks it: a wrong intermediate value (a second
subscription for the same room, one too few) is the first change seen, or no change comes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hearth.testing.broker import (
    DeviceLoginFactory,
    MqttClientFactory,
    MqttTestClient,
    RunningBroker,
)
from hearth.testing.services import ServiceStack, realtime_settings, start_realtime
from hearth.testing.sockets import ClientFactory

COUNT = "$SYS/broker/subscriptions/count"


class Counts:
    """The broker's subscription count as the admin client hears it (changes only)."""

    def __init__(self, admin: MqttTestClient) -> None:
        self.admin = admin
        self.seen = 0

    def _live(self) -> list[int]:
        return [int(m.payload) for m in self.admin.received(COUNT) if not m.retain]

    async def next(self, timeout: float = 6.0) -> int:  # noqa: ASYNC109
        """The next count published after the last one read."""
        await asyncio.to_thread(self.admin.wait_for, lambda: len(self._live()) > self.seen, timeout)
        live = self._live()
        self.seen = len(live)
        return live[-1]


@pytest.mark.slow
async def test_the_broker_subscription_exists_exactly_while_the_room_has_members(
    stack: ServiceStack,
    fresh_broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
    clients: ClientFactory,
    tmp_path: Path,
) -> None:
    owner, viewer = stack.create_user("owner"), stack.create_user("viewer")
    home = stack.create_home(owner)["slug"]
    stack.create_device(owner, home, "sensor", type="temperature-humidity")
    stack.add_member(owner, home, viewer, "viewer")
    sensor = mqtt_client(fresh_broker, device_login(home, "sensor", fresh_broker))
    running = start_realtime(realtime_settings(stack, fresh_broker, tmp_path))
    try:
        admin = mqtt_client(fresh_broker, fresh_broker.admin)
        counts = Counts(admin)
        assert not admin.subscribe_and_wait(COUNT, 0)[0].is_failure
        baseline = await counts.next()  # realtime's system bus and the admin's own
        room = f"hearth/{home}/sensor/telemetry/temperature"
        other = f"hearth/{home}/sensor/telemetry/humidity"

        first, second = clients("python", running.url), clients("js", running.url)
        assert await first.connect(viewer.token) is None
        assert await second.connect(owner.token) is None
        assert (await first.call("subscribe", {"topic": room}))["ok"]
        assert await counts.next() == baseline + 1  # sockets alone subscribe nothing
        assert (await first.call("subscribe", {"topic": other}))["ok"]
        assert await counts.next() == baseline + 2

        # The second member of a room adds no broker subscription: the next change is
        # the other room's last member leaving, down to one subscription.
        assert (await second.call("subscribe", {"topic": room}))["ok"]
        assert await first.call("unsubscribe", {"topic": other}) == {"ok": True}
        assert await counts.next() == baseline + 1

        # The first member leaves the room; the second remains, so the subscription does:
        # a device's message still reaches the room through the broker.
        assert await first.call("unsubscribe", {"topic": room}) == {"ok": True}
        reason = await asyncio.to_thread(
            sensor.publish_and_wait, room, json.dumps({"value": 3, "id": "s1-1"}), 1
        )
        assert reason is not None
        assert not reason.is_failure
        await second.wait_message(room, lambda m: m["payload"]["id"] == "s1-1")

        await second.close()  # the last member disconnects
        assert await counts.next() == baseline
        assert not [m for m in first.messages() if m["payload"]["id"] == "s1-1"]
    finally:
        running.stop()
