"""The platform's broker access rules, pinned to the text of the issue."""

from __future__ import annotations

import pytest

from hearth.common.dynsec import (
    Acl,
    AclType,
    create_device_commands,
    delete_device_commands,
    device_role,
    device_role_acls,
)
from hearth.common.logins import device_username, service_client_id, service_username
from hearth.common.topics import TopicError
from hearth.platform.dynsec import DEFAULT_ACL_ACCESS, service_role, service_role_acls
from hearth.platform.logins import (
    PLATFORM_SERVICES,
    replica_names,
    replica_plan,
    service_rolename,
)

SEND = "publishClientSend"
RECV = "publishClientReceive"
SUB = "subscribePattern"
SUB_LITERAL = "subscribeLiteral"


def _pairs(acls: frozenset[Acl]) -> set[tuple[str, str]]:
    assert all(acl.allow and acl.priority == 0 for acl in acls)  # defaults deny the rest
    return {(acl.acltype.value, acl.topic) for acl in acls}


def _read(topic: str) -> set[tuple[str, str]]:
    return {(SUB, topic), (RECV, topic)}


EXPECTED = {
    "auth": {(SEND, "hearth-sys/auth/#"), *_read("hearth-sys/auth/#")},  # issue 17: reads marks
    "registry": {
        (SEND, "$CONTROL/dynamic-security/#"),
        *_read("$CONTROL/dynamic-security/v1/response"),
        (SEND, "hearth/+/+/command/#"),
        (SEND, "hearth/+/+/status"),
        *_read("hearth/+/+/state/#"),
        *_read("hearth/+/+/telemetry/#"),  # issue 15: last seen, for presence
        *_read("hearth/+/+/status"),
        *_read("hearth/+/+/ack"),
        (SEND, "hearth-sys/registry/#"),
        *_read("hearth-sys/auth/#"),
        *_read("hearth-sys/ingest/discovered/#"),  # issue 16: metrics ingest discovered
    },
    "ingest": {
        (SUB_LITERAL, "$share/ingest/hearth/+/+/telemetry/#"),
        (RECV, "hearth/+/+/telemetry/#"),
        *_read("hearth-sys/auth/#"),
        *_read("hearth-sys/registry/#"),
        (SEND, "hearth-sys/ingest/#"),  # issue 16: discovered metrics, its own barrier
        *_read("hearth-sys/ingest/barrier/#"),
    },
    "realtime": {*_read("hearth/#"), *_read("hearth-sys/#")},
}


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_service_roles_are_exactly_the_issue_s_rights(service: str) -> None:
    own_status = (SEND, f"hearth-sys/services/{service}/+")
    assert _pairs(service_role_acls(service)) == EXPECTED[service] | {own_status}


def test_every_platform_service_has_rules() -> None:
    assert set(PLATFORM_SERVICES) == set(EXPECTED)
    for service in PLATFORM_SERVICES:
        role = service_role(service)
        assert role.rolename == service_rolename(service) == f"svc-{service}"


def test_device_role_is_its_own_topics_only() -> None:
    assert _pairs(device_role_acls("h1", "d1")) == {
        (SEND, "hearth/h1/d1/telemetry/#"),
        (SEND, "hearth/h1/d1/state/#"),
        (SEND, "hearth/h1/d1/ack"),
        (SEND, "hearth/h1/d1/status"),
        (SUB, "hearth/h1/d1/command/#"),
        (RECV, "hearth/h1/d1/command/#"),
    }


@pytest.mark.parametrize(("home", "device"), [("+", "d1"), ("h1", "#"), ("H1", "d1"), ("h/x", "d")])
def test_device_rules_refuse_names_that_would_widen_them(home: str, device: str) -> None:
    with pytest.raises(TopicError):
        device_role_acls(home, device)
    with pytest.raises(TopicError):
        device_username(home, device)


def test_default_access_denies_all_but_unsubscribe() -> None:
    assert DEFAULT_ACL_ACCESS == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_device_commands_bind_the_client_id() -> None:
    create_role, create_client = create_device_commands("h1", "d1", "pw")
    assert create_role["command"] == "createRole"
    assert create_role["rolename"] == "dev.h1.d1"
    assert {Acl.from_json(a) for a in create_role["acls"]} == device_role_acls("h1", "d1")
    assert create_client == {
        "command": "createClient",
        "username": "dev.h1.d1",
        "password": "pw",
        "clientid": "dev.h1.d1",
        "textname": device_role("h1", "d1").textname,
        "textdescription": "credentials generation 1",
        "roles": [{"rolename": "dev.h1.d1"}],
    }
    assert [c["command"] for c in delete_device_commands("h1", "d1")] == [
        "deleteClient",
        "deleteRole",
    ]


def test_acl_json_round_trip() -> None:
    acl = Acl(AclType.SUBSCRIBE_LITERAL, "$share/ingest/x", allow=False, priority=3)
    assert Acl.from_json(acl.to_json()) == acl
    assert (
        Acl.from_json({"acltype": "publishClientSend", "topic": "t", "allow": True}).priority == 0
    )


def test_login_names() -> None:
    assert device_username("a-b", "c") == "dev.a-b.c"
    assert device_username("a-b", "c") != device_username("a", "b-c")  # unambiguous
    assert service_client_id("ingest", "2") == "ingest-2"
    assert service_username("ingest", "2") == "svc-ingest-2"
    with pytest.raises(ValueError, match="unknown platform service"):
        service_rolename("web")
    with pytest.raises(ValueError, match="without dashes"):
        service_client_id("in-gest", "2")  # "in-gest-2" could be replica "gest-2" of "in"
    with pytest.raises(TopicError):
        service_client_id("ingest", "Bad Replica")


def test_no_service_id_can_be_another_s_or_a_device_s() -> None:
    """A bound client id names one login: services never prefix each other, devices dot."""
    for service in PLATFORM_SERVICES:
        for other in PLATFORM_SERVICES:
            if other != service:
                assert not service_client_id(other, "x").startswith(f"{service}-")
        assert "." not in service_client_id(service, "dev")
    assert device_username("h", "d").count(".") == 2


def test_replica_plan_from_counts_environment_and_names() -> None:
    assert replica_names(3) == ("0", "1", "2")
    assert replica_plan({}) == {service: ("0",) for service in PLATFORM_SERVICES}
    plan = replica_plan(
        {"HEARTH_INGEST_REPLICAS": "3", "HEARTH_REGISTRY_REPLICA": "green"},
        counts={"realtime": 2},
        named=[("auth", "blue")],
    )
    assert plan["ingest"] == ("0", "1", "2")
    assert plan["realtime"] == ("0", "1")
    assert plan["auth"] == ("0", "blue")
    assert plan["registry"] == ("0", "green")  # the replica a deployment names
    for bad in ("0", "65", "two", "-1"):
        with pytest.raises(ValueError, match=r"HEARTH_INGEST_REPLICAS|replica count"):
            replica_plan({"HEARTH_INGEST_REPLICAS": bad})
    with pytest.raises(TopicError):
        replica_plan({}, named=[("auth", "Blue!")])
