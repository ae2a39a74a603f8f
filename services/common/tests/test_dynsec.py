"""The guard on the dynsec commands that manage device logins (hearth.common.dynsec).

Mosquitto 2.0.11 lets the registry's login change any client and role once it may publish
to ``$CONTROL/dynamic-security/#`` (services/platform/tests/test_registry_dynsec_reach.py
shows it on a real broker), so the guard is what holds the registry to device logins.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.common.dynsec import (
    DynsecRefused,
    check_device_commands,
    create_device_commands,
    delete_device_commands,
    device_credentials_commands,
    device_role,
    device_role_acls,
    device_role_sync_commands,
    disable_device_commands,
    enable_device_commands,
)

DEVICE = "dev.flat.lamp"
OTHER = "dev.flat.heater"


def test_the_device_commands_pass_the_guard_unchanged() -> None:
    commands = [
        *create_device_commands("flat", "lamp", "pw"),
        *delete_device_commands("flat", "lamp"),
    ]
    assert check_device_commands(commands) == commands
    reads = [
        {"command": "listClients", "verbose": True},
        {"command": "getClient", "username": DEVICE},
        {"command": "getRole", "rolename": DEVICE},
    ]
    assert check_device_commands(reads) == reads
    managed = [
        {"command": "setClientPassword", "username": DEVICE, "password": "new"},
        {"command": "disableClient", "username": DEVICE},
        {"command": "enableClient", "username": DEVICE},
        {"command": "modifyClient", "username": DEVICE, "textname": "Lamp", "clientid": DEVICE},
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "publishClientSend",
            "topic": "hearth/flat/lamp/telemetry/power",
            "allow": True,
        },
        {"command": "addClientRole", "username": DEVICE, "rolename": DEVICE},
    ]
    assert check_device_commands(managed) == managed


REFUSED: list[tuple[dict[str, Any], str]] = [
    # platform logins and roles are out of reach
    ({"command": "setClientPassword", "username": "svc-auth-0", "password": "x"}, "device login"),
    ({"command": "deleteClient", "username": "hearth-admin"}, "device login"),
    ({"command": "modifyClient", "username": "svc-registry-0", "clientid": ""}, "device login"),
    ({"command": "deleteRole", "rolename": "svc-ingest"}, "device login"),
    (
        {
            "command": "addRoleACL",
            "rolename": "admin",
            "acltype": "publishClientSend",
            "topic": "#",
        },
        "device login",
    ),
    (
        {
            "command": "createClient",
            "username": "dev.flat",
            "password": "x",
            "clientid": "dev.flat",
        },
        "device login",
    ),
    ({"command": "createClient", "username": "dev.Flat.lamp", "password": "x"}, "device login"),
    # whole-broker commands
    (
        {"command": "setDefaultACLAccess", "acls": [{"acltype": "subscribe", "allow": True}]},
        "business",
    ),
    ({"command": "createGroup", "groupname": "dev.flat.lamp"}, "business"),
    ({"command": "setAnonymousGroup", "groupname": "x"}, "business"),
    ({"command": "addGroupClient", "groupname": "g", "username": DEVICE}, "business"),
    ({"command": "nope"}, "business"),
    # a device's login must stay bound to itself
    ({"command": "createClient", "username": DEVICE, "password": "x"}, "bound"),
    (
        {"command": "createClient", "username": DEVICE, "password": "x", "clientid": "registry-0"},
        "bound",
    ),
    ({"command": "modifyClient", "username": DEVICE, "clientid": ""}, "bound"),
    ({"command": "modifyClient", "username": DEVICE, "clientid": "auth-0"}, "bound"),
    # a device gets only its own role, and its role only its own topics
    ({"command": "addClientRole", "username": DEVICE, "rolename": "svc-realtime"}, "own role"),
    ({"command": "addClientRole", "username": DEVICE, "rolename": OTHER}, "own role"),
    (
        {
            "command": "createClient",
            "username": DEVICE,
            "password": "x",
            "clientid": DEVICE,
            "roles": [{"rolename": "svc-registry"}],
        },
        "own role",
    ),
    (
        {
            "command": "createRole",
            "rolename": DEVICE,
            "acls": [{"acltype": "subscribePattern", "topic": "#", "allow": True}],
        },
        "outside",
    ),
    (
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "publishClientSend",
            "topic": "hearth/flat/heater/command/power",
            "allow": True,
        },
        "outside",
    ),
    (
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "publishClientSend",
            "topic": "hearth/other-home/heater/telemetry/#",
            "allow": True,
        },
        "outside",
    ),
    (
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "subscribePattern",
            "topic": "hearth/flat/+/command/#",
            "allow": True,
        },
        "outside",
    ),
    (
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "publishClientSend",
            "topic": "hearth/flat/lamp",
            "allow": True,
        },
        "outside",
    ),
    (
        {
            "command": "addRoleACL",
            "rolename": DEVICE,
            "acltype": "superpower",
            "topic": "hearth/flat/lamp/x",
            "allow": True,
        },
        "ACL type",
    ),
    (
        {
            "command": "createClient",
            "username": DEVICE,
            "password": "x",
            "clientid": DEVICE,
            "groups": [],
        },
        "unexpected",
    ),
]


@pytest.mark.parametrize(("command", "why"), REFUSED)
def test_anything_outside_a_device_s_own_business_is_refused(
    command: dict[str, Any], why: str
) -> None:
    batch = [*create_device_commands("flat", "lamp", "pw"), command]
    with pytest.raises(DynsecRefused, match=why) as refused:
        check_device_commands(batch)
    assert "dynsec command 2" in str(refused.value)  # the whole batch is refused, naming it
    assert check_device_commands(batch[:2]) == batch[:2]  # positive control


def test_a_gateway_role_covers_the_devices_it_relays_for() -> None:
    role = device_role("flat", "hub", relays=["lamp", "heater"])
    assert role.rolename == "dev.flat.hub"
    assert role.acls == (
        device_role_acls("flat", "hub")
        | device_role_acls("flat", "lamp")
        | device_role_acls("flat", "heater")
    )
    commands = create_device_commands("flat", "hub", "pw", relays=["lamp", "heater"])
    assert check_device_commands(commands) == commands
    # growing or shrinking what a gateway relays is ACL changes on its role, nothing else
    grow = device_role_sync_commands(device_role_acls("flat", "hub"), role)
    assert {c["command"] for c in grow} == {"addRoleACL"}
    assert {c["topic"].split("/")[2] for c in grow} == {"lamp", "heater"}
    shrink = device_role_sync_commands(role.acls, device_role("flat", "hub"))
    assert {c["command"] for c in shrink} == {"removeRoleACL"}
    assert device_role_sync_commands(role.acls, role) == []


def test_any_acl_may_be_removed_from_a_device_role() -> None:
    removal = {
        "command": "removeRoleACL",
        "rolename": DEVICE,
        "acltype": "publishClientSend",
        "topic": "hearth/#",
    }
    assert check_device_commands([removal]) == [removal]
    with pytest.raises(DynsecRefused, match="device login"):  # still a device role only
        check_device_commands([{**removal, "rolename": "svc-ingest"}])
    with pytest.raises(DynsecRefused, match="outside"):  # adding it is refused
        check_device_commands([{**removal, "command": "addRoleACL", "allow": True}])


def test_credentials_disable_and_enable_commands_pass_the_guard() -> None:
    (rotate,) = device_credentials_commands("flat", "lamp", "new", 2)
    assert rotate == {
        "command": "modifyClient",
        "username": DEVICE,
        "password": "new",
        "textdescription": "credentials generation 2",
    }
    assert disable_device_commands("flat", "lamp") == [
        {"command": "disableClient", "username": DEVICE}
    ]
    assert enable_device_commands("flat", "lamp") == [
        {"command": "enableClient", "username": DEVICE}
    ]
