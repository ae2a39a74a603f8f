"""A mark made while the broker is down is published once it is back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from auth_helpers import auth_settings, bearer, start_auth, stop_auth
from hearth.common.topics import user_mark_topic
from hearth.testing.broker import MqttClientFactory, RunningBroker


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
