"""The authorisation API and the change events, against the running registry and auth."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from hearth.common.messages import RegistryEvent
from hearth.common.topics import registry_home_topic
from hearth.testing.broker import MqttClientFactory, RunningBroker
from hearth.testing.services import ServiceStack, User, bearer


@dataclass
class Homes:
    """Home ``home`` (owner, member, viewer; devices ``th`` and ``lamp``) and ``other``."""

    home: str
    other: str
    owner: User
    member: User
    viewer: User
    outsider: User


@pytest.fixture(scope="module")
def homes(stack: ServiceStack) -> Homes:
    owner, member, viewer, outsider = (stack.create_user(p) for p in ("own", "mem", "view", "out"))
    home = stack.create_home(owner)["slug"]
    stack.add_member(owner, home, member, "member")
    stack.add_member(owner, home, viewer, "viewer")
    stack.create_device(owner, home, "th", type="temperature-humidity")
    stack.create_device(owner, home, "lamp", type="light")
    stack.create_device(owner, home, "old", type="light")
    deleted = stack.http.delete(f"/registry/homes/{home}/devices/old", headers=owner.headers)
    assert deleted.status_code == 204
    other = stack.create_home(outsider)["slug"]
    stack.create_device(outsider, other, "th", type="temperature-humidity")
    return Homes(home, other, owner, member, viewer, outsider)


def ask(stack: ServiceStack, token: str, action: str, **target: str) -> dict[str, Any]:
    response = stack.http.post(
        "/registry/authorize", json={"action": action, **target}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, max-age=5"
    answer: dict[str, Any] = response.json()
    assert answer["ttl"] == 5
    return answer


def verdict(answer: dict[str, Any]) -> tuple[bool, str | None, str | None]:
    return answer["allowed"], answer["role"], answer["reason"]


def test_topics_need_to_exist_and_the_role_to_allow(stack: ServiceStack, homes: Homes) -> None:
    h = homes.home
    cases = [
        # (user, action, topic, (allowed, role, reason))
        (homes.viewer, "read", f"hearth/{h}/th/telemetry/temperature", (True, "viewer", None)),
        (homes.viewer, "read", f"hearth/{h}/lamp/state/power", (True, "viewer", None)),
        (homes.viewer, "read", f"hearth/{h}/lamp/status", (True, "viewer", None)),
        (homes.viewer, "write", f"hearth/{h}/lamp/command/power", (False, "viewer", "role")),
        (homes.member, "write", f"hearth/{h}/lamp/command/power", (True, "member", None)),
        (homes.owner, "write", f"hearth/{h}/lamp/command/power", (True, "owner", None)),
        (homes.member, "write", f"hearth/{h}/lamp/state/power", (False, "member", "not_command")),
        (
            homes.member,
            "write",
            f"hearth/{h}/th/telemetry/humidity",
            (False, "member", "not_command"),
        ),
        (homes.member, "read", f"hearth/{h}/th/telemetry/pressure", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/th/state/temperature", (False, "member", "not_found")),
        (homes.member, "write", f"hearth/{h}/lamp/command/colour", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/ghost/status", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/ghost/ack", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/old/status", (False, "member", "not_found")),
        (homes.member, "write", f"hearth/{h}/old/command/power", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/lamp/ack", (True, "member", None)),
        # Another home's topics look exactly like topics of a home that does not exist.
        (
            homes.member,
            "read",
            f"hearth/{homes.other}/th/telemetry/temperature",
            (False, None, "not_found"),
        ),
        (
            homes.member,
            "read",
            "hearth/no-such-home/th/telemetry/temperature",
            (False, None, "not_found"),
        ),
        (homes.outsider, "write", f"hearth/{h}/lamp/command/power", (False, None, "not_found")),
        # Outside the grammar.
        (homes.member, "read", f"hearth/{h}/th", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/th/telemetry/Temp", (False, None, "invalid")),
        (homes.member, "read", "hearth-sys/auth/users/x", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/+/status", (False, None, "invalid")),
        # Admins read and manage every home; commands need a membership.
        (stack.admin, "read", f"hearth/{h}/th/telemetry/temperature", (True, None, None)),
        (stack.admin, "write", f"hearth/{h}/lamp/command/power", (False, None, "role")),
    ]
    for user, action, topic, expected in cases:
        answer = ask(stack, user.token, action, topic=topic)
        assert verdict(answer) == expected, (user.username, action, topic, answer)


def test_a_write_answer_carries_the_capability(stack: ServiceStack, homes: Homes) -> None:
    answer = ask(
        stack, homes.member.token, "write", topic=f"hearth/{homes.home}/lamp/command/brightness"
    )
    assert answer["allowed"] is True
    assert answer["capability"] == {
        "name": "brightness",
        "kind": "number",
        "unit": "%",
        "min": 0,
        "max": 100,
        "step": 1,
        "values": None,
    }
    read = ask(
        stack, homes.member.token, "read", topic=f"hearth/{homes.home}/lamp/state/brightness"
    )
    assert read["capability"] is None


def test_filters_stay_inside_one_home_and_only_read(stack: ServiceStack, homes: Homes) -> None:
    h = homes.home
    cases = [
        (homes.viewer, "read", f"hearth/{h}/#", (True, "viewer", None)),
        (homes.viewer, "read", f"hearth/{h}/+/telemetry/+", (True, "viewer", None)),
        (homes.viewer, "read", f"hearth/{h}/lamp/state/+", (True, "viewer", None)),
        (homes.member, "write", f"hearth/{h}/+/command/+", (False, None, "filter_read_only")),
        (homes.member, "read", "hearth/+/lamp/state/+", (False, None, "filter_outside_home")),
        (homes.member, "read", "#", (False, None, "filter_outside_home")),
        (homes.member, "read", "hearth/#", (False, None, "filter_outside_home")),
        (homes.member, "read", "hearth-sys/#", (False, None, "filter_outside_home")),
        (homes.member, "read", f"hearth/{homes.other}/#", (False, None, "not_found")),
        (homes.member, "read", f"hearth/{h}/ghost/#", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/old/#", (False, "member", "not_found")),
        (homes.member, "read", f"$share/g/hearth/{h}/#", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/#/x", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/+/telemetri/+", (False, None, "invalid")),
        # A filter that can match no device topic is not a question about one.
        (homes.member, "read", f"hearth/{h}/+", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/+/status/+", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/+/state/+/x", (False, None, "invalid")),
        (homes.member, "read", f"hearth/{h}/+/telemetry/Temp", (False, None, "invalid")),
        (homes.viewer, "read", f"hearth/{h}/+/status/#", (True, "viewer", None)),
        # A literal metric or property name must be registered on a literal device.
        (homes.viewer, "read", f"hearth/{h}/lamp/+/power", (True, "viewer", None)),
        (homes.viewer, "read", f"hearth/{h}/th/+/humidity", (True, "viewer", None)),
        (homes.member, "read", f"hearth/{h}/lamp/+/humidity", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/th/state/+", (True, "member", None)),
        # Without wildcards a filter names one topic and is answered like it.
        (homes.viewer, "read", f"hearth/{h}/th/telemetry/humidity", (True, "viewer", None)),
        (homes.member, "read", f"hearth/{h}/th/telemetry/nosuch", (False, "member", "not_found")),
        (homes.member, "read", f"hearth/{h}/lamp", (False, None, "invalid")),
    ]
    for user, action, topic_filter, expected in cases:
        answer = ask(stack, user.token, action, filter=topic_filter)
        assert verdict(answer) == expected, (user.username, action, topic_filter, answer)


def test_homes_are_answered_by_role(stack: ServiceStack, homes: Homes) -> None:
    h = homes.home
    cases = [
        (homes.owner, "manage", h, (True, "owner", None)),
        (homes.member, "manage", h, (False, "member", "role")),
        (homes.member, "write", h, (True, "member", None)),
        (homes.viewer, "read", h, (True, "viewer", None)),
        (homes.viewer, "write", h, (False, "viewer", "role")),
        (homes.outsider, "read", h, (False, None, "not_found")),
        (homes.owner, "read", "no-such-home", (False, None, "not_found")),
        (homes.owner, "read", "Not A Slug", (False, None, "invalid")),
        (stack.admin, "manage", h, (True, None, None)),
    ]
    for user, action, home, expected in cases:
        assert verdict(ask(stack, user.token, action, home=home)) == expected, (action, home)


def test_api_key_tokens_are_narrowed_by_scope_and_homes(stack: ServiceStack, homes: Homes) -> None:
    mint = stack.minter()
    h, lamp = homes.home, f"hearth/{homes.home}/lamp/command/power"
    read_only = mint(homes.member.id, scope="read", homes=[h])
    assert verdict(ask(stack, read_only, "read", topic=f"hearth/{h}/lamp/state/power")) == (
        True,
        "member",
        None,
    )
    assert verdict(ask(stack, read_only, "write", topic=lamp)) == (False, "member", "scope")
    elsewhere = mint(homes.member.id, scope="read control", homes=[homes.other])
    assert verdict(ask(stack, elsewhere, "write", topic=lamp)) == (False, "member", "token_homes")
    assert verdict(ask(stack, elsewhere, "read", filter=f"hearth/{h}/#")) == (
        False,
        "member",
        "token_homes",
    )
    control = mint(homes.member.id, scope="read control", homes=[h])
    assert verdict(ask(stack, control, "write", topic=lamp)) == (True, "member", None)
    owner_key = mint(homes.owner.id, scope="read control", homes=[h])
    assert verdict(ask(stack, owner_key, "manage", home=h)) == (False, "owner", "scope")
    owner_admin_key = mint(homes.owner.id, scope="read control admin", homes=[h])
    assert verdict(ask(stack, owner_admin_key, "manage", home=h)) == (True, "owner", None)
    # The REST routes obey the same narrowing: outside its homes a key sees nothing.
    assert stack.http.get(f"/registry/homes/{h}", headers=bearer(elsewhere)).status_code == 404
    listed = stack.http.get("/registry/homes", headers=bearer(control)).json()
    assert [home["slug"] for home in listed] == [h]
    refused = stack.http.patch(
        f"/registry/homes/{h}", json={"name": "x"}, headers=bearer(owner_key)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")


def test_bad_questions_are_errors_not_answers(stack: ServiceStack, homes: Homes) -> None:
    url = "/registry/authorize"
    topic = f"hearth/{homes.home}/lamp/status"
    assert stack.http.post(url, json={"action": "read", "topic": topic}).status_code == 401
    for body in (
        {"action": "read"},
        {"action": "read", "topic": topic, "home": homes.home},
        {"action": "delete", "topic": topic},
        {"action": "read", "topic": topic, "user": homes.owner.id},
    ):
        response = stack.http.post(url, json=body, headers=homes.member.headers)
        assert response.status_code == 422, body


def test_changes_are_on_the_system_bus_within_a_second(
    stack: ServiceStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    owner, friend = stack.create_user("owner"), stack.create_user("friend")
    home = stack.create_home(owner)["slug"]
    listener = mqtt_client(broker, "realtime")
    listener.subscribe_and_wait(registry_home_topic(home))

    started = time.monotonic()
    stack.add_member(owner, home, friend, "viewer")
    (message,) = listener.wait_for_messages(1, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert not message.retain
    event = RegistryEvent.from_bytes(message.payload)
    assert (event.kind, event.home, event.action, event.user, event.device) == (
        "membership",
        home,
        "created",
        friend.id,
        None,
    )

    stack.http.patch(
        f"/registry/homes/{home}/members/{friend.id}",
        json={"role": "member"},
        headers=owner.headers,
    )
    stack.create_device(owner, home, "lamp", type="light")
    stack.http.delete(f"/registry/homes/{home}/devices/lamp", headers=owner.headers)
    stack.http.delete(f"/registry/homes/{home}/members/{friend.id}", headers=owner.headers)
    stack.http.patch(f"/registry/homes/{home}", json={"name": "Renamed"}, headers=owner.headers)
    messages = listener.wait_for_messages(6, timeout=2.0)
    events = [RegistryEvent.from_bytes(m.payload) for m in messages[1:]]
    assert [(e.kind.value, e.action.value, e.device, e.user) for e in events] == [
        ("membership", "updated", None, friend.id),
        ("device", "created", "lamp", None),
        ("device", "deleted", "lamp", None),
        ("membership", "deleted", None, friend.id),
        ("home", "updated", None, None),
    ]
    # A refused change publishes nothing.
    listener.clear()
    refused = stack.http.patch(
        f"/registry/homes/{home}", json={"name": "x"}, headers=friend.headers
    )
    assert refused.status_code == 404
    marker = uuid.uuid4().hex[:8]
    stack.create_device(owner, home, f"d-{marker}")
    (only,) = listener.wait_for_messages(1, timeout=1.0)
    assert RegistryEvent.from_bytes(only.payload).device == f"d-{marker}"
