"""Commands, acks and expiry against the real broker, with a device speaking docs/topics.md.

Auth and the registry on fresh databases and the session's broker; each test provisions its
own device through the API and runs :class:`hearth.testing.device.TestDevice` with the
credentials the registry issued. Every refusal has a positive control beside it.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hearth.common.clock import utc_now
from hearth.common.messages import Command
from hearth.common.topics import command_topic
from hearth.testing.broker import MqttClientFactory, RunningBroker
from hearth.testing.database import PostgresServer
from hearth.testing.device import Reply, TestDevice
from hearth.testing.services import ServiceStack, User, running_stack
from hearth.testing.waiting import wait_until

WAIT = 10.0
PROPERTIES = [
    {"name": "level", "kind": "number", "min": 0, "max": 100, "step": 5},
    {"name": "power", "kind": "boolean"},
    {"name": "mode", "kind": "enum", "values": ["eco", "comfort"]},
]


def _device(
    stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    made: list[TestDevice],
    **fields: Any,
) -> TestDevice:
    device = TestDevice.provision(
        stack, broker, owner, home, properties=PROPERTIES, state={"level": 0}, **fields
    )
    made.append(device)
    return device


def _send(
    sweeping_stack: ServiceStack, user: User, home: str, device: str, **body: Any
) -> tuple[int, dict[str, Any]]:
    response = sweeping_stack.http.post(
        f"/registry/homes/{home}/devices/{device}/commands",
        json=body,
        headers=user.headers,
        timeout=WAIT + 30,
    )
    return response.status_code, response.json()


def _log(sweeping_stack: ServiceStack, user: User, home: str, device: str) -> list[dict[str, Any]]:
    response = sweeping_stack.http.get(
        f"/registry/homes/{home}/devices/{device}/commands", headers=user.headers
    )
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def _outcome_in_log(
    sweeping_stack: ServiceStack, user: User, home: str, device: str, command_id: str
) -> str | None:
    for record in _log(sweeping_stack, user, home, device):
        if record["id"] == command_id:
            outcome: str | None = record["outcome"]
            return outcome
    raise AssertionError(f"command {command_id} is not in the log")


# ----------------------------------------------------------------------------- outcomes


def test_done_rejected_and_timeout(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.answer("mode", lambda value: Reply.reject("heater is in service mode"))
    device.answer("power", lambda value: Reply.ignore())
    device.connect()

    status, done = _send(
        sweeping_stack, owner, home, device.device, property="level", value=55, wait=WAIT
    )
    assert status == 201, done
    assert done["outcome"] == "done"
    assert done["result"] == 55
    assert device.acted == [("level", 55)]

    status, rejected = _send(
        sweeping_stack, owner, home, device.device, property="mode", value="eco", wait=WAIT
    )
    assert status == 201, rejected
    assert rejected["outcome"] == "rejected"
    assert rejected["reason"] == "heater is in service mode"

    status, timeout = _send(
        sweeping_stack, owner, home, device.device, property="power", value=True, wait=0.5, ttl=60
    )
    assert status == 201, timeout
    assert timeout["outcome"] == "timeout"
    assert device.commands[-1].id == uuid.UUID(timeout["id"])  # delivered, never answered

    log = {record["id"]: record for record in _log(sweeping_stack, owner, home, device.device)}
    assert log[done["id"]]["outcome"] == "done"
    assert log[rejected["id"]]["outcome"] == "rejected"
    assert log[timeout["id"]]["outcome"] is None  # still pending: timeout is the call's
    assert log[done["id"]]["by"] == owner.id
    assert device.acted == [("level", 55)]


def test_without_wait_the_answer_is_pending_and_the_log_tells_later(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.connect()
    status, sent = _send(sweeping_stack, owner, home, device.device, property="power", value=True)
    assert status == 201, sent
    assert sent["outcome"] is None
    wait_until(
        lambda: _outcome_in_log(sweeping_stack, owner, home, device.device, sent["id"]) == "done"
    )


def test_the_registry_records_expired_when_no_ack_comes(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.answer("power", lambda value: Reply.ignore())
    device.connect()
    status, sent = _send(
        sweeping_stack, owner, home, device.device, property="power", value=True, ttl=1
    )
    assert status == 201, sent
    assert sent["outcome"] is None
    wait_until(
        lambda: _outcome_in_log(sweeping_stack, owner, home, device.device, sent["id"]) == "expired"
    )
    # A waiting call is answered at expires_at with the registry's verdict.
    status, waited = _send(
        sweeping_stack, owner, home, device.device, property="power", value=False, ttl=1, wait=WAIT
    )
    assert status == 201, waited
    assert waited["outcome"] == "expired"


# ----------------------------------------------------------------------------- expiry


def test_a_command_expires_before_a_sleeping_device_wakes(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.connect()
    device.sleep()  # persistent session: commands queue at the broker meanwhile

    # ttl 2: the broker is asked for 1 s (it counts whole seconds, so it keeps 1 to 2 s).
    status, stale = _send(
        sweeping_stack, owner, home, device.device, property="level", value=20, ttl=2
    )
    assert status == 201, stale
    status, fresh = _send(
        sweeping_stack, owner, home, device.device, property="power", value=True, ttl=60
    )
    assert status == 201, fresh
    wait_until(
        lambda: (
            _outcome_in_log(sweeping_stack, owner, home, device.device, stale["id"]) == "expired"
        )
    )

    device.connect()
    # The command sent with the long ttl arrives from the session (the positive control)...
    wait_until(
        lambda: _outcome_in_log(sweeping_stack, owner, home, device.device, fresh["id"]) == "done"
    )
    # ...the expired one never did: the broker dropped it; the device never acted on it.
    assert [c.id for c in device.commands] == [uuid.UUID(fresh["id"])]
    assert device.acted == [("power", True)]
    assert _outcome_in_log(sweeping_stack, owner, home, device.device, stale["id"]) == "expired"


def test_a_device_drops_a_delivered_command_whose_expires_at_passed(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
    mqtt_client: MqttClientFactory,
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.connect()
    publisher = mqtt_client(broker, "registry")  # a registry login, no MQTT 5 expiry
    acks = mqtt_client(broker, "registry")
    acks.subscribe_and_wait(f"hearth/{home}/{device.device}/ack")
    now = utc_now()
    topic = command_topic(home, device.device, "level")

    def command(expires_in: float, value: int) -> Command:
        return Command(
            id=uuid.uuid4(),
            value=value,
            issued_at=now - timedelta(seconds=5),
            expires_at=now + timedelta(seconds=expires_in),
            by=owner.id,
        )

    late = command(-1, 30)
    publisher.publish_and_wait(topic, late.to_bytes())
    timely = command(60, 40)  # the positive control, sent after it
    publisher.publish_and_wait(topic, timely.to_bytes())
    acks.wait_for_messages(2, timeout=WAIT)
    answers = {json.loads(p)["id"]: json.loads(p) for p in acks.payloads()}
    assert answers[str(late.id)]["outcome"] == "expired"
    assert answers[str(timely.id)]["outcome"] == "done"
    assert device.acted == [("level", 40)]


# ----------------------------------------------------------------------------- refusals


def test_a_viewer_may_not_command_but_reads_the_log(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.connect()
    viewer, member = sweeping_stack.create_user("viewer"), sweeping_stack.create_user("member")
    sweeping_stack.add_member(owner, home, viewer, "viewer")
    sweeping_stack.add_member(owner, home, member, "member")

    status, refused = _send(
        sweeping_stack, viewer, home, device.device, property="power", value=True
    )
    assert status == 403, refused
    assert refused["code"] == "role_forbidden"
    status, sent = _send(
        sweeping_stack, member, home, device.device, property="power", value=True, wait=WAIT
    )
    assert status == 201, sent
    assert sent["outcome"] == "done"
    assert [c.id for c in device.commands] == [uuid.UUID(sent["id"])]  # only the member's
    assert [r["id"] for r in _log(sweeping_stack, viewer, home, device.device)] == [sent["id"]]

    stranger = sweeping_stack.create_user("stranger")
    response = sweeping_stack.http.get(
        f"/registry/homes/{home}/devices/{device.device}/commands", headers=stranger.headers
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"property": "level", "value": 150}, "above the maximum 100"),
        ({"property": "level", "value": -5}, "below the minimum 0"),
        ({"property": "level", "value": 12}, "not a multiple of the step 5"),
        ({"property": "level", "value": True}, "must be a number"),
        ({"property": "mode", "value": "turbo"}, "not one of: eco, comfort"),
        ({"property": "power", "value": 1}, "must be true or false"),
    ],
)
def test_a_value_outside_the_capability_is_422_naming_the_bound(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
    body: dict[str, Any],
    words: str,
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.connect()
    status, refused = _send(sweeping_stack, owner, home, device.device, **body)
    assert status == 422, refused
    assert refused["code"] == "invalid_value"
    assert words in refused["detail"]
    status, sent = _send(
        sweeping_stack, owner, home, device.device, property="level", value=100, wait=WAIT
    )
    assert status == 201, sent  # the positive control: the bound itself is allowed
    assert [c.id for c in device.commands] == [uuid.UUID(sent["id"])]


def test_unknown_property_and_bad_bodies(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    status, refused = _send(sweeping_stack, owner, home, device.device, property="colour", value=1)
    assert (status, refused["code"]) == (422, "unknown_property")
    for bad in (
        {"property": "level", "value": 5, "wait": 31},
        {"property": "level", "value": 5, "ttl": 0},
        {"property": "level", "value": 5, "ttl": 86_401},
        {"property": "level", "value": [5]},
        {"property": "level", "value": 5, "extra": 1},
    ):
        status, refused = _send(sweeping_stack, owner, home, device.device, **bad)
        assert status == 422, (bad, refused)
    status, sent = _send(sweeping_stack, owner, home, device.device, property="level", value=5)
    assert status == 201, sent


# ----------------------------------------------------------------------------- shadow


def test_the_shadow_shows_reported_desired_and_mismatch(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> None:
    device = _device(sweeping_stack, broker, owner, home, devices)
    device.answer("mode", lambda value: Reply.reject("no"))
    device.connect()
    _, sent = _send(
        sweeping_stack, owner, home, device.device, property="level", value=35, wait=WAIT
    )
    assert sent["outcome"] == "done", sent
    _, sent = _send(
        sweeping_stack, owner, home, device.device, property="mode", value="eco", wait=WAIT
    )
    assert sent["outcome"] == "rejected", sent

    def read() -> dict[str, Any]:
        response = sweeping_stack.http.get(
            f"/registry/homes/{home}/devices/{device.device}", headers=owner.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    wait_until(lambda: read()["state"].get("level", {}).get("reported") == 35)
    detail = read()
    level, mode = detail["state"]["level"], detail["state"]["mode"]
    assert (level["desired"], level["mismatch"], level["desired_outcome"]) == (35, False, "done")
    assert (mode["reported"], mode["desired"], mode["mismatch"]) == (None, "eco", True)
    assert detail["online"] is True
    assert detail["status_reason"] == "connected"
    assert detail["last_seen"] is not None


# ----------------------------------------------------------------------------- no broker


def test_a_command_the_broker_did_not_take_is_a_503_and_not_logged(
    postgres_server: PostgresServer, fresh_broker: RunningBroker, tmp_path: Path
) -> None:
    broker = fresh_broker
    with running_stack(
        postgres_server, broker, tmp_path, event_publish_wait=0.5, sweep_interval=0.2
    ) as stack:
        owner = stack.create_user("owner")
        home = str(stack.create_home(owner)["slug"])
        stack.create_device(owner, home, "lamp", properties=PROPERTIES)
        broker.stop()
        status, refused = _send(stack, owner, home, "lamp", property="power", value=True)
        assert (status, refused["code"]) == (503, "broker_unavailable")
        assert _log(stack, owner, home, "lamp") == []  # never sent: not in the log
        broker.start()
        wait_until(lambda: stack.http.get("/readyz").status_code == 200, timeout=30)
        # Control: with the broker back, the same command is sent and logged.
        status, sent = _send(stack, owner, home, "lamp", property="power", value=True)
        assert status == 201, sent
        assert [r["id"] for r in _log(stack, owner, home, "lamp")] == [sent["id"]]
