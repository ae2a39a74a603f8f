"""Publishing marks: one made while the broker is down goes out once it is back; retries
never resend a mark in flight nor put an older mark after a newer one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from hearth.auth.marks import MarkPublisher
from hearth.common.messages import UserMark
from hearth.common.tokens import RevocationMarks
from hearth.common.topics import user_mark_topic
from hearth.testing.broker import MqttClientFactory, RunningBroker
from hearth.testing.services import auth_settings, bearer, start_auth, stop_auth


def test_a_mark_waits_for_the_broker(
    fresh_database: Callable[[], str],
    fresh_broker: RunningBroker,
    mqtt_client: MqttClientFactory,
    tmp_path: Path,
) -> None:
    stack = start_auth(auth_settings(fresh_database(), fresh_broker, tmp_path))
    try:
        user = stack.create_user()
        fresh_broker.stop()
        response = stack.http.patch(
            f"/auth/users/{user['id']}", json={"disabled": True}, headers=bearer(stack.admin_token)
        )
        assert response.status_code == 200, response.text  # the database is the truth
        login = stack.http.post(
            "/auth/token", data={"username": user["username"], "password": user["password"]}
        )
        assert login.status_code == 400
        fresh_broker.start()
        listener = mqtt_client(fresh_broker, "realtime")
        listener.subscribe_and_wait(user_mark_topic(user["id"]), qos=1)
        message = listener.wait_for_messages(1, timeout=10.0)[0]
        assert json.loads(message.payload)["disabled"] is True
    finally:
        stop_auth(stack)


USER = "6f1c1d36-3f1f-4a4e-9a7e-1d2b3c4d5e6f"


class GatedBroker:
    """Stands in for the broker connection: every publish waits until the gate opens."""

    connects = 1

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started: list[UserMark] = []
        self.sent: list[UserMark] = []
        self.loop_checks = 0

    @property
    def connected(self) -> bool:
        self.loop_checks += 1  # the retry loop asks this once per round
        return True

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        mark = UserMark.from_bytes(payload)
        self.started.append(mark)
        await self.gate.wait()
        self.sent.append(mark)


async def _until(condition: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_retry_never_resends_or_reorders_marks() -> None:
    """While a mark is in flight the retry loop leaves it alone; the newest mark goes out last."""
    broker = GatedBroker()
    local = RevocationMarks()
    publisher = MarkPublisher(cast(Any, broker), local, retry_interval=0.005)
    disabled, enabled = UserMark(not_before=5, disabled=True), UserMark(not_before=5)

    async def no_marks() -> list[tuple[str, UserMark]]:
        return []

    runner = asyncio.create_task(publisher.run(no_marks))
    try:
        first = asyncio.create_task(publisher.publish(USER, disabled))
        await _until(lambda: len(broker.started) == 1)
        checks = broker.loop_checks
        # The retry loop comes round while the first mark is in flight (and runs on to
        # its send without pausing), then a newer mark is made.
        await _until(lambda: broker.loop_checks > checks)
        second = asyncio.create_task(publisher.publish(USER, enabled))
        await _until(lambda: local.get(USER) == enabled)
        broker.gate.set()
        assert await first
        assert await second
        await _until(lambda: publisher.pending == 0)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert broker.sent == [disabled, enabled]
