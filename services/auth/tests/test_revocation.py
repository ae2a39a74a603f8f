"""Revocation: disabling a user, logging out everywhere and changing a password.

Each publishes the user's retained mark on ``hearth-sys/auth/users/{id}`` (real
Mosquitto); a ``hearth.common`` verifier fed from the bus refuses older tokens within
a second, the service itself at once, and a token issued after the mark still passes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hearth.common.errors import TokenRevoked, UserDisabled
from hearth.common.tokens import JwksClient, RevocationMarks, TokenVerifier
from hearth.common.topics import user_mark_topic
from hearth.testing.broker import MqttClientFactory, MqttTestClient, RunningBroker
from hearth.testing.services import AuthStack, bearer

WITHIN = 1.0
"""Seconds a mark may take to reach a subscriber."""


def _bus_verifier(auth: AuthStack) -> TokenVerifier:
    return TokenVerifier(
        JwksClient(f"{auth.url}/.well-known/jwks.json"),
        RevocationMarks(),
        issuer=auth.settings.token_issuer,
        audience=auth.settings.token_audience,
    )


def _listen(mqtt_client: MqttClientFactory, broker: RunningBroker, user_id: str) -> MqttTestClient:
    """A service-like subscriber (the realtime login reads ``hearth-sys/#``) on the user's mark."""
    client = mqtt_client(broker, "realtime")
    codes = client.subscribe_and_wait(user_mark_topic(user_id), qos=1)
    assert all(not code.is_failure for code in codes)
    return client


def _await_mark(
    client: MqttTestClient, verifier: TokenVerifier, *, disabled: bool
) -> dict[str, Any]:
    """Wait (at most a second) for a mark with ``disabled``; feed ``verifier`` every mark so far.

    Auth also republishes every user's current mark once it is connected, so the same
    mark may arrive twice: wait for the mark the test caused, not for a message count.
    Marks arrive in the order auth made them, so the last one fed is the newest.
    """

    def arrived() -> bool:
        return any(json.loads(m.payload)["disabled"] is disabled for m in client.messages)

    client.wait_for(arrived, timeout=WITHIN)
    messages = client.received()
    for message in messages:
        assert verifier.marks.handle_message(message.topic, message.payload)
    mark: dict[str, Any] = json.loads(messages[-1].payload)
    assert mark["disabled"] is disabled
    return mark


async def test_log_out_everywhere(
    auth: AuthStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    user = auth.create_user()
    verifier = _bus_verifier(auth)
    listener = _listen(mqtt_client, broker, user["id"])
    before = auth.login(user["username"], user["password"])
    other_session = auth.login(user["username"], user["password"])
    await verifier.verify(before["access_token"])

    response = auth.http.post("/auth/logout-everywhere", headers=bearer(before["access_token"]))
    assert response.status_code == 204, response.text

    mark = _await_mark(listener, verifier, disabled=False)
    assert mark["disabled"] is False
    assert mark["not_before"] * 1e-3 == pytest.approx(time.time(), abs=5)
    with pytest.raises(TokenRevoked):
        await verifier.verify(before["access_token"])
    refused = auth.me(before["access_token"])
    assert refused.status_code == 401
    assert refused.json()["reason"] == "revoked"
    for session in (before, other_session):  # every refresh token of the user is gone too
        answer = auth.http.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_grant"

    after = auth.login(user["username"], user["password"])
    assert auth.me(after["access_token"]).status_code == 200
    caller = await verifier.verify(after["access_token"])
    assert caller.user_id == user["id"]


async def test_a_late_subscriber_gets_the_retained_mark(
    auth: AuthStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    user = auth.create_user()
    tokens = auth.login(user["username"], user["password"])
    response = auth.http.post("/auth/logout-everywhere", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    listener = _listen(mqtt_client, broker, user["id"])  # subscribes only now
    messages = listener.wait_for_messages(1, timeout=WITHIN)
    assert messages[0].retain
    assert json.loads(messages[0].payload)["not_before"] > 0


async def test_disabling_a_user(
    auth: AuthStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    user = auth.create_user()
    verifier = _bus_verifier(auth)
    listener = _listen(mqtt_client, broker, user["id"])
    tokens = auth.login(user["username"], user["password"])

    response = auth.http.patch(
        f"/auth/users/{user['id']}", json={"disabled": True}, headers=bearer(auth.admin_token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["disabled"] is True

    _await_mark(listener, verifier, disabled=True)
    with pytest.raises(UserDisabled):
        await verifier.verify(tokens["access_token"])
    refused = auth.me(tokens["access_token"])
    assert refused.status_code == 401
    assert refused.json()["reason"] == "disabled"
    login = auth.http.post(
        "/auth/token", data={"username": user["username"], "password": user["password"]}
    )
    assert login.status_code == 400
    assert login.json()["code"] == "invalid_grant"
    again = auth.http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 400

    # Enabled again: a new login works; the tokens from before stay revoked.
    response = auth.http.patch(
        f"/auth/users/{user['id']}", json={"disabled": False}, headers=bearer(auth.admin_token)
    )
    assert response.status_code == 200
    _await_mark(listener, verifier, disabled=False)
    fresh = auth.login(user["username"], user["password"])
    assert auth.me(fresh["access_token"]).status_code == 200
    await verifier.verify(fresh["access_token"])
    with pytest.raises(TokenRevoked):
        await verifier.verify(tokens["access_token"])


async def test_changing_the_password(
    auth: AuthStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    user = auth.create_user(password="the-old-password")
    verifier = _bus_verifier(auth)
    listener = _listen(mqtt_client, broker, user["id"])
    tokens = auth.login(user["username"], "the-old-password")
    headers = bearer(tokens["access_token"])

    wrong = auth.http.post(
        "/auth/users/me/password",
        json={"current_password": "not-it", "new_password": "the-new-password"},
        headers=headers,
    )
    assert wrong.status_code == 400
    assert listener.received() == []

    changed = auth.http.post(
        "/auth/users/me/password",
        json={"current_password": "the-old-password", "new_password": "the-new-password"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    _await_mark(listener, verifier, disabled=False)
    with pytest.raises(TokenRevoked):
        await verifier.verify(tokens["access_token"])
    assert auth.me(tokens["access_token"]).status_code == 401
    old = auth.http.post(
        "/auth/token", data={"username": user["username"], "password": "the-old-password"}
    )
    assert old.status_code == 400
    new = auth.login(user["username"], "the-new-password")
    await verifier.verify(new["access_token"])


def test_removing_the_admin_role_revokes_admin_tokens(auth: AuthStack) -> None:
    user = auth.create_user(roles=["admin"])
    tokens = auth.login(user["username"], user["password"])
    assert auth.http.get("/auth/users", headers=bearer(tokens["access_token"])).status_code == 200

    demoted = auth.http.patch(
        f"/auth/users/{user['id']}", json={"roles": []}, headers=bearer(auth.admin_token)
    )
    assert demoted.status_code == 200
    assert demoted.json()["roles"] == []
    assert auth.http.get("/auth/users", headers=bearer(tokens["access_token"])).status_code == 401
    fresh = auth.login(user["username"], user["password"])
    assert auth.http.get("/auth/users", headers=bearer(fresh["access_token"])).status_code == 403
